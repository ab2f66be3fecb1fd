"""An event, the steps its plan gives it, the attempts made, and their statuses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

EventStatus = Literal["pending", "delivered", "dead", "ignored"]
# "sending": a call that must not run twice was sent and its answer not yet recorded.
StepStatus = Literal["pending", "sending", "done", "failed"]
EVENT_STATUSES: tuple[EventStatus, ...] = ("pending", "delivered", "dead", "ignored")
CONTACT_UPSERT = "contact.upsert"  # the action of the step that finds or makes the contact


# The records made for every webhook (PlannedStep, NewEvent, Inserted) are plain slotted
# dataclasses, not frozen ones: a frozen dataclass sets each field through
# object.__setattr__, 2-3x the cost, paid a handful of times on every request.
@dataclass(slots=True)
class PlannedStep:
    """One Infusionsoft call an event needs: a contact upsert or one action."""

    route: str
    action: str  # contact.upsert, action_set, tags, remove_tags, sequence, ...
    params: dict[str, Any]


@dataclass(slots=True)
class NewEvent:
    id: str
    source: str
    event_type: str | None
    external_id: str | None
    dedupe_key: str
    status: EventStatus
    received_at: float
    payload: Any
    headers: dict[str, str]
    routes: list[str]
    contact_email: str | None
    last_error: str | None
    steps: list[PlannedStep]


@dataclass(slots=True)
class Inserted:
    id: str
    created: bool  # False: a duplicate of the stored event ``id``


@dataclass
class StepRecord:
    idx: int
    route: str
    action: str
    params: dict[str, Any]
    status: StepStatus
    attempts: int
    last_error: str | None
    result: Any


@dataclass
class AttemptRecord:
    event_id: str
    step_idx: int | None
    started_at: float
    duration: float
    operation: str
    request: str
    status_code: int | None
    outcome: str  # ok, transient, throttled, permanent, auth, replay, dry_run
    error: str | None


@dataclass
class EventRecord:
    id: str
    seq: int
    source: str
    event_type: str | None
    external_id: str | None
    status: EventStatus
    received_at: float
    contact_email: str | None
    contact_id: int | None
    attempts: int
    next_attempt_at: float | None
    first_failure_at: float | None
    last_error: str | None
    routes: list[str]
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    steps: list[StepRecord] = field(default_factory=list)
    history: list[AttemptRecord] = field(default_factory=list)


def is_dry_run_step(status: str, result: Any) -> bool:
    """A step that was only recorded in dry-run: done, but nothing was sent."""
    return status == "done" and isinstance(result, dict) and result.get("dry_run") is True


@dataclass
class Replanned:
    """An event's plan under the current relay.yaml, with the steps that keep their state
    (done or in flight under the old plan) already carried over."""

    routes: list[str]
    contact_email: str | None
    steps: list[StepRecord]


# Plans a stored event again (payload and steps loaded); None when the current relay.yaml
# no longer delivers it (no route matches, or no email is found).
Replanner = Callable[[EventRecord], Replanned | None]


@dataclass(frozen=True)
class EventFilter:
    status: str | None = None
    source: str | None = None
    email: str | None = None
    since: float | None = None
    reason: str | None = None  # the last error, exactly (one problem group)
    routes_json: str | None = None  # the routes as stored (DeadGroup.routes_json)
