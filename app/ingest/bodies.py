"""Turn a webhook's raw body into the ``body`` that selectors read (SPEC §2 "Bodies").

JSON (an object or an array: the caller splits arrays), or form-encoded with PHP-style
nested keys (``customer[email]``, ``items[0][sku]``, ``tags[]``). A body without a usable
Content-Type, or labelled form-encoded but holding JSON, is sniffed. Form values stay
strings.
"""

from __future__ import annotations

import binascii
import json
import math
import re
from typing import Any

from app.errors import BadRequest

# Levels of objects and lists in a body: what ingest accepts and what the admin API and
# dashboard show (a top-level object is level 1).
MAX_NESTING = 32
# PHP's max_input_vars: senders that post forms to PHP already stay within it.
MAX_FORM_FIELDS = 1_000
# Bracketed keys in all field names together (``items[0][sku]`` has two): each builds or
# walks a node, so this bounds the work of the deepest forms.
MAX_FORM_NESTED_KEYS = 5_000
# Counted in the raw JSON before parsing (strings included, so an upper bound): objects
# and lists, and values (commas + 1). json.loads holds the GIL throughout (no other
# thread, the event loop included, runs meanwhile): at these limits, ~5 ms at most.
MAX_JSON_CONTAINERS = 10_000
MAX_JSON_VALUES = 100_000

