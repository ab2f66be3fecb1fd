"""The attempt history of a step: one record per Keap call it made (``KeapCall``), each
with its outcome under the step's classified error."""

from __future__ import annotations

import time

from app.domain.events import AttemptRecord
from app.keap.client import KeapCall
from app.keap.errors import (
    KeapAuthError,
    KeapError,
    KeapPermanentError,
    KeapRetiredError,
    KeapThrottledError,
    KeapTransientError,
)

# Most specific first: a retired API is also permanent, a throttle also transient.
_OUTCOMES = (
    (KeapRetiredError, "retired"),
    (KeapAuthError, "auth"),
    (KeapThrottledError, "throttled"),
    (KeapTransientError, "transient"),
    (KeapPermanentError, "permanent"),
)


def attempt_records(
    event_id: str, idx: int, calls: list[KeapCall], started: float, error: KeapError | None
) -> list[AttemptRecord]:
    """The step's calls as attempts; a failure before any call was sent (no call) is one
    attempt of its own, so the history says why the step failed."""
    attempts = [
        AttemptRecord(
            event_id=event_id,
            step_idx=idx,
            started_at=started,
            duration=c.duration,
            operation=c.operation,
            request=f"{c.method} {c.path}",
            status_code=c.status_code,
            outcome=call_outcome(c, error),
            error=c.error,
        )
        for c in calls
    ]
    if not attempts and error is not None:
        attempts.append(
            AttemptRecord(
                event_id,
                idx,
                started,
                time.time() - started,
                error.operation,
                "",
                error.status_code,
                call_outcome(None, error),
                error.detail,
            )
        )
    return attempts


def call_outcome(call: KeapCall | None, error: KeapError | None) -> str:
    """ "ok" for a call that succeeded, else the class of the step's error."""
    if call is not None and call.error is None:
        return "ok"
    if error is None:
        return "error"
    for kind, name in _OUTCOMES:
        if isinstance(error, kind):
            return name
    return "error"
