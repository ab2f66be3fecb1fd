"""The clock of Keap's daily quota."""

from __future__ import annotations

# A rate ceiling with this window counts the calls of the UTC calendar day, as Keap's
# daily quota does (it resets at 00:00 UTC); once full, calls wait for the reset plus
# QUOTA_RESET_MARGIN (clocks differ a little) instead of running into 429s.
UTC_DAY_WINDOW = 86400.0
QUOTA_RESET_MARGIN = 30.0


def utc_day_start(now: float) -> float:
    """00:00 UTC of the day ``now`` falls in (epoch seconds count no leap seconds)."""
    return now - now % UTC_DAY_WINDOW
