"""Alerts reach a real HTTP receiver, grouped, once, and never get in delivery's way."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.config.models import RelayConfig
from fake_keap.server import FakeKeapServer
from tests.alerts.conftest import AlertReceiver
from tests.conftest import make_config
from tests.delivery.conftest import running_relay
from tests.delivery.test_xmlrpc_sunset import WITH_ACTION_SET

ORDER = {"event": "order.paid", "id": "o-1", "email": "ada@example.com", "first_name": "Ada"}
FAULT = "[RecordNotFound]Unable to perform update. Record not found for Id:42"
PUBLIC = "https://relay.example.com"


def alerting(receiver_url: str, **more: Any) -> dict[str, Any]:
    return {
        "alert_url": [receiver_url],
        "public_url": PUBLIC,
        "alert_check_seconds": 0.5,
        **more,
    }


async def test_a_burst_of_dead_events_is_one_message_and_a_restart_does_not_repeat_it(
    database_url: str,
    fake_keap: FakeKeapServer,
    delivery_config: RelayConfig,
    alert_receiver: AlertReceiver,
) -> None:
    fake_keap.state.set_fault("ContactService.runActionSequence", 5, FAULT)
    # Looks every second: a burst is one message once 2 s pass with nothing new in it.
    settings = alerting(alert_receiver.url, alert_check_seconds=1.0)
    async with running_relay(database_url, fake_keap, delivery_config, **settings) as relay:
        ids = [
            await relay.post({**ORDER, "id": f"o-{i}", "email": f"c{i}@example.com"})
            for i in range(5)
        ]
        for event_id in ids:
            await relay.wait_for(event_id, "dead")
        [message] = await alert_receiver.wait_for(1)
        await asyncio.sleep(2.5)  # more looks: nothing more to tell
        assert len(alert_receiver.messages) == 1, alert_receiver.messages
    assert message["kind"] == "dead_events"
    assert message["fields"]["count"] == 5, message
    assert message["fields"]["source"] == "cart"
    assert message["fields"]["route"] == "paid-order"
    assert "RecordNotFound" in message["fields"]["reason"]
    assert message["text"] == message["content"]  # Slack reads text, Discord content
    assert message["text"].startswith("[relay] 5 events went dead")
    assert "What to do:" in message["text"]
    assert message["dashboard_url"] == f"{PUBLIC}/admin/?status=dead&source=cart"
    assert message["dashboard_url"] in message["text"]

    # A restart, and two more of the same within the window: the group was told.
    async with running_relay(database_url, fake_keap, delivery_config, **settings) as relay:
        for i in range(5, 7):
            await relay.wait_for(await relay.post({**ORDER, "id": f"o-{i}"}), "dead")
        await asyncio.sleep(3.0)
    assert len(alert_receiver.messages) == 1, alert_receiver.messages


async def test_a_pause_and_its_resumption_are_told_once_each_across_a_restart(
    database_url: str,
    fake_keap: FakeKeapServer,
    delivery_config: RelayConfig,
    alert_receiver: AlertReceiver,
) -> None:
    fake_keap.state.set_reject_all_credentials(True)
    settings = alerting(alert_receiver.url)
    async with running_relay(database_url, fake_keap, delivery_config, **settings) as relay:
        event_id = await relay.post(ORDER)
        [paused] = await alert_receiver.wait_for(1)
    assert paused["kind"] == "auth_paused"
    assert "relay keap login" in paused["action"]
    assert paused["dashboard_url"] == f"{PUBLIC}/admin/"

    # Restarted with the key still refused: paused again, but not told again.
    async with running_relay(database_url, fake_keap, delivery_config, **settings) as relay:
        await relay.readiness("keap_auth", "failing", within=10)
        await asyncio.sleep(1.0)
        assert alert_receiver.kinds() == ["auth_paused"]
        fake_keap.state.set_reject_all_credentials(False)
        await relay.wait_for(event_id, "delivered")
        await alert_receiver.wait_for(2)
        await asyncio.sleep(0.5)
    assert alert_receiver.kinds() == ["auth_paused", "auth_resumed"]


async def test_an_unreachable_alert_url_changes_nothing_else(
    database_url: str,
    fake_keap: FakeKeapServer,
    delivery_config: RelayConfig,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("app.alerts.sender.RETRY_DELAYS", (0.1, 0.1))
    fake_keap.state.set_fault("ContactService.runActionSequence", 5, FAULT)
    # A port nothing listens on (bound, then closed).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = alerting(f"http://127.0.0.1:{port}/alerts")
    async with running_relay(database_url, fake_keap, delivery_config, **settings) as relay:
        dead = await relay.wait_for(await relay.post(ORDER), "dead")
        tagged = await relay.post(
            {"event": "tag", "id": "t-1", "email": "bob@example.com", "first_name": "Bob"}
        )
        await relay.wait_for(tagged, "delivered")
        for _ in range(200):
            metrics = (await relay.client.get("/metrics")).text
            if 'relay_alerts_total{kind="dead_events",outcome="failed"} 1.0' in metrics:
                break
            await asyncio.sleep(0.05)
        assert 'relay_alerts_total{kind="dead_events",outcome="failed"} 1.0' in metrics
        ready = (await relay.client.get("/readyz")).json()
        assert ready["status"] == "ready"
        assert ready["checks"]["worker"]["status"] == "ok"
    assert "RecordNotFound" in dead.last_error
    bob = fake_keap.state.contact_by_email("bob@example.com")
    assert bob is not None
    assert fake_keap.state.tags_of(bob.id) == {500}


async def test_action_sets_given_up_after_the_sunset_are_told_with_the_way_off_xml_rpc(
    database_url: str, fake_keap: FakeKeapServer, alert_receiver: AlertReceiver
) -> None:
    fake_keap.state.retire_xmlrpc()  # 404 with Apigee's "no proxy for this path" fault
    passed = (datetime.now(UTC) - timedelta(days=1)).date()
    config = make_config(WITH_ACTION_SET)
    settings = alerting(alert_receiver.url, keap_xmlrpc_sunset=passed)
    async with running_relay(database_url, fake_keap, config, **settings) as relay:
        event = await relay.wait_for(await relay.post(ORDER), "dead")
        [message] = await alert_receiver.wait_for(1)
    assert event.last_error.startswith("action_set: Keap retired XML-RPC")
    assert message["kind"] == "xmlrpc_retired"
    assert message["fields"]["reason"] == event.last_error
    assert "docs/action-sets.md" in message["action"]
    assert "--replan" in message["action"]
    ada = fake_keap.state.contact_by_email("ada@example.com")
    assert ada is not None
    assert fake_keap.state.tags_of(ada.id) == {101}
