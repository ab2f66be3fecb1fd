"""The placeholder ids the sender recipes ship with (``111111`` … ``999999``), found in a
loaded relay.yaml: `relay check` fails while any remains, naming each one, its route and
action, and where the real id is found in Infusionsoft."""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.config.models import Action, OrderSpec, RelayConfig, SequenceRef

# Six equal digits: what every TODO-ID in app/recipes/senders uses (a test keeps it so).
PLACEHOLDER_IDS = frozenset(digit * 111111 for digit in range(1, 10))

# Where each kind of id is found in Infusionsoft (Keap Max Classic), and through the API.
WHERE_TO_FIND = {
    "tags": "CRM > Settings > Tags in Infusionsoft: the ID column of the tag list",
    "remove_tags": "CRM > Settings > Tags in Infusionsoft: the ID column of the tag list",
    "action_set": "Marketing > Legacy > Action Sets in Infusionsoft: the action set's id",
    "sequence": "the campaign and sequence ids: Keap REST GET /v1/campaigns/{id}?"
    "optional_properties=sequences",
    "remove_sequence": "the campaign and sequence ids: Keap REST GET /v1/campaigns/{id}?"
    "optional_properties=sequences",
    "email_template": "the email template's id in Infusionsoft (Marketing > Email & Broadcasts"
    " > Templates)",
    "order": "the product ids (E-Commerce > Products in Infusionsoft, or Keap REST GET "
    "/v2/products) and the order custom field id (Keap REST GET "
    "/v2/orders/model)",
}


@dataclass(frozen=True)
class Placeholder:
    route: str
    action_number: int  # the step number `relay check` prints (1 is the contact upsert)
    kind: str
    value: int
    line: int | None  # in relay.yaml, when found
    note: str  # the recipe's TODO-ID comment on that line: what the id stands for

    def describe(self, file: str) -> str:
        where = f"{file}:{self.line}: " if self.line else f"{file}: "
        note = f" ({self.note})" if self.note else ""
        return (
            f"{where}route {self.route}, step {self.action_number} ({self.kind}): "
            f"{self.value} is a placeholder{note}. Find the real id: {WHERE_TO_FIND[self.kind]}"
        )


def find_placeholders(config: RelayConfig, text: str) -> list[Placeholder]:
    """Every placeholder id in the routes' actions, in file order; ``text`` is the file,
    to give each its line."""
    raw = text.splitlines()
    lines = [line.split("#", 1)[0] for line in raw]  # ids in comments do not count
    found = []
    cursor: int | None = 0
    for route in config.routes:
        name = re.escape(route.name)
        cursor = _line_of(lines, rf"\bname:\s*['\"]?{name}['\"]?\s*$", cursor or 0)
        for number, action in enumerate(route.actions, start=2):
            for value in _ids(action):
                if value in PLACEHOLDER_IDS:
                    line = _line_of(lines, rf"\b{value}\b", cursor) if cursor else None
                    cursor = line or cursor
                    note = _todo_note(raw[line - 1]) if line else ""
                    found.append(Placeholder(route.name, number, action.kind, value, line, note))
    return found


def _ids(action: Action) -> list[int]:
    value = action.value
    if isinstance(value, list):
        return [int(v) for v in value]
    if isinstance(value, SequenceRef):
        return [value.campaign, value.sequence]
    if isinstance(value, OrderSpec):
        products = list((value.products or {}).values())
        return [*products, *(i for i in (value.fallback_product, value.order_id_field) if i)]
    return [value] if isinstance(value, int) else []


def _todo_note(line: str) -> str:
    _, marker, note = line.partition("TODO-ID:")
    return note.strip() if marker else ""


def _line_of(lines: list[str], pattern: str, after: int) -> int | None:
    """The 1-based number of the first line from line ``after`` on that matches."""
    regex = re.compile(pattern)
    for index in range(max(after - 1, 0), len(lines)):
        if regex.search(lines[index]):
            return index + 1
    return None
