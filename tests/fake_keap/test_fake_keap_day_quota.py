"""The fake's daily quota is counted per UTC day, as Keap's: "30000 Queries per Day
(Resets at 12:00 AM UTC)" (developer.infusionsoft.com/api-token-quota-and-usage-measurements)."""

from __future__ import annotations

import pytest

from fake_keap.limits import DAY, Ceilings, SlidingWindows

MIDNIGHT = 20_421 * DAY  # 2025-11-29 00:00 UTC
CEILINGS = Ceilings(per_second=None, per_minute=None, per_day=3)


def test_the_day_resets_at_midnight_utc_not_24_hours_after_each_call() -> None:
    windows = SlidingWindows()
    late_evening = MIDNIGHT - 60  # three calls in the day's last minute
    for n in range(3):
        assert windows.try_acquire("key:k", n, CEILINGS, late_evening + n).allowed

    refused = windows.try_acquire("key:k", 10, CEILINGS, late_evening + 10)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(50)  # until 00:00 UTC, not 24 h on
    assert windows.usage("key:k", 10, late_evening + 10).day == 3

    after_midnight = MIDNIGHT + 1  # a sliding 24 h window would still refuse
    assert windows.try_acquire("key:k", 61, CEILINGS, after_midnight).allowed
    assert windows.usage("key:k", 61, after_midnight).day == 1


def test_each_credential_has_its_own_day() -> None:
    windows = SlidingWindows()
    for n in range(3):
        assert windows.try_acquire("key:a", n, CEILINGS, MIDNIGHT + n).allowed
    assert not windows.try_acquire("key:a", 5, CEILINGS, MIDNIGHT + 5).allowed
    assert windows.try_acquire("key:b", 5, CEILINGS, MIDNIGHT + 5).allowed
