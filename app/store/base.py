"""The records the relay stores and the interface both databases implement."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from app.keap.models import StoredToken

EventStatus = Literal["pending", "delivered", "dead", "ignored"]
# "sending": a call that must not run twice was sent and its answer not yet recorded.
StepStatus = Literal["pending", "sending", "done", "failed"]
EVENT_STATUSES: tuple[EventStatus, ...] = ("pending", "delivered", "dead", "ignored")
CONTACT_UPSERT = "contact.upsert"  # the action of the step that finds or makes the contact

# A rate ceiling with this window counts the calls of the UTC calendar day, as Keap's
# daily quota does (it resets at 00:00 UTC); once full, calls wait for the reset plus
# QUOTA_RESET_MARGIN (clocks differ a little) instead of running into 429s.
UTC_DAY_WINDOW = 86400.0
QUOTA_RESET_MARGIN = 30.0


def utc_day_start(now: float) -> float:
    """00:00 UTC of the day ``now`` falls in (epoch seconds count no leap seconds)."""
    return now - now % UTC_DAY_WINDOW


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


@dataclass(frozen=True)
class EventFilter:
    status: str | None = None
    source: str | None = None
    email: str | None = None
    since: float | None = None
    reason: str | None = None  # the last error, exactly (one problem group)
    routes_json: str | None = None  # the routes as stored (DeadGroup.routes_json)


class StoreUnavailable(Exception):
    """The database could not durably do what was asked (full disk, read-only, down)."""


class UnstorableEvent(Exception):
    """One request's events hold a value the database cannot take as it is (text that is
    not valid Unicode, a number out of range): the sender's input, answered 400. Its
    neighbours in the same group commit are stored all the same."""


# Raised while encoding one request's values (by the JSON encoder or a driver binding
# them): the content is at fault, not the database.
CONTENT_ERRORS: tuple[type[BaseException], ...] = (UnicodeError, OverflowError, RecursionError)


def storing_failed(
    exc: BaseException, content_errors: tuple[type[BaseException], ...]
) -> Exception:
    """What one request hears when storing its events raised ``exc``: UnstorableEvent
    when the content is at fault (``content_errors``), else StoreUnavailable (503)."""
    if isinstance(exc, UnstorableEvent | StoreUnavailable):
        return exc
    reason = f"{type(exc).__name__}: {exc}"[:300]
    if isinstance(exc, content_errors):
        return UnstorableEvent(f"a value cannot be stored as it is ({reason})")
    return StoreUnavailable(f"the event could not be stored ({reason})")


class Store(Protocol):
    """What the relay needs from a database. Every write is durable when it returns."""

    dialect: str

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> None: ...
    def durability(self) -> dict[str, str]: ...  # the settings that make a commit durable

    # ingest
    async def insert_events(self, events: list[NewEvent]) -> list[Inserted]: ...

    # delivery
    async def claim_due_events(
        self, worker_id: str, now: float, lease_seconds: float, limit: int
    ) -> list[EventRecord]: ...
    async def renew_claims(self, worker_id: str, event_ids: list[str], until: float) -> None: ...
    async def complete_step(
        self,
        event_id: str,
        idx: int,
        worker_id: str,
        result: Any,
        contact_id: int | None,
        *,
        replaces: int | None = None,  # the event's contact id, if it is this one, becomes
    ) -> bool: ...  # ``contact_id`` (a contact upserted again after its deletion in Keap)
    async def mark_step_sending(self, event_id: str, idx: int, worker_id: str) -> bool: ...
    async def fail_step(
        self,
        event_id: str,
        idx: int,
        worker_id: str,
        error: str,
        *,
        dead: bool,
        next_attempt_at: float | None,
        now: float,
    ) -> bool: ...
    async def give_up_step(self, event_id: str, idx: int, worker_id: str, error: str) -> bool: ...
    async def finish_event(
        self, event_id: str, worker_id: str, now: float, *, dead_reason: str | None = None
    ) -> bool: ...
    async def release_claim(
        self, event_id: str, worker_id: str, next_attempt_at: float
    ) -> None: ...
    async def record_attempts(self, attempts: list[AttemptRecord]) -> None: ...

    # rate limiting shared by every replica
    async def reserve_call(self, now: float, ceilings: list[tuple[int, float]]) -> float: ...
    async def set_not_before(self, until: float) -> None: ...
    async def calls_since(self, moments: list[float]) -> list[int]: ...

    # contact reuse shared by every replica (keys are digests, see app.delivery.reuse)
    async def reused_contact(self, email_key: str, fields_key: str, since: float) -> int | None: ...
    async def remember_contact(
        self, email_key: str, fields_key: str, contact_id: int, now: float, keep: float
    ) -> None: ...
    async def forget_contact(self, email_key: str, contact_id: int) -> None: ...

    # OAuth token shared by every replica
    async def load_oauth_token(self) -> StoredToken | None: ...
    async def save_oauth_token(
        self, token: StoredToken, *, previous_refresh_token: str | None
    ) -> bool: ...

    # dashboard sessions (by the SHA-256 of the session id)
    async def create_admin_session(self, id_hash: str, now: float, expires_at: float) -> None: ...
    async def admin_session_active(self, id_hash: str, now: float) -> bool: ...
    async def revoke_admin_session(self, id_hash: str) -> None: ...

    # operator
    async def list_events(
        self, flt: EventFilter, limit: int, before_seq: int | None
    ) -> list[EventRecord]: ...
    async def get_event(self, event_id: str) -> EventRecord | None: ...
    async def requeue(
        self,
        event_id: str,
        *,
        from_start: bool,
        now: float,
        dry_run_steps: bool = False,
        replan: Replanner | None = None,
    ) -> bool: ...
    async def requeue_matching(
        self,
        flt: EventFilter,
        now: float,
        *,
        from_start: bool = False,
        dry_run_steps: bool = False,
        replan: Replanner | None = None,
    ) -> int: ...
    async def event_payload_text(self, event_id: str) -> str | None: ...
    async def count_by_status(self) -> dict[str, int]: ...
    async def dead_groups(self, limit: int) -> list[DeadGroup]: ...

    # alerts: what was already told, shared by every replica and kept over restarts
    async def dead_since(self, since: float, until: float, limit: int) -> list[DeadEvent]: ...
    async def load_alert_state(self, prefix: str) -> dict[str, tuple[float, float]]: ...
    async def forget_alert_state(self, prefix: str, sent_before: float) -> int: ...
    async def advance_alert_state(
        self, key: str, value: float, now: float, *, expected: float | None = None
    ) -> bool: ...
    async def purge_finished(self, before: float, batch: int) -> int: ...
