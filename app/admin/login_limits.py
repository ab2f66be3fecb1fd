"""Failed sign-ins counted per client address: a guesser is slowed to a handful of tries
per quarter hour, whoever else uses the dashboard.

Kept in the database, so every replica counts the same failures and a restart forgets
none; a failure also forgets every failure older than the window, and a successful
sign-in clears the address's count.
"""

from __future__ import annotations

from app.store.base import Store

MAX_FAILURES = 10
WINDOW_SECONDS = 15 * 60


class FailedLogins:
    def __init__(
        self,
        store: Store,
        max_failures: int = MAX_FAILURES,
        window_seconds: float = WINDOW_SECONDS,
    ) -> None:
        self.store = store
        self.max_failures = max_failures
        self.window_seconds = window_seconds

    async def retry_after(self, address: str, now: float) -> float:
        """Seconds until ``address`` may try again (0: it may now)."""
        since = now - self.window_seconds
        failures = await self.store.sign_in_failures(address, since, self.max_failures)
        if len(failures) < self.max_failures:
            return 0.0
        return failures[0] + self.window_seconds - now

    async def record_failure(self, address: str, now: float) -> None:
        await self.store.record_sign_in_failure(address, now, now - self.window_seconds)

    async def clear(self, address: str) -> None:
        await self.store.clear_sign_in_failures(address)
