"""Which dead events make an alert: one message per source, route and reason per window.

A pure decision over the dead events seen since the last look and what was already told
(kept in the database, so a restart or a second replica does not tell it again).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from app.domain.problems import DeadEvent, DeadGroup

DEAD_KEY_PREFIX = "dead:"
DEAD_CURSOR_KEY = "dead-cursor"
GATHER_QUIETS = 6  # a storm still going on is told after this many quiet periods


def dead_key(source: str, route: str, reason: str) -> str:
    """The alert state key of one group (a digest: reasons can be long)."""
    digest = hashlib.sha256(f"{source}\0{route}\0{reason}".encode()).hexdigest()[:32]
    return DEAD_KEY_PREFIX + digest


@dataclass(frozen=True)
class DeadPlan:
    send: list[DeadGroup]  # one alert each
    cursor: float  # where the next look starts (events at or after it)


def plan_dead_alerts(
    dead: list[DeadEvent],
    told: dict[str, tuple[float, float]],
    *,
    until: float,
    now: float,
    window: float,
    quiet: float,
) -> DeadPlan:
    """Group ``dead`` (events up to ``until``) by source, route and reason.

    ``told`` maps a group's key to (the time up to which its events were alerted, when
    that alert was sent). Events already alerted are skipped; a group is sent when it was
    never alerted or its last alert is ``window`` seconds old, and the storm has settled:
    no event joined it for ``quiet`` seconds, or its first is ``GATHER_QUIETS`` x
    ``quiet`` old (a storm that goes on is told all the same). A group held back keeps
    the cursor at its first event, so its count grows until it is sent.
    """
    groups: dict[str, DeadGroup] = {}
    for event in dead:
        key = dead_key(event.source, event.route, event.reason)
        if event.at <= told.get(key, (float("-inf"), 0.0))[0]:
            continue
        seen = groups.get(key)
        groups[key] = DeadGroup(
            event.source,
            event.route,
            event.reason,
            count=1 if seen is None else seen.count + 1,
            first_at=event.at if seen is None else seen.first_at,
            last_at=event.at,
        )
    send: list[DeadGroup] = []
    held: list[DeadGroup] = []
    for key, group in groups.items():
        last_sent = told.get(key, (0.0, float("-inf")))[1]
        settled = now - group.last_at >= quiet or now - group.first_at >= GATHER_QUIETS * quiet
        (send if settled and now - last_sent >= window else held).append(group)
    cursor = min([until, *(g.first_at for g in held)])
    return DeadPlan(send=send, cursor=cursor)
