"""Keap-like rate ceilings per credential: sliding 1 s and 60 s windows, and a daily
quota counted per UTC day.

Keap's quota page: "30000 Queries per Day (Resets at 12:00 AM UTC)" for a PAT/SAK, the
same for OAuth's 150000 (https://developer.infusionsoft.com/api-token-quota-and-usage-measurements,
and "This daily quota resets at 12:00 AM UTC each day" in its FAQ,
https://developer.infusionsoft.com/?p=574): a day's calls are forgotten at midnight UTC,
not 24 hours after each was made. Only accepted requests are counted, so a client that
keeps hammering while throttled gets through again as soon as its older calls leave the
window (or the day turns).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

SECOND = 1.0
MINUTE = 60.0
DAY = 86400.0
# What the headers report for a window that has no ceiling configured.
UNLIMITED = 1_000_000
# The tenant-wide limits of a Keap app, all clients together (second-hand, from June 2026).
TENANT_PER_MINUTE = 10_000
TENANT_PER_DAY = 250_000


@dataclass(frozen=True)
class Ceilings:
    per_second: int | None
    per_minute: int | None
    per_day: int | None


@dataclass(frozen=True)
class Usage:
    second: int
    minute: int
    day: int


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: float  # seconds until the violated window has room; 0 when allowed


@dataclass
class _Windows:
    second: deque[float] = field(default_factory=deque)
    minute: deque[float] = field(default_factory=deque)
    utc_day: int = 0  # the day number (UTC seconds // DAY) that ``day_calls`` counts
    day_calls: int = 0

    def prune(self, now: float, wall: float) -> None:
        for window, span in ((self.second, SECOND), (self.minute, MINUTE)):
            while window and window[0] <= now - span:
                window.popleft()
        today = int(wall // DAY)
        if today != self.utc_day:
            self.utc_day, self.day_calls = today, 0


class SlidingWindows:
    """Not thread-safe: the state calls it under its lock."""

    def __init__(self) -> None:
        self._by_credential: dict[str, _Windows] = {}

    def try_acquire(self, credential: str, now: float, ceilings: Ceilings, wall: float) -> Verdict:
        """``now``: a monotonic clock for the sliding windows; ``wall``: UTC epoch
        seconds, for the day."""
        windows = self._by_credential.setdefault(credential, _Windows())
        windows.prune(now, wall)
        checks = (
            (windows.second, SECOND, ceilings.per_second),
            (windows.minute, MINUTE, ceilings.per_minute),
        )
        wait = 0.0
        for window, span, ceiling in checks:
            if ceiling is not None and len(window) >= ceiling:
                # The window has room again once enough of its oldest calls age out.
                oldest_to_leave = window[len(window) - ceiling]
                wait = max(wait, oldest_to_leave + span - now)
        if ceilings.per_day is not None and windows.day_calls >= ceilings.per_day:
            wait = max(wait, (windows.utc_day + 1) * DAY - wall)  # until 00:00 UTC
        if wait > 0:
            return Verdict(allowed=False, retry_after=wait)
        windows.second.append(now)
        windows.minute.append(now)
        windows.day_calls += 1
        return Verdict(allowed=True, retry_after=0.0)

    def usage(self, credential: str, now: float, wall: float) -> Usage:
        windows = self._by_credential.get(credential)
        if windows is None:
            return Usage(0, 0, 0)
        windows.prune(now, wall)
        return Usage(len(windows.second), len(windows.minute), windows.day_calls)

    def clear(self) -> None:
        self._by_credential.clear()


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


def next_utc_midnight_ms(now: datetime) -> str:
    """Keap's ``expiry-time``: an integer time code, epoch milliseconds of the daily reset."""
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return str(int(midnight.timestamp() * 1000))


def throttle_headers(usage: Usage, ceilings: Ceilings) -> dict[str, str]:
    """The rate headers Keap puts on every REST and XML-RPC response, as it sends them.

    Source: https://developer.infusionsoft.com/api-token-quota-and-usage-measurements
    (lower-case names since 2022, "minute"/"day" units, an integer expiry time code) and
    the live values community clients log (epoch milliseconds; the tenant headers since
    June 2026, pipe-delimited minute|day). The spike arrest sends no header. The fake has
    one tenant, so its tenant windows count every credential's calls — here, the same
    ones as the credential's (a fake serves one relay's key at a time).
    """
    minute_limit = ceilings.per_minute or UNLIMITED
    day_limit = ceilings.per_day or UNLIMITED
    tenant_minute, tenant_day = TENANT_PER_MINUTE, TENANT_PER_DAY
    return {
        "x-keap-product-throttle-limit": str(minute_limit),
        "x-keap-product-throttle-time-unit": "minute",
        "x-keap-product-throttle-interval": "1",
        "x-keap-product-throttle-available": str(max(0, minute_limit - usage.minute)),
        "x-keap-product-throttle-used": str(usage.minute),
        "x-keap-product-quota-limit": str(day_limit),
        "x-keap-product-quota-time-unit": "day",
        "x-keap-product-quota-interval": "1",
        "x-keap-product-quota-available": str(max(0, day_limit - usage.day)),
        "x-keap-product-quota-used": str(usage.day),
        "x-keap-product-quota-expiry-time": next_utc_midnight_ms(datetime.now(UTC)),
        "x-keap-tenant-throttle-limit": f"{tenant_minute}|{tenant_day}",
        "x-keap-tenant-throttle-time-unit": "minute|day",
        "x-keap-tenant-throttle-interval": "1|1",
        "x-keap-tenant-throttle-available": (
            f"{max(0, tenant_minute - usage.minute)}|{max(0, tenant_day - usage.day)}"
        ),
        "x-keap-tenant-throttle-used": f"{usage.minute}|{usage.day}",
    }
