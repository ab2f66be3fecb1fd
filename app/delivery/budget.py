"""The quota budget: calls let through against each ceiling, and when the day resets.

Counted from the shared limiter's own record (every replica's calls), so it is what the
gate enforces; the dashboard header, /metrics and the quota alerts all read it here.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.domain.quota import UTC_DAY_WINDOW, utc_day_start
from app.store.base import Store

WINDOWS = (("second", 1.0), ("minute", 60.0), ("day", UTC_DAY_WINDOW))


@dataclass(frozen=True)
class WindowUse:
    name: str  # second, minute, day
    used: int
    ceiling: int

    @property
    def percent(self) -> float:
        return 100.0 * self.used / self.ceiling if self.ceiling else 0.0


@dataclass(frozen=True)
class QuotaBudget:
    windows: list[WindowUse]
    day_started: float  # 00:00 UTC today: the quota day the counts belong to
    resets_at: float  # the next 00:00 UTC, when Keap resets the daily quota

    @property
    def day(self) -> WindowUse:
        return self.windows[-1]


async def read_budget(store: Store, ceilings: tuple[int, int, int], now: float) -> QuotaBudget:
    """``ceilings``: (per second, per minute, per day), as Settings.rate_ceilings."""
    day_started = utc_day_start(now)
    used = await store.quota_use([now - seconds for _, seconds in WINDOWS[:-1]], day_started)
    windows = [
        WindowUse(name, count, ceiling)
        for (name, _), count, ceiling in zip(WINDOWS, used, ceilings, strict=True)
    ]
    return QuotaBudget(windows, day_started, day_started + UTC_DAY_WINDOW)
