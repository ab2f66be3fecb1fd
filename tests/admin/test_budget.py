"""The quota budget as the operator reads it: the dashboard header and /metrics."""

from __future__ import annotations

import re
import time

import httpx

from app.delivery.gate import ceilings_for
from app.domain.quota import UTC_DAY_WINDOW, utc_day_start
from app.settings import KEY_CEILINGS
from app.store.base import Store
from tests.admin.conftest import login


async def spend(store: Store, calls: int) -> None:
    now = time.time()
    for n in range(calls):
        assert await store.reserve_call(now - 0.25 * (calls - n), ceilings_for(*KEY_CEILINGS)) == 0


async def test_the_header_shows_calls_used_against_each_ceiling_and_the_reset(
    admin: httpx.AsyncClient, store: Store
) -> None:
    await spend(store, 3)
    await login(admin)
    page = (await admin.get("/admin/")).text
    day = re.search(r'data-testid="budget-day">([^<]*)<', page)
    assert day
    assert day.group(1) == "3 / 30,000"
    assert 'data-testid="budget-minute">3/240 this minute<' in page
    assert re.search(r'data-testid="budget-second">\d/5 this second<', page)
    resets = re.search(r'data-testid="budget-resets">in (\d+) (h|min|s)<', page)
    assert resets, "the time to the 00:00 UTC reset"


async def test_metrics_expose_the_same_budget(admin: httpx.AsyncClient, store: Store) -> None:
    await spend(store, 4)
    text = (await admin.get("/metrics")).text
    assert 'relay_keap_calls_used{window="day"} 4.0' in text
    assert 'relay_keap_calls_used{window="minute"} 4.0' in text
    assert 'relay_keap_call_ceiling{window="day"} 30000.0' in text
    assert 'relay_keap_call_ceiling{window="second"} 5.0' in text
    resets = re.search(r"^relay_keap_quota_resets_at_seconds (\S+)$", text, re.M)
    assert resets
    assert float(resets.group(1)) == utc_day_start(time.time()) + UTC_DAY_WINDOW
