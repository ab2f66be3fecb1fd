"""The daily quota nearly spent, then spent: told once a day each, over restarts."""

from __future__ import annotations

import time

import httpx

from app.alerts.alerter import Alerter, AlertOptions
from app.alerts.sender import AlertSender
from app.domain.quota import utc_day_start
from app.store.base import Store
from tests.alerts.conftest import AlertReceiver

CEILINGS = (5, 240, 4)  # four calls a day


def alerter(store: Store, http: httpx.AsyncClient, url: str) -> Alerter:
    sender = AlertSender(http, [url], "https://relay.example.com", None, retry_delays=[])
    return Alerter(store, sender, AlertOptions(ceilings=CEILINGS, quota_percent=75))


async def test_nearly_spent_then_spent_are_told_once_each_and_not_after_a_restart(
    store: Store, alert_receiver: AlertReceiver
) -> None:
    async with httpx.AsyncClient() as http:
        first = alerter(store, http, alert_receiver.url)
        now = max(time.time(), utc_day_start(time.time()) + 60)  # the calls fall today
        for n in range(2):
            assert await store.reserve_call(now - 10 + n, [(4, 86400.0)]) == 0
        await first.check_quota(now)  # 50 %: below the threshold
        await first.drain()
        assert alert_receiver.messages == []

        assert await store.reserve_call(now - 5, [(4, 86400.0)]) == 0
        for _ in range(3):  # 75 %: told once, however often it looks
            await first.check_quota(now)
        await first.drain()
        assert alert_receiver.kinds() == ["quota_near"]
        near = alert_receiver.messages[0]
        assert near["fields"] == {
            "used": 3,
            "ceiling": 4,
            "resets_at": near["fields"]["resets_at"],
        }
        assert near["fields"]["resets_at"].endswith("00:00:00 UTC")

        assert await store.reserve_call(now - 4, [(4, 86400.0)]) == 0
        await first.check_quota(now)
        await first.drain()
        assert alert_receiver.kinds() == ["quota_near", "quota_spent"]
        assert "waits for the reset" in alert_receiver.messages[1]["text"]

        restarted = alerter(store, http, alert_receiver.url)
        await restarted.check_quota(now + 1)
        await restarted.drain()
    assert alert_receiver.kinds() == ["quota_near", "quota_spent"]