_JSON_TYPES = frozenset({"application/json", "text/json"})
_FORM_TYPE = "application/x-www-form-urlencoded"
# RFC 9110 media type: token "/" token. Anything else is treated as if no header came.
_MEDIA_TYPE = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+/[!#$%&'*+.^_`|~0-9a-z-]+")
_BRACKETED = re.compile(r"\[([^\]]*)\]")
# Keys PHP treats as integers; longer digit strings stay text (and int() stays cheap).
_INDEX = re.compile(r"0|[1-9][0-9]{0,17}")
_UTF8_BOM = b"\xef\xbb\xbf"
_LONE_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")
# A JSON escape of a UTF-16 surrogate (\ud800-\udfff): only such an escape can put a
# surrogate into a parsed string (raw surrogate bytes are not UTF-8). Pairs become one
# character; a lone one is half a character, which no UTF-8 text (nor PostgreSQL) holds.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class BodyError(BadRequest):
    """A body we cannot read (HTTP 400); the message is safe to show the sender."""

    @property
    def status(self) -> int:
        return self.status_code


class BodyTooLarge(BodyError):
    """A body over one of the counting limits (HTTP 413)."""

    status_code = 413
    title = "Payload Too Large"
    slug = "payload-too-large"


class BodyTooDeep(BodyError):
    """A body nested past MAX_NESTING (HTTP 400); never retried as a form."""


class UnsupportedBody(BodyError):
    """A content type the relay does not take (HTTP 415)."""

    status_code = 415
    title = "Unsupported Media Type"
    slug = "unsupported-media-type"


class UnstorableJson(BodyError):
    """Valid JSON holding a value the relay cannot store as sent (HTTP 400): not to be
    read as a form instead."""


def parse_body(raw: bytes, content_type: str | None) -> Any:
    """The parsed body: a dict, or a list for a JSON array. An empty body is ``{}``."""
    if not raw.strip():
        return {}
    media_type = _media_type(content_type)
    if media_type is None:
        return _sniff(raw)
    if media_type in _JSON_TYPES or media_type.endswith("+json"):
        return parse_json(raw)
    if media_type == _FORM_TYPE:
        return _sniff(raw)  # a WordPress plugin labels JSON as form-encoded
    if media_type == "multipart/form-data":
        raise UnsupportedBody("multipart/form-data is not supported: send JSON or form-encoded")
    raise UnsupportedBody(f"content type {media_type} is not supported: send JSON or form-encoded")


def parse_json(raw: bytes) -> dict[str, Any] | list[Any]:
    """A JSON object or array from UTF-8 bytes; anything else is a BodyError."""
    containers = _check_json_counts(raw)
    try:
        text = raw.removeprefix(_UTF8_BOM).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(f"body is not valid JSON: invalid UTF-8 at byte {exc.start}") from None
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise BodyError(f"body is not valid JSON: {exc}") from None
    except ValueError as exc:  # NaN / Infinity, which stored JSON could not hold
        raise BodyError(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BodyError("body is not valid JSON: nested too deeply") from None
    if not isinstance(value, dict | list):
        raise BodyError("body is JSON but not an object or an array")
    # Fewer objects and lists than levels allowed cannot nest too deep: most webhooks.
    if containers > MAX_NESTING and nesting_depth(value) > MAX_NESTING:
        raise BodyTooDeep(f"body is nested more than {MAX_NESTING} levels deep")
    if b"\\u" in raw and _SURROGATE_ESCAPE.search(raw):  # rare: only then look closer
        _refuse_lone_surrogates(value)
    return value


def _check_json_counts(raw: bytes) -> int:
    """Refuse, before parsing, a body whose parse would build too many objects; the
    number of ``{`` and ``[`` (an upper bound on its objects and lists)."""
    containers = raw.count(b"{") + raw.count(b"[")
    if containers > MAX_JSON_CONTAINERS:
        raise BodyTooLarge(f"body holds more than {MAX_JSON_CONTAINERS} JSON objects and lists")
    if raw.count(b",") >= MAX_JSON_VALUES:
        raise BodyTooLarge(f"body holds more than {MAX_JSON_VALUES} JSON values")
    return containers


_CONTAINERS = (dict, list)


def nesting_depth(value: Any, stop_after: int = MAX_NESTING) -> int:
    """Levels of objects and lists in ``value`` (0 for a scalar), counted up to one past
    ``stop_after``. Level by level, without recursion; a list or object holding only
    scalars is skipped at C speed."""
    level = [value] if isinstance(value, _CONTAINERS) else []
    depth = 0
    while level and depth <= stop_after:
        depth += 1
        below: list[Any] = []
        for node in level:
            children = node.values() if isinstance(node, dict) else node
            if dict in (kinds := set(map(type, children))) or list in kinds:
                below.extend(c for c in children if isinstance(c, _CONTAINERS))
        level = below
    return depth


def _refuse_lone_surrogates(value: Any) -> None:
    """UnstorableJson naming the first string (or key) holding a lone UTF-16 surrogate.

    RFC 8259 §8.2 lets a JSON string escape one (``"Ada \\ud83d"``: a sender cut a
    name mid-emoji), and leaves what it means unpredictable. It is not a character:
    UTF-8 — our storage, PostgreSQL's text, Infusionsoft's API — cannot hold it. The
    relay refuses the webhook, with the place named, instead of storing something else
    than was sent (docs/operations.md, "What the relay refuses to store")."""
    stack: list[tuple[str, Any]] = [("body", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            _check_text(item, path)
        elif isinstance(item, dict):
            for key, child in reversed(item.items()):
                _check_text(key, f"a key of {path}")
                stack.append((f"{path}.{key}", child))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", child) for i, child in reversed(list(enumerate(item))))


def _check_text(text: str, path: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        raise UnstorableJson(
            f"body cannot be stored: {path[:200]} holds a lone UTF-16 surrogate "
            f"(\\u{code:04x} at character {exc.start}), half of a character; send the "
            "whole character (a surrogate pair) or none"
        ) from None


def parse_form(raw: bytes | str) -> dict[str, Any]:
    """``application/x-www-form-urlencoded`` with PHP's nested keys; values stay strings.

    Scanning stops at MAX_FORM_FIELDS: the rest of the body is never split or decoded.
    """
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
    fields = data.split(b"&", MAX_FORM_FIELDS)
    if len(fields) > MAX_FORM_FIELDS and fields[-1].strip(b"&"):
        raise BodyTooLarge(f"form has more than {MAX_FORM_FIELDS} fields")
    root = _FormNode()
    nested_keys = 0
    for field in fields:
        if not field:
            continue
        encoded_name, _, encoded_value = field.partition(b"=")
        path = _key_path(_form_decode(encoded_name))
        if not path:
            continue
        nested_keys += len(path) - 1
        if nested_keys > MAX_FORM_NESTED_KEYS:
            raise BodyTooLarge(f"form field names hold more than {MAX_FORM_NESTED_KEYS} [keys]")
        _assign(root, path, _form_decode(encoded_value))
    # The top level stays an object even with keys 0, 1…: a list would be split into events.
    return {key: _lists_from_indexes(child) for key, child in root.items()}


def _form_decode(encoded: bytes) -> str:
    """``unquote_plus`` at C speed: ``%XX`` escapes become ``=XX`` for binascii's
    quoted-printable decoder (a literal ``=`` first becomes ``=3D``); urllib's decoder
    loops in Python over every escape (75 ms for a 1 MiB body of them; this takes 7).
    Invalid UTF-8 becomes U+FFFD: Latin-1 senders exist, and are not refused."""
    if b"%" not in encoded and b"+" not in encoded:
        return encoded.decode("utf-8", "replace")
    # A % that starts no escape stays a % (as urllib keeps it): spelled %25 first.
    encoded = _LONE_PERCENT.sub(b"%25", encoded)
    quoted = encoded.replace(b"=", b"=3D").replace(b"+", b" ").replace(b"%", b"=")
    return binascii.a2b_qp(quoted).decode("utf-8", "replace")


def parse_query(query_string: str) -> dict[str, Any]:
    """A URL query string, read with the same rules as a form body."""
    return parse_form(query_string)


def _media_type(content_type: str | None) -> str | None:
    """``type/subtype`` in lower case, or None when the header is absent or unparsable."""
    if not content_type:
        return None
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type if _MEDIA_TYPE.fullmatch(media_type) else None


def _sniff(raw: bytes) -> Any:
    """JSON when the body is a JSON object or array, else a form."""
    if raw.lstrip(b" \t\r\n" + _UTF8_BOM)[:1] in (b"{", b"["):
        try:
            return parse_json(raw)
        except (BodyTooLarge, BodyTooDeep, UnstorableJson):
            raise
        except BodyError:
            pass  # a form that happens to start with a bracket
    return parse_form(raw)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _parse_float(text: str) -> float:
    """Numbers are IEEE 754 doubles (RFC 8259 §6); one past their range would become
    infinity, which stored JSON cannot hold (it would turn into null): refused."""
    value = float(text)
    if math.isinf(value):
        raise UnstorableJson(
            f"body cannot be stored: the number {text[:40]} is beyond the range of a "
            "double (RFC 8259 §6)"
        )
    return value


def _key_path(name: str) -> list[str]:
    """``a[b][]`` → ["a", "b", ""]: PHP's reading of a field name ([] on its own is an append).

    A name with an empty base (``=x``, ``[a]=x``) is dropped, as PHP does; an unclosed
    bracket leaves the whole name a plain key; text after the last ``]`` is ignored.
    """
    name = name.lstrip(" ")
    base, bracket, _ = name.partition("[")
    if not base:
        return []
    if not bracket:
        return [name]
    segments: list[str] = []
    position = len(base)
    while match := _BRACKETED.match(name, position):
        segments.append(match.group(1))
        position = match.end()
    if not segments:
        return [name]
    if len(segments) >= MAX_NESTING:  # the base is a level of its own
        raise BodyTooDeep(f"a form field is nested more than {MAX_NESTING} levels deep")
    return [base, *segments]


class _FormNode(dict[str, Any]):
    """An object being built from form fields; remembers where ``[]`` appends next."""

    __slots__ = ("next_index",)

    def __init__(self) -> None:
        super().__init__()
        self.next_index = 0  # one past the largest integer key, as in PHP

    def put(self, key: str, value: Any) -> None:
        self[key] = value
        if _INDEX.fullmatch(key):
            self.next_index = max(self.next_index, int(key) + 1)


def _assign(root: _FormNode, path: list[str], value: str) -> None:
    """Set ``value`` at ``path``; where a shape conflicts, the later field wins."""
    node = root
    for depth, segment in enumerate(path):
        key = str(node.next_index) if segment == "" else segment  # "[]" appends
        if depth == len(path) - 1:
            node.put(key, value)
            return
        child = node.get(key)
        if not isinstance(child, _FormNode):
            child = _FormNode()
            node.put(key, child)
        node = child


def _lists_from_indexes(node: Any) -> Any:
    """Objects whose keys are exactly 0…n-1 become lists in index order, recursively;
    every object becomes a plain dict."""
    if not isinstance(node, dict):
        return node
    converted = {key: _lists_from_indexes(child) for key, child in node.items()}
    if converted and all(_INDEX.fullmatch(key) for key in converted):
        indexes = sorted(int(key) for key in converted)
        if indexes == list(range(len(indexes))):
            return [converted[str(index)] for index in indexes]
    return converted


# Built once: json.loads with a keyword argument builds a decoder on every call.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_parse_float)
