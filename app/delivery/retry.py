"""When to try again, and when to give up: pure functions the worker asks."""

from __future__ import annotations

import random
from dataclasses import dataclass

BASE_DELAY = 5.0  # seconds before the first retry
MAX_DELAY = 30 * 60.0  # never wait longer than this between tries


@dataclass(frozen=True)
class RetryDecision:
    dead: bool
    next_attempt_at: float | None
    reason: str


def backoff_delay(
    failures: int, rng: random.Random | None = None, base: float = BASE_DELAY
) -> float:
    """Exponential backoff with jitter: about 5 s, 10 s, 20 s, … capped at 30 min.

    "Equal jitter": half the exponential delay is fixed and half random, so retries of
    many events spread out without any of them retrying almost at once.
    """
    uniform = (rng or random).uniform
    exponential = min(MAX_DELAY, base * 2.0 ** max(0, failures - 1))
    return exponential / 2 + uniform(0, exponential / 2)


def decide_retry(
    *,
    failures: int,
    retry_after: float | None,
    first_failure_at: float,
    now: float,
    max_hours: float,
    rng: random.Random | None = None,
    base: float = BASE_DELAY,
) -> RetryDecision:
    """After a transient failure: the next try, or dead once the retry window is spent."""
    deadline = first_failure_at + max_hours * 3600
    delay = backoff_delay(failures, rng, base)
    if retry_after is not None:
        delay = max(retry_after, 0.0) + (rng or random).uniform(0, 1.0)
    next_at = now + delay
    if next_at > deadline:
        return RetryDecision(True, None, f"still failing after {max_hours:g} h of retries")
    return RetryDecision(False, next_at, "retry")
