"""The database unreachable: told once per outage (it cannot be recorded there)."""

from __future__ import annotations

import asyncio

import httpx

from app.alerts.alerter import Alerter, AlertOptions
from app.alerts.sender import AlertSender
from app.store.base import Store
from tests.alerts.conftest import AlertReceiver


async def test_an_outage_is_told_once_after_the_grace_and_again_after_it_ends(
    store: Store, alert_receiver: AlertReceiver
) -> None:
    async with httpx.AsyncClient() as http:
        sender = AlertSender(http, [alert_receiver.url], None, None, retry_delays=[])
        alerts = Alerter(store, sender, AlertOptions(database_grace_seconds=0.2))
        alerts.database_failing("database is locked")  # within the grace: a blip
        await alerts.drain()
        assert alert_receiver.messages == []
        await asyncio.sleep(0.25)
        for _ in range(3):
            alerts.database_failing("database is locked")
        await alerts.drain()
        assert alert_receiver.kinds() == ["database_unreachable"]
        assert "RELAY_DATABASE_URL" in alert_receiver.messages[0]["action"]
        assert alert_receiver.messages[0]["fields"]["error"] == "database is locked"

        alerts.database_answers()
        alerts.database_failing("disk I/O error")
        await asyncio.sleep(0.25)
        alerts.database_failing("disk I/O error")
        await alerts.drain()
    assert alert_receiver.kinds() == ["database_unreachable", "database_unreachable"]


async def test_a_refusing_alert_url_is_tried_again(
    store: Store, alert_receiver: AlertReceiver
) -> None:
    alert_receiver.fail_next = 2  # two 500s, then accepted
    async with httpx.AsyncClient() as http:
        sender = AlertSender(http, [alert_receiver.url], None, None, retry_delays=[0.05, 0.05])
        alerts = Alerter(store, sender, AlertOptions())
        alerts.auth_paused("401 Unauthorized", 60)
        await alerts.drain()
    assert alert_receiver.kinds() == ["auth_paused"]
