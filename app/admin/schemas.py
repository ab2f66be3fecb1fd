"""The admin API's JSON shapes, and the one serializer from stored records to them.

The dashboard renders these same models, so the page and the API never disagree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.domain.events import (
    AttemptRecord,
    EventRecord,
    EventStatus,
    StepRecord,
    StepStatus,
    is_dry_run_step,
)
from app.domain.times import as_utc
from app.ingest.bodies import MAX_NESTING, nesting_depth


class StepOut(BaseModel):
    index: int
    route: str
    action: str = Field(description="contact.upsert, action_set, tags, sequence, …")
    status: StepStatus | Literal["outcome_unknown"] = Field(
        description="outcome_unknown: a call that must not run twice may have been carried "
        "out by Infusionsoft (its answer was lost or was a gateway failure); it is not "
        "repeated unless the event is replayed from the start"
    )
    attempts: int
    last_error: str | None
    outcome_unknown: str | None = Field(
        default=None, description="why the outcome is unknown (with outcome_unknown only)"
    )
    params: dict[str, Any]
    records: dict[str, Any] = Field(
        default_factory=dict,
        description="what Infusionsoft made for this step (keap_order_id, keap_payment_id, "
        "keap_note_id) beside the sender's order id",
    )
    dry_run: bool = Field(
        description="done in dry-run only: recorded, never sent (replay with dry_run_steps "
        "to send it)"
    )


class AttemptOut(BaseModel):
    """One call made for the event (or an operator's replay, with outcome ``replay``)."""

    step_index: int | None
    operation: str
    request: str = Field(description="a summary of the request, without credentials")
    status_code: int | None = Field(description="the HTTP status Infusionsoft answered")
    outcome: str = Field(
        description="ok, transient, throttled, permanent, retired, auth, replay, dry_run"
    )
    error: str | None
    started_at: datetime
    duration_ms: float


class EventOut(BaseModel):
    id: str
    source: str
    event_type: str | None
    external_id: str | None
    status: EventStatus
    received_at: datetime
    contact_email: str | None
    contact_id: int | None
    attempts: int = Field(description="how many delivery runs the event has had")
    next_attempt_at: datetime | None
    last_error: str | None
    reason: str | None = Field(
        description="for an ignored event, why no route took it (e.g. no route for its type)"
    )
    routes: list[str]
    steps: list[StepOut]


class EventDetail(EventOut):
    payload: Any = Field(
        description="the parsed webhook body, secrets redacted; levels past "
        f"{MAX_NESTING} are replaced by a note (see payload_truncated)"
    )
    payload_truncated: bool = Field(
        default=False,
        description="true when levels were cut: GET /admin/events/{id}/payload has it whole",
    )
    history: list[AttemptOut] = Field(description="every attempt, oldest first")


class EventPage(BaseModel):
    items: list[EventOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next, older page")


class ReplayAccepted(BaseModel):
    event_id: str
    status: Literal["requeued"] = "requeued"


class BulkReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: EventStatus | None = Field(
        default=None,
        description="re-queue the events in this status (required unless dry_run_steps; "
        "ignored only with replan: an ignored event has no plan until it is re-planned)",
    )
    source: str | None = Field(default=None, description="only events from this source")
    since: datetime | None = Field(
        default=None,
        description="only events received at or after this ISO-8601 time "
        "(UTC when it has no offset)",
    )
    from_start: bool = Field(
        default=False,
        description="run every step again, not only the unfinished ones (to send events "
        "recorded in dry-run for real, use dry_run_steps: it never repeats a real call)",
    )
    replan: bool = Field(
        default=False,
        description="first plan each event again with the current relay.yaml; steps that "
        "already succeeded and are still in the new plan are not repeated",
    )
    dry_run_steps: bool = Field(
        default=False,
        description="send for real the steps that were only recorded in dry-run (and the "
        "unfinished ones), never a step that already ran for real; without status, events "
        "in any status are considered",
    )

    @model_validator(mode="after")
    def _consistent(self) -> BulkReplayRequest:
        if self.status is None and not self.dry_run_steps:
            raise ValueError(
                "status is required (dead, pending, delivered, or ignored with replan)"
            )
        if self.from_start and self.dry_run_steps:
            raise ValueError(
                "from_start and dry_run_steps exclude each other: from_start would re-send "
                "steps that already ran for real"
            )
        return self

    @field_validator("since")
    @classmethod
    def _utc_when_naive(cls, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)


class BulkReplayAccepted(BaseModel):
    requeued: int


def utc(timestamp: float | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC)


def step_out(step: StepRecord) -> StepOut:
    unknown = step.result.get("outcome_unknown") if isinstance(step.result, dict) else None
    # The store keeps such a step "done" (never run again by a normal replay); readers see
    # that its outcome is unknown, and why.
    return StepOut(
        index=step.idx,
        route=step.route,
        action=step.action,
        status="outcome_unknown" if step.status == "done" and unknown else step.status,
        attempts=step.attempts,
        last_error=step.last_error,
        outcome_unknown=str(unknown) if unknown else None,
        params=step.params,
        records=step_records(step.result),
        dry_run=is_dry_run_step(step.status, step.result),
    )


RECORD_KEYS = ("sender_order_id", "keap_order_id", "keap_payment_id", "keap_note_id")


def step_records(result: Any) -> dict[str, Any]:
    if not isinstance(result, dict):
        return {}
    return {key: result[key] for key in RECORD_KEYS if result.get(key) is not None}


def attempt_out(attempt: AttemptRecord) -> AttemptOut:
    return AttemptOut(
        step_index=attempt.step_idx,
        operation=attempt.operation,
        request=attempt.request,
        status_code=attempt.status_code,
        outcome=attempt.outcome,
        error=attempt.error,
        started_at=datetime.fromtimestamp(attempt.started_at, UTC),
        duration_ms=round(attempt.duration * 1000, 1),
    )


def _event_fields(record: EventRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "source": record.source,
        "event_type": record.event_type,
        "external_id": record.external_id,
        "status": record.status,
        "received_at": datetime.fromtimestamp(record.received_at, UTC),
        "contact_email": record.contact_email,
        "contact_id": record.contact_id,
        "attempts": record.attempts,
        "next_attempt_at": utc(record.next_attempt_at),
        "last_error": record.last_error,
        "reason": record.last_error if record.status == "ignored" else None,
        "routes": list(record.routes),
        "steps": [step_out(step) for step in record.steps],
    }


def event_out(record: EventRecord) -> EventOut:
    return EventOut(**_event_fields(record))


def event_detail(record: EventRecord) -> EventDetail:
    payload, truncated = cut_to_depth(record.payload)
    return EventDetail(
        **_event_fields(record),
        payload=payload,
        payload_truncated=truncated,
        history=[attempt_out(attempt) for attempt in record.history],
    )


DEEPER = f"[deeper than {MAX_NESTING} levels: download the stored body]"


def cut_to_depth(value: Any, levels: int = MAX_NESTING) -> tuple[Any, bool]:
    """``value`` with objects and lists past ``levels`` replaced by a note, and whether
    any were. Ingest refuses deeper bodies; events stored before that limit may hold
    them, and must still be shown (never a 5xx)."""
    if nesting_depth(value, levels) <= levels:
        return value, False
    return _cut(value, levels), True


def _cut(value: Any, levels: int) -> Any:
    if not isinstance(value, dict | list):
        return value
    if levels == 0:
        return DEEPER
    if isinstance(value, dict):
        return {key: _cut(child, levels - 1) for key, child in value.items()}
    return [_cut(child, levels - 1) for child in value]
