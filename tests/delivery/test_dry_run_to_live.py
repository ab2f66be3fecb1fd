"""From dry-run to live without repeats, as a new user goes: events recorded in dry-run,
then a key, then `relay replay --dry-run-steps` — each step reaches Infusionsoft once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from app.cli import main
from app.config.models import RelayConfig
from fake_keap.server import FakeKeapServer
from tests.admin.conftest import ADMIN_TOKEN, BEARER, HTML
from tests.delivery.conftest import DELIVERY_YAML, running_relay
from tests.delivery.test_delivery_e2e import ORDER
from tests.delivery.test_xmlrpc_sunset import relay_cli

LIVE_ORDER = {**ORDER, "id": "o-2", "email": "grace@example.com", "first_name": "Grace"}


async def test_dry_run_steps_are_sent_once_for_real_and_real_steps_never_again(
    database_url: str,
    fake_keap: FakeKeapServer,
    delivery_config: RelayConfig,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = fake_keap.state
    async with running_relay(
        database_url, fake_keap, delivery_config, dry_run=True, admin_token=ADMIN_TOKEN
    ) as relay:
        dry_id = await relay.post(ORDER)
        await relay.wait_for(dry_id, "delivered")
        shown = (await relay.client.get(f"/admin/events/{dry_id}", headers=BEARER)).json()
        page = await relay.client.get(f"/admin/events/{dry_id}/view", headers={**BEARER, **HTML})
    assert page.text.count('data-testid="dry-run-step"') == len(shown["steps"])
    assert state.requests == []  # dry-run sent nothing
    assert all(step["dry_run"] for step in shown["steps"])
    stand_in_id = shown["contact_id"]
    assert stand_in_id is not None

    async with running_relay(
        database_url, fake_keap, delivery_config, admin_token=ADMIN_TOKEN
    ) as relay:
        live_id = await relay.post(LIVE_ORDER)  # delivered for real before the replay
        await relay.wait_for(live_id, "delivered")

        relay_cli(monkeypatch, tmp_path, database_url, DELIVERY_YAML)
        code = await asyncio.to_thread(main, ["replay", "--dry-run-steps"])
        assert code == 0
        assert "requeued 1 event" in capsys.readouterr().out  # not the live one
        event = await relay.wait_for(dry_id, "delivered")
        shown = (await relay.client.get(f"/admin/events/{dry_id}", headers=BEARER)).json()

        again = await relay.client.post(
            "/admin/replay", json={"dry_run_steps": True}, headers=BEARER
        )
        assert again.status_code == 202
        assert again.json() == {"requeued": 0}
        await asyncio.sleep(0.5)  # a requeued event would be picked up within this

    ada = state.contact_by_email("ada@example.com")
    grace = state.contact_by_email("grace@example.com")
    assert ada is not None
    assert grace is not None
    for contact in (ada, grace):  # each step of each event reached Infusionsoft once
        assert [r.action_set_id for r in state.action_set_runs if r.contact_id == contact.id] == [
            42
        ]
        assert [e.template_id for e in state.emails_sent if e.contact_id == contact.id] == [55]
        assert [g.call_name for g in state.goals_achieved if g.contact_id == contact.id] == [
            "purchase"
        ]
        assert state.tags_of(contact.id) == {101, 102}
    assert state.request_count("contact.upsert") == 2
    assert event.contact_id == ada.id != stand_in_id  # the real id, not the dry-run one
    assert shown["contact_id"] == ada.id
    assert not any(step["dry_run"] for step in shown["steps"])
    assert all(step["status"] == "done" for step in shown["steps"])


async def test_bulk_replay_refuses_requests_that_could_resend_real_steps_by_mistake(
    database_url: str, fake_keap: FakeKeapServer, delivery_config: RelayConfig
) -> None:
    async with running_relay(
        database_url, fake_keap, delivery_config, admin_token=ADMIN_TOKEN
    ) as relay:
        answer = await relay.client.post("/admin/replay", json={}, headers=BEARER)
        both = await relay.client.post(
            "/admin/replay", json={"dry_run_steps": True, "from_start": True}, headers=BEARER
        )
    assert answer.status_code == 400
    assert "status is required" in answer.json()["detail"]
    assert both.status_code == 400
    assert "would re-send steps that already ran for real" in both.json()["detail"]
