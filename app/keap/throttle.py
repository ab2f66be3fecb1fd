"""Keap's rate headers, read once: how long Keap asks us to wait, and what is left.

The one parser of the ``x-keap-*`` headers; the error classifier (``errors``) and the
shared rate gate (``app.delivery.gate``) both read them through ``read_throttle``.

What Keap sends (https://developer.infusionsoft.com/api-token-quota-and-usage-measurements,
and community clients that log the live headers; see docs/keap-api.md):

- ``x-keap-product-throttle-{limit,time-unit,interval,available,used}``: the credential's
  per-minute window; the unit a lower-case word (``minute``).
- ``x-keap-product-quota-{…,expiry-time}``: the credential's daily quota; ``expiry-time``
  an integer time code, epoch milliseconds in practice.
- ``x-keap-tenant-throttle-{limit,time-unit,interval,available,used}``: the limits of the
  whole Keap app (all its clients together, since June 2026). Each value may carry
  several windows, pipe-delimited and positionally aligned: ``10000|250000``,
  ``minute|day``.
- The spike arrest (per second) sends no header at all.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from app.domain.times import as_utc

KEAP_HEADER_PREFIX = "x-keap-"

_UNIT_SECONDS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}

# Epoch values above this are milliseconds (what Keap sends): 1e11 seconds is the year 5138.
_EPOCH_MILLIS_THRESHOLD = 1e11


@dataclass(frozen=True)
class ThrottleWindow:
    """One window of Keap's limits, as its headers describe it."""

    family: str  # "product-throttle", "product-quota" or "tenant-throttle"
    seconds: float  # the window's length: time unit x interval
    limit: int | None
    available: int | None

    @property
    def spent(self) -> bool:
        return self.available is not None and self.available <= 0

    @property
    def daily(self) -> bool:
        return self.seconds >= 86400.0


@dataclass(frozen=True)
class ThrottleState:
    """Everything a response's rate headers say; absent headers leave their part None."""

    throttle: ThrottleWindow | None  # the credential's per-minute window
    quota: ThrottleWindow | None  # the credential's daily quota
    quota_resets_at: float | None  # epoch seconds, from x-keap-product-quota-expiry-time
    tenant: tuple[ThrottleWindow, ...]  # the Keap app's windows, all clients together


def keap_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The x-keap-* headers of a response, names lower-cased."""
    return {
        name.lower(): value
        for name, value in headers.items()
        if name.lower().startswith(KEAP_HEADER_PREFIX)
    }


def read_throttle(headers: Mapping[str, str]) -> ThrottleState:
    found = keap_headers(headers)
    expiry = found.get("x-keap-product-quota-expiry-time")
    return ThrottleState(
        throttle=_first(_windows(found, "product-throttle", "minute")),
        quota=_first(_windows(found, "product-quota", "day")),
        quota_resets_at=None if expiry is None else _parse_instant(expiry),
        tenant=_windows(found, "tenant-throttle", "minute"),
    )


def spent_pause_seconds(state: ThrottleState, now: float) -> float | None:
    """How long no call can succeed, by the headers alone; None when nothing is spent.

    A spent daily window waits for its reset (the quota's expiry time; the tenant's day at
    00:00 UTC, Keap's documented reset); a spent minute window waits for the window.
    """
    waits: list[float] = []
    if state.quota is not None and state.quota.spent and state.quota_resets_at is not None:
        waits.append(max(0.0, state.quota_resets_at - now))
    for window in (state.throttle, *state.tenant):
        if window is None or not window.spent:
            continue
        waits.append(_until_utc_midnight(now) if window.daily else window.seconds)
    return max(waits) if waits else None


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """The ``Retry-After`` header (delay seconds or an HTTP date) as seconds from now."""
    value = _header(headers, "retry-after")
    if value is None:
        return None
    now = time.time() if now is None else now
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, as_utc(moment).timestamp() - now)


def throttled_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """For a 429: Retry-After wins; else the longest wait a spent window implies."""
    explicit = retry_after_seconds(headers, now)
    if explicit is not None:
        return explicit
    now = time.time() if now is None else now
    return spent_pause_seconds(read_throttle(headers), now)


def _windows(
    found: Mapping[str, str], family: str, default_unit: str
) -> tuple[ThrottleWindow, ...]:
    prefix = f"x-keap-{family}-"
    columns = {
        part: _split(found.get(prefix + part))
        for part in ("limit", "time-unit", "interval", "available")
    }
    count = max((len(values) for values in columns.values()), default=0)
    windows = []
    for i in range(count):
        unit = (_at(columns["time-unit"], i) or default_unit).lower()
        interval = _number(_at(columns["interval"], i)) or 1.0
        windows.append(
            ThrottleWindow(
                family=family,
                seconds=_UNIT_SECONDS.get(unit, _UNIT_SECONDS[default_unit]) * interval,
                limit=_integer(_at(columns["limit"], i)),
                available=_integer(_at(columns["available"], i)),
            )
        )
    return tuple(windows)


def _split(value: str | None) -> list[str]:
    # An unauthenticated answer carries every name with a blank value: no window then.
    if value is None or not value.strip():
        return []
    return [part.strip() for part in value.split("|")]


def _at(values: list[str], index: int) -> str | None:
    return values[index] if index < len(values) and values[index] else None


def _first(windows: tuple[ThrottleWindow, ...]) -> ThrottleWindow | None:
    return windows[0] if windows else None


def _parse_instant(value: str) -> float | None:
    """Epoch milliseconds (Keap's time code) or seconds; ISO-8601 is tolerated too."""
    number = _number(value)
    if number is not None:
        return number / 1000.0 if number > _EPOCH_MILLIS_THRESHOLD else number
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return as_utc(moment).timestamp()


def _until_utc_midnight(now: float) -> float:
    today = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (today + timedelta(days=1)).timestamp() - now


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value.strip())
    except ValueError:
        return None


def _integer(value: str | None) -> int | None:
    number = _number(value)
    return None if number is None else int(number)
