"""Action sets through Keap's XML-RPC sunset, end to end over HTTP against the fake:
a retired API kills the action-set step at once while the rest of the route is
delivered, and a replay with --replan delivers the rebuilt route without repeats."""

from __future__ import annotations

import asyncio
import os
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.cli import main
from devkit.cart import cart_source
from fake_keap.server import FakeKeapServer
from tests.admin.conftest import ADMIN_TOKEN, BEARER
from tests.conftest import make_config
from tests.delivery.conftest import API_KEY, Relay, running_relay

ROUTE = (
    cart_source()
    + """routes:
  - name: paid-order
    source: cart
    event: order.paid
    contact: {email: body.email, given_name: body.first_name}
    actions:
%s
"""
)
WITH_ACTION_SET = ROUTE % (
    "      - email_template: 55\n      - action_set: 42\n      - tags: [101]"
)
WITH_GOAL = ROUTE % (
    "      - email_template: 55\n"
    "      - goal: {integration: shop, call_name: purchase}\n"
    "      - tags: [101]"
)
NO_ROUTE_FOR_IT = ROUTE.replace("event: order.paid", "event: order.refunded") % (
    "      - tags: [101]"
)
ORDER = {"event": "order.paid", "id": "o-1", "email": "ada@example.com", "first_name": "Ada"}


def today() -> datetime:
    return datetime.now(UTC)


PASSED = (today() - timedelta(days=1)).date()  # the sunset is behind us
AHEAD = (today() + timedelta(days=30)).date()  # the sunset is still to come


async def dead_at_the_sunset(database_url: str, fake: FakeKeapServer) -> str:
    """ORDER, delivered by a route whose action set met the retired XML-RPC API: its
    email went out and the event is dead. Its id."""
    fake.state.retire_xmlrpc(body_format="html")
    async with running_relay(
        database_url, fake, make_config(WITH_ACTION_SET), keap_xmlrpc_sunset=PASSED
    ) as relay:
        event_id = await relay.post(ORDER)
        await relay.wait_for(event_id, "dead")
    return event_id


def relay_after_the_sunset(
    database_url: str, fake: FakeKeapServer, config_yaml: str
) -> AbstractAsyncContextManager[Relay]:
    """A relay with this relay.yaml, past the sunset, with the admin API and dashboard."""
    return running_relay(
        database_url,
        fake,
        make_config(config_yaml),
        keap_xmlrpc_sunset=PASSED,
        admin_token=ADMIN_TOKEN,
    )


def relay_cli(
    monkeypatch: pytest.MonkeyPatch, workdir: Path, database_url: str, config_yaml: str
) -> None:
    """The environment `relay` runs in: this database, this relay.yaml, a key, nothing else."""
    for name in list(os.environ):
        if name.startswith("RELAY_"):
            monkeypatch.delenv(name)
    (workdir / "relay.yaml").write_text(config_yaml)
    monkeypatch.setenv("RELAY_CONFIG", str(workdir / "relay.yaml"))
    monkeypatch.setenv("RELAY_DATABASE_URL", database_url)
    monkeypatch.setenv("RELAY_KEAP_API_KEY", API_KEY)
    monkeypatch.chdir(workdir)  # no stray .env


