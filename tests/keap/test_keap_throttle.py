"""Keap's rate headers as it sends them: lower-case units, an epoch-milliseconds expiry,
pipe-delimited tenant windows, no spike header. One parser serves the error classifier
and the rate gate."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from app.delivery.gate import throttle_pause_until
from app.keap.errors import KeapThrottledError, classify_http_error
from app.keap.throttle import read_throttle, spent_pause_seconds, throttled_retry_after

NOW = datetime(2026, 11, 28, 18, 0, tzinfo=UTC).timestamp()
MIDNIGHT = datetime(2026, 11, 29, tzinfo=UTC).timestamp()

# A PAT's answer as community clients log it (see docs/keap-api.md), the key's windows
# and the tenant's minute|day pair; no spike-limit header.
LIVE = {
    "x-keap-product-quota-limit": "30000",
    "x-keap-product-quota-time-unit": "day",
    "x-keap-product-quota-interval": "1",
    "x-keap-product-quota-available": "29990",
    "x-keap-product-quota-used": "10",
    "x-keap-product-quota-expiry-time": str(int(MIDNIGHT * 1000)),
    "x-keap-product-throttle-limit": "240",
    "x-keap-product-throttle-time-unit": "minute",
    "x-keap-product-throttle-interval": "1",
    "x-keap-product-throttle-available": "230",
    "x-keap-product-throttle-used": "10",
    "x-keap-tenant-id": "ab123",
    "x-keap-tenant-throttle-limit": "10000|250000",
    "x-keap-tenant-throttle-time-unit": "minute|day",
    "x-keap-tenant-throttle-interval": "1|1",
    "x-keap-tenant-throttle-available": "9990|249990",
    "x-keap-tenant-throttle-used": "10|10",
}


def test_the_live_header_set_reads_into_every_window() -> None:
    state = read_throttle(LIVE)
    assert state.throttle is not None
    assert state.quota is not None
    assert (state.throttle.seconds, state.throttle.limit, state.throttle.available) == (
        60.0,
        240,
        230,
    )
    assert (state.quota.seconds, state.quota.available) == (86400.0, 29990)
    assert state.quota_resets_at == MIDNIGHT  # epoch milliseconds, read as such
    assert [(w.seconds, w.limit, w.available) for w in state.tenant] == [
        (60.0, 10000, 9990),
        (86400.0, 250000, 249990),
    ]
    assert spent_pause_seconds(state, NOW) is None
    assert throttle_pause_until(LIVE, 200, NOW) is None


def test_header_names_and_units_are_read_whatever_their_case() -> None:
    shouted = {k.upper(): v for k, v in LIVE.items()}
    shouted["X-KEAP-PRODUCT-THROTTLE-TIME-UNIT"] = "MINUTE"
    shouted["X-KEAP-PRODUCT-THROTTLE-AVAILABLE"] = "0"
    assert spent_pause_seconds(read_throttle(shouted), NOW) == 60.0


def test_a_spent_key_minute_window_waits_the_window() -> None:
    spent = {**LIVE, "x-keap-product-throttle-available": "0"}
    assert throttled_retry_after(spent, NOW) == 60.0
    assert throttle_pause_until(spent, 200, NOW) == NOW + 1  # the gate's windows take over


def test_a_spent_tenant_minute_window_is_a_throttle_even_when_the_key_has_room() -> None:
    spent = {**LIVE, "x-keap-tenant-throttle-available": "0|249000"}
    assert throttled_retry_after(spent, NOW) == 60.0
    assert throttle_pause_until(spent, 200, NOW) == NOW + 1


def test_a_spent_tenant_day_waits_for_midnight_utc() -> None:
    spent = {**LIVE, "x-keap-tenant-throttle-available": "5000|0"}
    assert throttled_retry_after(spent, NOW) == MIDNIGHT - NOW
    assert throttle_pause_until(spent, 200, NOW) == MIDNIGHT


def test_a_spent_key_quota_waits_for_its_expiry_time() -> None:
    spent = {**LIVE, "x-keap-product-quota-available": "0"}
    assert throttle_pause_until(spent, 200, NOW) == MIDNIGHT
    # The error's wait is counted from the real clock, so its expiry must be ahead of it,
    # not of NOW (a fixed one passed at 2026-11-29 00:00 UTC and the wait fell to 0).
    ahead = int((time.time() + 3600) * 1000)
    spent_now = {**spent, "x-keap-product-quota-expiry-time": str(ahead)}
    error = classify_http_error("tags.add", 429, spent_now, b'{"code":"429"}')
    assert isinstance(error, KeapThrottledError)
    assert error.retry_after is not None
    assert error.retry_after > 0


def test_a_single_valued_tenant_header_is_one_window() -> None:
    single = {
        "x-keap-tenant-throttle-limit": "10000",
        "x-keap-tenant-throttle-time-unit": "minute",
        "x-keap-tenant-throttle-available": "0",
    }
    assert [(w.seconds, w.available) for w in read_throttle(single).tenant] == [(60.0, 0)]
    assert throttled_retry_after(single, NOW) == 60.0


def test_blank_values_on_an_unauthenticated_answer_are_no_windows() -> None:
    blank = dict.fromkeys(LIVE, "")
    state = read_throttle(blank)
    assert (state.throttle, state.quota, state.quota_resets_at, state.tenant) == (
        None,
        None,
        None,
        (),
    )
    assert throttle_pause_until(blank, 401, NOW) is None


def test_retry_after_still_wins_over_the_headers() -> None:
    spent = {**LIVE, "x-keap-tenant-throttle-available": "5000|0", "Retry-After": "7"}
    assert throttled_retry_after(spent, NOW) == 7.0
