"""The worker's alerts: it looks for newly dead events every few seconds and hears about
pauses and database failures from the worker; every alert is sent in the background.

What was told lives in the database (alert_state), claimed with a compare-and-set before
sending, so neither a restart nor a second replica tells it again. The one exception is
"the database is unreachable", which cannot be recorded there: it is told once per
outage by each worker that sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass

from app.alerts.grouping import (
    DEAD_CURSOR_KEY,
    DEAD_KEY_PREFIX,
    dead_key,
    plan_dead_alerts,
)
from app.alerts.messages import (
    Alert,
    auth_paused_alert,
    auth_resumed_alert,
    database_unreachable_alert,
    dead_events_alert,
    quota_alert,
)
from app.alerts.sender import AlertSender
from app.delivery.budget import read_budget
from app.domain.quota import UTC_DAY_WINDOW
from app.store.base import Store, StoreUnavailable

log = logging.getLogger("relay.alerts")

AUTH_KEY = "auth-paused"  # 1 while a pause was told and its resumption not yet
# The UTC day (its 00:00, epoch seconds) for which "nearly spent" / "spent" was told.
QUOTA_NEAR_KEY, QUOTA_SPENT_KEY = "quota-near", "quota-spent"
DEAD_BATCH = 10_000  # dead events read per look (a storm's rest waits for the next look)
STOP_GRACE_SECONDS = 2.0  # how long a stopping worker waits for alerts being sent
SETTLE_SECONDS = 1.0  # dead events younger than this wait a look (commits in flight)


@dataclass
class AlertOptions:
    group_seconds: float = 300.0  # one message per dead group per this long
    quiet_seconds: float = 10.0  # a group is told once no event joined it for this long
    check_seconds: float = 15.0  # how often to look for newly dead events
    database_grace_seconds: float = 30.0  # a database failing this long is told
    ceilings: tuple[int, int, int] | None = None  # the rate ceilings; None: no quota alerts
    quota_percent: float = 80.0  # "nearly spent" from this share of the daily ceiling


class Alerter:
    def __init__(self, store: Store, sender: AlertSender, options: AlertOptions) -> None:
        self.store = store
        self.sender = sender
        self.options = options
        self._background: set[asyncio.Task[None]] = set()
        self._db_failing_since: float | None = None
        self._db_told = False
        self._started = 0.0

    # the loop ----------------------------------------------------------------------
    async def run(self) -> None:
        self._started = time.time()
        while True:
            await asyncio.sleep(self.options.check_seconds)
            try:
                await self.check_dead(time.time())
                await self.check_quota(time.time())
            except StoreUnavailable as exc:
                log.info("cannot look for dead events", extra={"error": str(exc)})
            except Exception:
                log.exception("looking for dead events failed")

    async def check_dead(self, now: float) -> None:
        """Alert the dead events of the last look, grouped (see ``plan_dead_alerts``)."""
        state = await self.store.load_alert_state(DEAD_KEY_PREFIX)
        cursors = await self.store.load_alert_state(DEAD_CURSOR_KEY)
        cursor = cursors.get(DEAD_CURSOR_KEY, (0.0, 0.0))[0]
        until = now - SETTLE_SECONDS
        if cursor == 0.0:  # the first look ever: what died since this worker started
            cursor = self._started or now
            if not await self.store.advance_alert_state(DEAD_CURSOR_KEY, cursor, now, expected=0.0):
                return  # another replica made the first look
        dead = await self.store.dead_since(cursor, until, DEAD_BATCH)
        if len(dead) == DEAD_BATCH:
            until = dead[-1].at
        plan = plan_dead_alerts(
            dead,
            state,
            until=until,
            now=now,
            window=self.options.group_seconds,
            quiet=self.options.quiet_seconds,
        )
        # Claim the look: another replica that made the same one loses and sends nothing.
        if not await self.store.advance_alert_state(
            DEAD_CURSOR_KEY, plan.cursor, now, expected=cursor
        ):
            return
        for group in plan.send:
            key = dead_key(group.source, group.route, group.reason)
            told = state.get(key, (0.0, 0.0))[0]
            if await self.store.advance_alert_state(key, group.last_at, now, expected=told):
                self._send(dead_events_alert(group))
        # A group told long ago holds nothing back any more (the cursor is past it):
        # forget it, so the table does not keep every reason ever seen.
        forget = max(UTC_DAY_WINDOW, 2 * self.options.group_seconds)
        await self.store.forget_alert_state(DEAD_KEY_PREFIX, now - forget)

    async def check_quota(self, now: float) -> None:
        """Tell, once per UTC day, that the daily quota is nearly spent, and that it is."""
        if self.options.ceilings is None:
            return
        budget = await read_budget(self.store, self.options.ceilings, now)
        spent = budget.day.used >= budget.day.ceiling
        if not spent and budget.day.percent < self.options.quota_percent:
            return
        key = QUOTA_SPENT_KEY if spent else QUOTA_NEAR_KEY
        if await self.store.advance_alert_state(key, budget.day_started, now):
            self._send(quota_alert(budget, spent=spent))

    # told by the worker ------------------------------------------------------------
    def auth_paused(self, detail: str, probe_seconds: float) -> None:
        self._spawn(self._once(AUTH_KEY, 0.0, 1.0, auth_paused_alert(detail, probe_seconds)))

    def auth_resumed(self) -> None:
        self._spawn(self._once(AUTH_KEY, 1.0, 0.0, auth_resumed_alert()))

    def database_failing(self, detail: str) -> None:
        now = time.time()
        if self._db_failing_since is None:
            self._db_failing_since = now
        waited = now - self._db_failing_since
        if not self._db_told and waited >= self.options.database_grace_seconds:
            self._db_told = True
            self._send(database_unreachable_alert(detail, self._db_failing_since))

    def database_answers(self) -> None:
        self._db_failing_since, self._db_told = None, False

    # plumbing ----------------------------------------------------------------------
    async def _once(self, key: str, expected: float, value: float, alert: Alert) -> None:
        """Send ``alert`` if this worker is the one that moves ``key`` to ``value``."""
        if await self.store.advance_alert_state(key, value, time.time(), expected=expected):
            await self.sender.send(alert)

    def _send(self, alert: Alert) -> None:
        self._spawn(self.sender.send(alert))

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.get_running_loop().create_task(_logged(work))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Wait for the alerts being sent (tests, and a graceful stop)."""
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    async def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Give alerts on their way a moment (a resumption just told), then cancel."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.drain()), grace)
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)


async def _logged(work: Awaitable[None]) -> None:
    try:
        await work
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("an alert could not be sent")
