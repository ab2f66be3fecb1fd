"""What becomes of an event after one of its steps failed: a pure decision over the step's
kind, the classified error and the event's failures so far (``decide_after_failure``)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from app.delivery.actions import is_repeatable
from app.delivery.retry import decide_retry
from app.keap.errors import KeapAuthError, KeapError, KeapRetiredError, KeapTransientError

ANSWER_LOST = (
    "the answer to this call was lost or was a gateway failure after it reached "
    "Infusionsoft, which may have run it, so it was not repeated (replay the event from "
    "the start to run it again)"
)

# pause: the credentials are refused — release the event, pause all delivery.
# retry: try the event again at ``next_attempt_at``.  dead: retrying cannot help.
# unknown: Keap may have run a call that must not run twice — the step ends, not repeated.
# give_up: Keap retired the call's API — this step ends, the event's other steps go on.
Verdict = Literal["pause", "retry", "dead", "unknown", "give_up"]


@dataclass(frozen=True)
class RetryPolicy:
    max_hours: float  # RELAY_RETRY_MAX_HOURS: how long after its first failure an event dies
    base_seconds: float  # RELAY_RETRY_BASE_SECONDS: the first backoff


@dataclass(frozen=True)
class FailureDecision:
    verdict: Verdict
    reason: str  # for the step's last error (or its outcome_unknown note)
    next_attempt_at: float | None = None


def decide_after_failure(
    *,
    action: str,
    error: KeapError,
    failures: int,
    first_failure_at: float | None,
    now: float,
    policy: RetryPolicy,
    rng: random.Random | None = None,
) -> FailureDecision:
    """``failures``: the event's failed attempts, this one included; ``first_failure_at``:
    when the first of them happened (None: this is the first)."""
    reason = f"{action}: {error.detail}"
    if isinstance(error, KeapRetiredError):
        return FailureDecision("give_up", reason)
    if not is_repeatable(action) and maybe_applied(error):
        return FailureDecision("unknown", f"{ANSWER_LOST} ({error.detail})")
    if isinstance(error, KeapAuthError):
        return FailureDecision("pause", reason)
    if not isinstance(error, KeapTransientError):  # permanent: retrying cannot help
        return FailureDecision("dead", reason)
    retry = decide_retry(
        failures=failures,
        retry_after=error.retry_after,
        first_failure_at=first_failure_at or now,
        now=now,
        max_hours=policy.max_hours,
        base=policy.base_seconds,
        rng=rng,
    )
    if retry.dead:
        return FailureDecision("dead", f"{reason} ({retry.reason})")
    return FailureDecision("retry", reason, retry.next_attempt_at)


def maybe_applied(error: KeapError) -> bool:
    """The client's verdict (``app.keap.errors``): Keap may have carried the call out."""
    return isinstance(error, KeapTransientError) and error.maybe_applied
