"""`python -m fake_keap --help` documents the defaults and the control API, and every
control example it (and `relay sandbox`) shows is one the fake accepts."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx

from app.sandbox import FAILURES
from fake_keap import FakeKeapServer

REPO = Path(__file__).resolve().parents[2]  # fake_keap/ is a package of the checkout's root


def help_text() -> str:
    done = subprocess.run(
        [sys.executable, "-m", "fake_keap", "--help"], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_help_names_the_defaults_the_relay_settings_and_the_control_api() -> None:
    text = help_text()
    for needle in (
        "--port PORT           0 picks a free port (default: 9000)",
        "every API key is refused",
        "RELAY_KEAP_BASE_URL=",
        "RELAY_KEAP_API_KEY=",
        "GET  /_fake/state",
        "POST /_fake/reset",
        "POST /_fake/config",
        "no rate ceilings",
    ):
        assert needle in text, needle


def test_every_one_line_control_example_is_accepted(fake: FakeKeapServer) -> None:
    text = help_text()
    section = text[text.index("POST /_fake/config") : text.index("Example:")]
    examples = [json.loads(example) for example in json_objects(section)]
    assert len(examples) == 9
    examples += [body for _, body in FAILURES]
    for body in examples:
        answer = httpx.post(f"{fake.control_url}/config", json=body)
        assert answer.status_code == 200, (body, answer.text)
        httpx.post(f"{fake.control_url}/reset", json={"keep_config": False})


def json_objects(text: str) -> list[str]:
    """Each top-level {...} in ``text``, possibly over several lines."""
    found, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char == "{":
            start = index if depth == 0 else start
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                found.append(re.sub(r"\s+", " ", text[start : index + 1]))
    return found


def test_a_documented_failure_makes_the_next_call_fail(fake: FakeKeapServer) -> None:
    httpx.post(f"{fake.control_url}/config", json=dict(FAILURES)[next(iter(dict(FAILURES)))])
    answer = httpx.put(
        f"{fake.base_url}/v1/contacts",
        headers={"X-Keap-API-Key": "key-good"},
        json={"email_addresses": [{"email": "a@example.com", "field": "EMAIL1"}],
              "duplicate_option": "Email"},
    )  # fmt: skip
    assert answer.status_code == 400