async def test_a_retired_action_set_dies_at_once_and_replan_delivers_the_rebuilt_route(
    database_url: str,
    fake_keap: FakeKeapServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = fake_keap.state
    state.retire_xmlrpc()  # 404 with Apigee's "no proxy for this path" fault
    async with running_relay(
        database_url, fake_keap, make_config(WITH_ACTION_SET), keap_xmlrpc_sunset=PASSED
    ) as relay:
        event_id = await relay.post(ORDER)
        event = await relay.wait_for(event_id, "dead")
        contact = state.contact_by_email("ada@example.com")
        assert contact is not None
        # The email and the tag went out although the action set before the tag died.
        assert [(e.contact_id, e.template_id) for e in state.emails_sent] == [(contact.id, 55)]
        assert state.tags_of(contact.id) == {101}
        assert state.action_set_runs == []
        assert [(s.action, s.status) for s in event.steps] == [
            ("contact.upsert", "done"),
            ("email_template", "done"),
            ("action_set", "failed"),
            ("tags", "done"),
        ]
        action_set = event.steps[2]
        assert action_set.attempts == 1  # at once: no retry, no 72 h wait
        assert state.request_count("action_set.run") == 1
        for reason in (event.last_error, action_set.last_error):
            assert reason.startswith("action_set: Keap retired XML-RPC")
            assert "docs/action-sets.md" in reason
        assert [a.outcome for a in event.history if a.step_idx == 2] == ["retired"]
        metrics = (await relay.client.get("/metrics")).text
        assert 'relay_keap_xmlrpc_calls_total{code="404",operation="action_set.run"} 1.0' in (
            metrics
        )

        # The operator rebuilds the action set as an API goal and replays with --replan.
        relay_cli(monkeypatch, tmp_path, database_url, WITH_GOAL)
        code = await asyncio.to_thread(main, ["replay", "--status", "dead", "--replan"])
        assert code == 0
        assert "requeued 1 event" in capsys.readouterr().out
        event = await relay.wait_for(event_id, "delivered")

    assert [(g.integration, g.call_name, g.contact_id) for g in state.goals_achieved] == [
        ("shop", "purchase", contact.id)
    ]
    assert len(state.emails_sent) == 1  # the email was not sent again
    assert state.request_count("tags.add") == 1  # nor the tag
    assert state.request_count("contact.upsert") == 1  # the unchanged upsert was kept
    assert state.action_set_runs == []
    assert [(s.action, s.status) for s in event.steps] == [
        ("contact.upsert", "done"),
        ("email_template", "done"),
        ("goal", "done"),
        ("tags", "done"),
    ]
    assert event.last_error is None
    assert event.contact_id == contact.id


async def test_before_the_sunset_a_503_from_xmlrpc_is_a_brownout_and_retried(
    database_url: str, fake_keap: FakeKeapServer
) -> None:
    state = fake_keap.state
    state.retire_xmlrpc(status=503, body_format="html")
    async with running_relay(
        database_url, fake_keap, make_config(WITH_ACTION_SET), keap_xmlrpc_sunset=AHEAD
    ) as relay:
        event_id = await relay.post(ORDER)
        for _ in range(200):
            event = await relay.event(event_id)
            if event.steps[2].attempts >= 2:
                break
            await asyncio.sleep(0.05)
        assert event.status == "pending"
        assert event.steps[2].status == "pending"
        assert "HTTP 503" in event.last_error
        assert "retired" not in event.last_error
        state.retire_xmlrpc(False)  # the brownout ends
        event = await relay.wait_for(event_id, "delivered")
    contact = state.contact_by_email("ada@example.com")
    assert contact is not None
    assert [(r.contact_id, r.action_set_id) for r in state.action_set_runs] == [(contact.id, 42)]
    assert len(state.emails_sent) == 1
    assert event.last_error is None


async def test_replan_through_the_admin_api_for_one_event(
    database_url: str, fake_keap: FakeKeapServer
) -> None:
    state = fake_keap.state
    event_id = await dead_at_the_sunset(database_url, fake_keap)

    # A relay.yaml in which no route takes the event: the replay says so and changes nothing.
    async with relay_after_the_sunset(database_url, fake_keap, NO_ROUTE_FOR_IT) as relay:
        answer = await relay.client.post(
            f"/admin/events/{event_id}/replay", params={"replan": "true"}, headers=BEARER
        )
        assert answer.status_code == 409
        assert "does not deliver" in answer.json()["detail"]
        assert (await relay.event(event_id)).status == "dead"

    async with relay_after_the_sunset(database_url, fake_keap, WITH_GOAL) as relay:
        answer = await relay.client.post(
            f"/admin/events/{event_id}/replay", params={"replan": "true"}, headers=BEARER
        )
        assert answer.status_code == 202
        event = await relay.wait_for(event_id, "delivered")
        shown = (await relay.client.get(f"/admin/events/{event_id}", headers=BEARER)).json()
    assert [s["action"] for s in shown["steps"]] == [
        "contact.upsert",
        "email_template",
        "goal",
        "tags",
    ]
    assert "re-planned with the current relay.yaml" in next(
        h["request"] for h in shown["history"] if h["outcome"] == "replay"
    )
    assert len(state.goals_achieved) == 1
    assert len(state.emails_sent) == 1
    assert state.request_count("tags.add") == 1
    assert event.last_error is None
