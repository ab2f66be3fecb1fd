"""The pure decisions of delivery: when to retry, when to give up, when Keap says wait."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from app.delivery.gate import (
    SECOND_MARGIN_BOUNDS,
    ceilings_for,
    second_margin,
    throttle_pause_until,
)
from app.delivery.retry import MAX_DELAY, backoff_delay, decide_retry
from app.domain.quota import UTC_DAY_WINDOW

NOW = 1_800_000_000.0


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    rng = random.Random(7)
    delays = [backoff_delay(n, rng, base=5.0) for n in range(1, 8)]
    for n, delay in enumerate(delays, start=1):
        exponential = min(MAX_DELAY, 5.0 * 2 ** (n - 1))
        assert exponential / 2 <= delay <= exponential
    assert backoff_delay(40, rng) <= MAX_DELAY


def test_retry_after_wins_over_backoff() -> None:
    decision = decide_retry(
        failures=1, retry_after=120.0, first_failure_at=NOW, now=NOW, max_hours=72
    )
    assert not decision.dead
    assert decision.next_attempt_at is not None
    assert NOW + 120 <= decision.next_attempt_at <= NOW + 121


def test_an_event_failing_past_the_retry_window_is_dead() -> None:
    first = NOW - 72 * 3600 + 1  # the window ends in a second; the next try would be later
    decision = decide_retry(
        failures=30, retry_after=None, first_failure_at=first, now=NOW, max_hours=72
    )
    assert decision.dead
    assert decision.next_attempt_at is None
    assert "72 h" in decision.reason


def test_keap_headers_pause_delivery_only_as_long_as_they_say() -> None:
    assert throttle_pause_until({"x-keap-product-throttle-available": "12"}, 200, NOW) is None
    assert throttle_pause_until({"x-keap-product-throttle-available": "0"}, 200, NOW) == NOW + 1
    assert throttle_pause_until({}, 429, NOW) == NOW + 1
    reset_ms = str(int((NOW + 3600) * 1000))  # Keap sends epoch milliseconds
    spent = {"x-keap-product-quota-available": "0", "x-keap-product-quota-expiry-time": reset_ms}
    assert throttle_pause_until(spent, 200, NOW) == NOW + 3600
    iso = {
        "x-keap-product-quota-available": "0",
        "x-keap-product-quota-expiry-time": "2027-01-15T09:00:00Z",
    }
    assert throttle_pause_until(iso, 200, NOW) == datetime(2027, 1, 15, 9, tzinfo=UTC).timestamp()
    assert throttle_pause_until({"x-keap-product-quota-available": "0"}, 200, NOW) == NOW + 60


def test_ceilings_keep_a_margin_below_keaps_windows() -> None:
    ceilings = {window: limit for limit, window in ceilings_for(5, 240, 30_000)}
    assert ceilings[0.2] == 1  # calls spaced 1/5 s apart
    assert ceilings[1.15] == 5
    assert ceilings[60.5] == 240
    assert ceilings[UTC_DAY_WINDOW] == 30_000  # the UTC day, as Keap counts its quota


def test_the_seconds_margin_is_as_wide_as_the_minute_leaves_room_for() -> None:
    # A key: the minute binds (240/min = 4/s), so the second keeps a wide margin.
    assert second_margin(5, 240) == SECOND_MARGIN_BOUNDS[1]
    # OAuth: 25/s x 60 = 1 500/min, the second binds: the narrowest margin, so that the
    # gate lets through 25 / 1.04 = 96 % of the quota.
    assert second_margin(25, 1500) == SECOND_MARGIN_BOUNDS[0]
    assert 25 * 60 / (1 + second_margin(25, 1500)) >= 0.95 * 1500
    # In between: just enough room for the minute's calls.
    assert second_margin(22, 1200) == pytest.approx(0.1)
    ceilings = {window: limit for limit, window in ceilings_for(25, 1500, 150_000)}
    assert ceilings[1.04] == 25
    assert ceilings[60.5] == 1500
    assert ceilings[0.04] == 1
