"""How a drain used the rate ceilings, read from the fake Infusionsoft's request log:
pure functions, so the figures can be recomputed from a saved log."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

SECOND = 1.0
MINUTE = 60.0


@dataclass(frozen=True)
class Call:
    at: float  # arrival at the fake, wall clock
    status: int  # 429 throttled, 0 connection dropped
    operation: str

    @property
    def throttled(self) -> bool:
        return self.status == 429

    @property
    def used(self) -> bool:
        """A call Infusionsoft admitted (and so counted against the ceilings)."""
        return self.status not in (0, 429)


def calls_from_log(requests: list[dict[str, Any]]) -> list[Call]:
    """The /crm calls of the fake's ``/_fake/state`` request log, in arrival order."""
    calls = [
        Call(float(r["at"]), int(r["status"]), str(r["operation"]))
        for r in requests
        if r["operation"] != "oauth.refresh"
    ]
    return sorted(calls, key=lambda c: c.at)


def minimum_schedule(calls: int, per_second: int, per_minute: int) -> list[float]:
    """The earliest time of each call (the first at 0) that no sliding 1 s or 60 s
    window ever holds more than its ceiling: the fastest any client could go."""
    times: list[float] = []
    for i in range(calls):
        t = 0.0
        if i >= per_second:
            t = max(t, times[i - per_second] + SECOND)
        if i >= per_minute:
            t = max(t, times[i - per_minute] + MINUTE)
        times.append(t)
    return times


def minimum_drain_seconds(calls: int, per_second: int, per_minute: int, latency: float) -> float:
    """From the first call's arrival to the last call's answer, at best."""
    if calls == 0:
        return 0.0
    return minimum_schedule(calls, per_second, per_minute)[-1] + latency


def per_second_counts(calls: list[Call], start: float) -> tuple[list[int], list[int]]:
    """(used, throttled) calls in each whole second since ``start``."""
    if not calls:
        return [], []
    seconds = math.floor(calls[-1].at - start) + 1
    used, throttled = [0] * seconds, [0] * seconds
    for call in calls:
        index = math.floor(call.at - start)
        if call.used:
            used[index] += 1
        elif call.throttled:
            throttled[index] += 1
    return used, throttled


def full_minute_counts(calls: list[Call], start: float) -> list[int]:
    """Used calls in each full minute [start + 60k, start + 60k + 60) of the drain."""
    used = [c for c in calls if c.used]
    if not used:
        return []
    minutes = int((used[-1].at - start) // MINUTE)
    return [
        sum(1 for c in used if start + k * MINUTE <= c.at < start + (k + 1) * MINUTE)
        for k in range(minutes)
    ]


def busiest_window(calls: list[Call], window: float) -> int:
    """The most used calls in any sliding window of ``window`` seconds."""
    arrivals: deque[float] = deque()
    most = 0
    for call in calls:
        if not call.used:
            continue
        arrivals.append(call.at)
        while arrivals[0] <= call.at - window:
            arrivals.popleft()
        most = max(most, len(arrivals))
    return most


def analyse_drain(
    calls: list[Call], *, events: int, per_second: int, per_minute: int, latency: float
) -> dict[str, Any]:
    """The delivery figures: use of each full minute against the ceiling, 429s after the
    first second, calls per event, and the drain time against the fastest possible."""
    used = [c for c in calls if c.used]
    if not used:
        return {"calls": 0, "events": events}
    start = calls[0].at
    drain = used[-1].at + latency - start
    minimum = minimum_drain_seconds(len(used), per_second, per_minute, latency)
    minutes = full_minute_counts(calls, start)
    return {
        "events": events,
        "calls": len(used),
        "requests": len(calls),
        "calls_per_event": round(len(used) / events, 3) if events else None,
        "by_operation": _by_operation(used),
        "throttled_429": sum(1 for c in calls if c.throttled),
        "throttled_429_after_first_second": sum(
            1 for c in calls if c.throttled and c.at > start + SECOND
        ),
        "dropped": sum(1 for c in calls if c.status == 0),
        "full_minutes": minutes,
        "full_minute_use": [round(n / per_minute, 4) for n in minutes],
        "busiest_second": busiest_window(calls, SECOND),
        "busiest_minute": busiest_window(calls, MINUTE),
        "drain_seconds": round(drain, 2),
        "minimum_drain_seconds": round(minimum, 2),
        "drain_over_minimum": round(drain / minimum, 4) if minimum else None,
    }


def _by_operation(calls: list[Call]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for call in calls:
        counts[call.operation] = counts.get(call.operation, 0) + 1
    return dict(sorted(counts.items()))
