"""``.env.example`` tells the truth about each setting it lists: here, which actions
RELAY_KEAP_USER_ID serves (SPEC §2: "the Keap user that template emails and notes are
sent on behalf of")."""

from __future__ import annotations

import inspect
from pathlib import Path

from app.keap.client import KeapClient

ENV_EXAMPLE = Path(__file__).resolve().parents[1] / ".env.example"

# The client method behind each action whose Keap call names the sending user.
SENT_ON_BEHALF_OF_THE_USER = {"send_email_template": "email_template", "add_note": "note"}


def comment_above(variable: str) -> str:
    """The comment lines just above ``variable=`` in .env.example, joined."""
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith(f"{variable}="))
    comment: list[str] = []
    for line in reversed(lines[:index]):
        if not line.startswith("#"):
            break
        comment.insert(0, line.lstrip("# "))
    return " ".join(comment)


def test_the_keap_user_comment_names_every_action_sent_on_behalf_of_the_user() -> None:
    asking = {
        name
        for name, method in vars(KeapClient).items()
        if inspect.isfunction(method) and "sender_user_id" in inspect.getsource(method)
    }
    assert asking == set(SENT_ON_BEHALF_OF_THE_USER)  # a new one: name it below too
    comment = comment_above("RELAY_KEAP_USER_ID")
    for action in SENT_ON_BEHALF_OF_THE_USER.values():
        assert f"`{action}`" in comment, comment
