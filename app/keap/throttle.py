"""How long Keap asks us to wait: ``Retry-After`` first, else what its throttle headers imply."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

KEAP_HEADER_PREFIX = "x-keap-"

_UNIT_SECONDS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}

# Epoch values above this are milliseconds (Keap's live headers send the quota expiry so,
# the wire contract sends ISO-8601): 1e11 seconds is the year 5138.
_EPOCH_MILLIS_THRESHOLD = 1e11


def keap_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The x-keap-* headers of a response, names lower-cased."""
    return {
        name.lower(): value
        for name, value in headers.items()
        if name.lower().startswith(KEAP_HEADER_PREFIX)
    }


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
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - now)


def throttled_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """For a 429: Retry-After wins; else the throttle window when the per-minute budget is
    spent, or the time to the quota reset when the daily quota is (the longer of the two)."""
    explicit = retry_after_seconds(headers, now)
    if explicit is not None:
        return explicit
    now = time.time() if now is None else now
    hints = [
        hint
        for hint in (_throttle_window_hint(headers), _quota_reset_hint(headers, now))
        if hint is not None
    ]
    return max(hints) if hints else None


def _throttle_window_hint(headers: Mapping[str, str]) -> float | None:
    if not _is_zero(_header(headers, "x-keap-product-throttle-available")):
        return None
    unit = (_header(headers, "x-keap-product-throttle-time-unit") or "minute").lower()
    interval = _number(_header(headers, "x-keap-product-throttle-interval")) or 1.0
    return _UNIT_SECONDS.get(unit, 60.0) * interval


def _quota_reset_hint(headers: Mapping[str, str], now: float) -> float | None:
    if not _is_zero(_header(headers, "x-keap-product-quota-available")):
        return None
    expiry = _header(headers, "x-keap-product-quota-expiry-time")
    if expiry is None:
        return None
    moment = _parse_instant(expiry)
    return None if moment is None else max(0.0, moment - now)


def _parse_instant(value: str) -> float | None:
    """ISO-8601 (the wire contract) or epoch seconds/milliseconds (Keap's live headers)."""
    number = _number(value)
    if number is not None:
        return number / 1000.0 if number > _EPOCH_MILLIS_THRESHOLD else number
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


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


def _is_zero(value: str | None) -> bool:
    number = _number(value)
    return number is not None and number <= 0
