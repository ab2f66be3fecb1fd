"""Failed sign-ins counted per client address: a guesser is slowed to a handful of tries
per quarter hour, whoever else uses the dashboard.

Kept in each process's memory (replicas each count their own), bounded in the number of
addresses it remembers; a successful sign-in clears the address's count.
"""

from __future__ import annotations

from collections import deque

MAX_FAILURES = 10
WINDOW_SECONDS = 15 * 60
_MAX_ADDRESSES = 10_000


class FailedLogins:
    def __init__(
        self, max_failures: int = MAX_FAILURES, window_seconds: float = WINDOW_SECONDS
    ) -> None:
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, address: str, now: float) -> float:
        """Seconds until ``address`` may try again (0: it may now)."""
        failures = self._recent(address, now)
        if len(failures) < self.max_failures:
            return 0.0
        return failures[0] + self.window_seconds - now

    def record_failure(self, address: str, now: float) -> None:
        failures = self._recent(address, now)
        if not failures:
            self._failures.pop(address, None)
            if len(self._failures) >= _MAX_ADDRESSES:  # forget the longest-remembered
                self._failures.pop(next(iter(self._failures)))
            self._failures[address] = failures
        failures.append(now)

    def clear(self, address: str) -> None:
        self._failures.pop(address, None)

    def _recent(self, address: str, now: float) -> deque[float]:
        failures = self._failures.get(address) or deque()
        while failures and failures[0] <= now - self.window_seconds:
            failures.popleft()
        return failures
