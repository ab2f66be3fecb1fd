"""The interface the relay stores through, and the errors it raises."""

from __future__ import annotations

from typing import Any, Protocol

from app.domain.events import (
    AttemptRecord,
    EventFilter,
    EventRecord,
    Inserted,
    NewEvent,
    Replanner,
)
from app.domain.problems import DeadEvent, DeadGroup
from app.keap.models import StoredToken


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

    dialect: str  # "sqlite" or "postgres", as /readyz names it

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> None: ...
    def durability(self) -> dict[str, str]: ...  # the settings that make a commit durable
    def ingest_writer_up(self) -> bool | None: ...  # SQLite's ingest process; None: none

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
    async def quota_use(self, moments: list[float], day: float) -> list[int]: ...

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

    # failed dashboard sign-ins, by client address (app.admin.login_limits)
    async def sign_in_failures(self, address: str, since: float, limit: int) -> list[float]: ...
    async def record_sign_in_failure(
        self, address: str, now: float, forget_before: float
    ) -> None: ...
    async def clear_sign_in_failures(self, address: str) -> None: ...

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
