"""Log lines: what each says about an event, and what none of them may say."""

from __future__ import annotations

import logging

import pytest

from app.config.models import RelayConfig
from app.observability.logging import (
    bind_log_context,
    current_log_context,
    log_context,
    mask_email,
    register_secrets,
)
from fake_keap.server import FakeKeapServer
from tests.delivery.conftest import API_KEY, running_relay
from tests.observability.conftest import LogCapture, json_lines

ORDER = {
    "event": "order.paid",
    "id": "o-1",
    "email": "ada.lovelace@example.com",
    "first_name": "Ada",
    "last_name": "Lovelace",
}
STEP_OF_OPERATION = {
    "contact.upsert": "contact.upsert",
    "action_set.run": "action_set",
    "tags.add": "tags",
    "sequence.add": "sequence",
    "user.discover": "email_template",  # the sending user, asked once (docs/keap-api.md)
    "email_template.send": "email_template",
    "goal.achieve": "goal",
}
log = logging.getLogger("relay.test")


@pytest.mark.parametrize(
    ("email", "masked"),
    [
        ("jane.doe@example.com", "j***@example.com"),
        ("J@Example.COM", "J***@Example.COM"),
        ("not-an-email", "***"),
        (None, None),
    ],
)
def test_mask_email_keeps_only_the_first_letter_and_the_domain(
    capture_logs: LogCapture, email: str | None, masked: str | None
) -> None:
    capture_logs(pii=False)
    assert mask_email(email) == masked


def test_pii_logging_shows_emails_whole(capture_logs: LogCapture) -> None:
    out = capture_logs(pii=True)
    log.info("contact", extra={"contact": mask_email("jane.doe@example.com")})
    assert json_lines(out.getvalue())[0]["contact"] == "jane.doe@example.com"


def test_an_email_no_caller_masked_is_masked_on_the_way_out(capture_logs: LogCapture) -> None:
    out = capture_logs()
    log.info("Keap said: duplicate jane.doe@example.com", extra={"error": "x bob@shop.io y"})
    line = out.getvalue()
    assert "jane.doe@" not in line
    assert "bob@" not in line
    entry = json_lines(line)[0]
    assert entry["message"] == "Keap said: duplicate j***@example.com"
    assert entry["error"] == "x b***@shop.io y"


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_registered_secrets_never_reach_a_line(capture_logs: LogCapture, fmt: str) -> None:
    out = capture_logs(fmt)
    register_secrets(["kp-SECRET-api-key-0001", 'quo"te\\secret', "short", None])
    log.info(
        "echoed kp-SECRET-api-key-0001",
        extra={"detail": 'body had quo"te\\secret in it', "key": "kp-SECRET-api-key-0001"},
    )
    text = out.getvalue()
    assert "kp-SECRET" not in text
    assert "quo" not in text  # its JSON-escaped form too
    assert text.count("[redacted]") == 3
    if fmt == "json":
        assert json_lines(text)[0]["key"] == "[redacted]"
    else:
        assert len(text.splitlines()) == 1
        assert "key=[redacted]" in text


def test_log_context_fields_reach_every_line_inside_it(capture_logs: LogCapture) -> None:
    out = capture_logs()
    with log_context(event_id="ev1", source="shop"):
        bind_log_context(route="paid-order", action="tags")
        log.info("inside")
        log.info("explicit wins", extra={"action": "goal"})
        bind_log_context(action=None)
        log.info("action cleared")
    log.info("outside")
    inside, explicit, cleared, outside = json_lines(out.getvalue())
    assert {k: inside[k] for k in ("event_id", "source", "route", "action")} == {
        "event_id": "ev1",
        "source": "shop",
        "route": "paid-order",
        "action": "tags",
    }
    assert explicit["action"] == "goal"
    assert "action" not in cleared
    assert cleared["route"] == "paid-order"
    assert "event_id" not in outside
    assert current_log_context() == {}


async def test_each_keap_call_line_names_its_event_source_route_and_action(
    capture_logs: LogCapture,
    database_url: str,
    fake_keap: FakeKeapServer,
    delivery_config: RelayConfig,
) -> None:
    out = capture_logs()
    async with running_relay(database_url, fake_keap, delivery_config) as relay:
        event_id = await relay.post(ORDER)
        await relay.wait_for(event_id, "delivered")
    lines = json_lines(out.getvalue())

    received = [line for line in lines if line["message"] == "webhook received"]
    assert [(r["event_id"], r["source"], r["outcome"]) for r in received] == [
        (event_id, "cart", "accepted")
    ]
    calls = [line for line in lines if line["message"] == "keap call"]
    assert [c["operation"] for c in calls] == list(STEP_OF_OPERATION)
    for call in calls:
        assert call["event_id"] == event_id
        assert call["source"] == "cart"
        assert call["route"] == "paid-order"
        assert call["action"] == STEP_OF_OPERATION[call["operation"]]
        assert call["outcome"] == "ok"
        assert call["status"] in (200, 201, 202, 204)
    (done,) = [line for line in lines if line["message"] == "event delivered"]
    assert (done["event_id"], done["contact"]) == (event_id, "a***@example.com")
    assert "action" not in done  # the last step's context does not outlive it
    text = out.getvalue()
    assert API_KEY not in text
    assert "ada.lovelace@" not in text


async def test_a_dead_event_line_says_why_without_the_email_keap_echoed(
    capture_logs: LogCapture,
    database_url: str,
    fake_keap: FakeKeapServer,
    delivery_config: RelayConfig,
) -> None:
    out = capture_logs()
    fake_keap.state.set_fault(
        "ContactService.runActionSequence",
        5,
        f"[InvalidParameter] {ORDER['email']} is opted out (key {API_KEY})",
    )
    async with running_relay(database_url, fake_keap, delivery_config) as relay:
        event_id = await relay.post(ORDER)
        await relay.wait_for(event_id, "dead")
    lines = json_lines(out.getvalue())
    (dead,) = [line for line in lines if line["message"] == "event dead"]
    assert (dead["event_id"], dead["source"], dead["route"], dead["action"]) == (
        event_id,
        "cart",
        "paid-order",
        "action_set",
    )
    assert "InvalidParameter" in dead["error"]
    assert "a***@example.com" in dead["error"]
    (failed,) = [c for c in lines if c["message"] == "keap call" and c["outcome"] == "failed"]
    assert failed["action"] == "action_set"
    assert "ada.lovelace@" not in out.getvalue()
    assert API_KEY not in out.getvalue()
