"""Dead events as the alerts and the dashboard group them into open problems."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeadEvent:
    """One event gone dead, as the alerts group it."""

    source: str
    route: str  # the event's routes, comma-separated
    reason: str
    at: float  # when it went dead


@dataclass(frozen=True)
class DeadGroup:
    """Dead events sharing a source, routes and reason: one open problem."""

    source: str
    route: str
    reason: str
    count: int
    first_at: float
    last_at: float
    routes_json: str = ""  # the routes as stored, for an exact "replay these" filter
