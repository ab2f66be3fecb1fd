"""The after-failure decision, table by table: what becomes of an event whose step failed,
by the step's kind, the error's class, whether Keap may have run the call, and how long
the event has been failing."""

from __future__ import annotations

import random

import pytest

from app.delivery.actions import ACTIONS, NOT_REPEATABLE, is_repeatable
from app.delivery.failure import (
    ANSWER_LOST,
    FailureDecision,
    RetryPolicy,
    Verdict,
    decide_after_failure,
)
from app.domain.events import CONTACT_UPSERT
from app.keap.errors import (
    KeapAuthError,
    KeapError,
    KeapForbiddenError,
    KeapPermanentError,
    KeapRetiredError,
    KeapThrottledError,
    KeapTransientError,
)

NOW = 1_800_000_000.0
POLICY = RetryPolicy(max_hours=72.0, base_seconds=5.0)


def decide(
    action: str,
    error: KeapError,
    *,
    failures: int = 1,
    first_failure_at: float | None = None,
    policy: RetryPolicy = POLICY,
) -> FailureDecision:
    return decide_after_failure(
        action=action,
        error=error,
        failures=failures,
        first_failure_at=first_failure_at,
        now=NOW,
        policy=policy,
        rng=random.Random(3),
    )


def lost(status: int | None = 504) -> KeapTransientError:
    """An answer lost after the request reached Keap (a gateway failure, a cut)."""
    return KeapTransientError("x", "gateway timeout", status_code=status, maybe_applied=True)


def refused() -> KeapTransientError:
    """A transient refusal Keap answered before doing anything (a 503 with Retry-After)."""
    return KeapTransientError("x", "unavailable", status_code=503, retry_after=30.0)


# (step kind, error) → verdict: the whole table over every kind of step.
CASES: list[tuple[str, KeapError, Verdict]] = []
for kind in ACTIONS:
    repeatable = is_repeatable(kind)
    CASES += [
        (kind, lost(), "retry" if repeatable else "unknown"),
        (kind, lost(None), "retry" if repeatable else "unknown"),  # no answer at all
        (kind, refused(), "retry"),
        (kind, KeapThrottledError("x", "429", status_code=429, retry_after=2.0), "retry"),
        (kind, KeapPermanentError("x", "bad request", status_code=400), "dead"),
        (kind, KeapAuthError("x", "401", status_code=401, token_rejected=True), "pause"),
        (kind, KeapForbiddenError("x", "403", status_code=403), "pause"),
        (kind, KeapRetiredError("x", "XML-RPC is retired", status_code=404), "give_up"),
    ]


@pytest.mark.parametrize(("kind", "error", "verdict"), CASES)
def test_each_kind_and_error_has_one_verdict(kind: str, error: KeapError, verdict: str) -> None:
    decision = decide(kind, error)
    assert decision.verdict == verdict
    assert (decision.next_attempt_at is not None) == (verdict == "retry")


def test_calls_that_must_not_run_twice_are_the_costly_or_visible_ones() -> None:
    assert {"action_set", "email_template", "goal", "order", "payment", "note"} == NOT_REPEATABLE
    assert is_repeatable(CONTACT_UPSERT)
    assert is_repeatable("tags")


def test_an_answer_lost_for_a_call_that_must_not_run_twice_says_why_it_was_not_repeated() -> None:
    decision = decide("order", lost())
    assert decision.reason == f"{ANSWER_LOST} (gateway timeout)"


def test_a_retry_waits_as_keap_asks_else_backs_off() -> None:
    asked = decide("tags", refused())
    assert asked.next_attempt_at is not None
    assert NOW + 30 <= asked.next_attempt_at <= NOW + 31
    backoff = decide("tags", lost(), failures=3)  # 5 s, 10 s, then about 20 s
    assert backoff.next_attempt_at is not None
    assert NOW + 10 <= backoff.next_attempt_at <= NOW + 20
    assert backoff.reason == "tags: gateway timeout"


def test_the_backoff_grows_from_the_configured_base() -> None:
    slow = decide("tags", lost(), policy=RetryPolicy(max_hours=72.0, base_seconds=60.0))
    assert slow.next_attempt_at is not None
    assert NOW + 30 <= slow.next_attempt_at <= NOW + 60


def test_a_transient_failure_past_the_retry_window_is_dead() -> None:
    first = NOW - 72 * 3600 + 1  # the window ends in a second; the next try would be later
    decision = decide("tags", refused(), failures=40, first_failure_at=first)
    assert decision.verdict == "dead"
    assert decision.next_attempt_at is None
    assert decision.reason == "tags: unavailable (still failing after 72 h of retries)"


def test_the_window_counts_from_the_first_failure_not_from_now() -> None:
    short = RetryPolicy(max_hours=0.001, base_seconds=5.0)  # 3.6 s
    assert decide("tags", refused(), first_failure_at=None, policy=short).verdict == "dead"
    assert decide("tags", refused(), first_failure_at=NOW, policy=short).verdict == "dead"
    long = RetryPolicy(max_hours=1.0, base_seconds=5.0)
    assert decide("tags", refused(), first_failure_at=NOW - 3000, policy=long).verdict == "retry"
    assert decide("tags", refused(), first_failure_at=NOW - 3590, policy=long).verdict == "dead"


def test_a_permanent_failure_names_the_step_and_keaps_reason() -> None:
    decision = decide("sequence", KeapPermanentError("sequence.add", "no such sequence"))
    assert decision == FailureDecision("dead", "sequence: no such sequence")


def test_an_unknown_step_kind_is_treated_as_repeatable() -> None:
    assert decide("from_a_newer_version", lost()).verdict == "retry"
