"""The rate limiter every Keap call passes: the configured ceilings held over sliding
windows in the database (so replicas share them), and Keap's own throttle headers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

from app.domain.quota import UTC_DAY_WINDOW
from app.keap.models import BeforeSend
from app.keap.throttle import ThrottleState, read_throttle, spent_pause_seconds
from app.observability.metrics import Metrics
from app.store.base import Store

log = logging.getLogger("relay.limiter")

# A slot is reserved a little ahead of when its call is sent (the lead): the grant, and
# the durable "sending" mark after it, come back within the lead, then the call waits for
# its slot and goes out on time. Keap counts a call when it arrives, so the jitter between
# slot and arrival is what the windows' margin must absorb; without a lead it was the whole
# database round trip (and the mark's commit), with one it is the wake-up alone. The lead
# follows the round trips measured (LEAD_FACTOR x their moving average, within bounds):
# it adds that much latency to a call, never a call's worth of quota.
LEAD_BOUNDS = (0.04, 0.5)
LEAD_FACTOR = 4.0
# How long after its slot a call may still be sent on it: the windows' margin absorbs
# anything under this. A late slot is not reused but stays counted, so a stricter value
# wastes quota on a busy host, a looser one needs a wider margin (less quota used).
FRESH_SLOT_SECONDS = 0.015
RESERVE_ATTEMPTS = 3  # reservations per call at most, however late each answer comes


# Keap counts a call when it arrives, the gate at its slot: a call held up on the way (a
# busy loop, a slow connection) can land in the next window beside the calls made after
# it. Slightly wider windows absorb that jitter. The second's margin is as wide as the
# minute ceiling leaves room for, within SECOND_MARGIN_BOUNDS: with a key (5/s, 240/min)
# the minute binds (4 a second on average), so 0.15 s costs nothing; at OAuth ceilings
# (25/s x 60 = 1 500/min) the second binds, and 0.04 s (FRESH_SLOT_SECONDS plus ~25 ms of
# sending) costs 1 - 1/1.04 = 3.8 % of the quota. (The daily quota is counted per UTC day,
# as Keap counts it: UTC_DAY_WINDOW.)
SECOND_MARGIN_BOUNDS = (0.04, 0.15)
MINUTE_MARGIN = 0.5


def second_margin(per_second: int, per_minute: int) -> float:
    """The widest margin on the 1 s window that still lets ``per_minute`` calls through in
    a minute, within SECOND_MARGIN_BOUNDS."""
    room = per_second * 60.0 / per_minute - 1.0
    low, high = SECOND_MARGIN_BOUNDS
    return min(max(room, low), high)


def ceilings_for(per_second: int, per_minute: int, per_day: int) -> list[tuple[int, float]]:
    """(limit, window seconds) pairs. Calls are also spaced 1/per_second apart, because
    Keap's spike arrest counts in sub-second slices: a burst of 5 in 10 ms can trip 5/s."""
    return [
        (1, 1.0 / per_second),
        (per_second, 1.0 + second_margin(per_second, per_minute)),
        (per_minute, 60.0 + MINUTE_MARGIN),
        (per_day, UTC_DAY_WINDOW),
    ]


class StoreCallGate:
    def __init__(
        self, store: Store, ceilings: list[tuple[int, float]], metrics: Metrics | None = None
    ) -> None:
        self.store = store
        self.ceilings = ceilings
        self.metrics = metrics
        self._background: set[asyncio.Task[None]] = set()
        # One caller per process asks the database at a time, the others queue here in
        # order: without it every waiting call retries at once when a slot frees up, and
        # the herd of refused reservations costs more database time than the calls.
        self._turn = asyncio.Lock()
        self._spacing = min((w for n, w in ceilings if n == 1), default=0.0)
        self._last_slot = 0.0
        self._round_trip = 0.0
        self.lead = LEAD_BOUNDS[0]
        self.waiting = 0  # calls of this process waiting for a slot (the batcher reads it)

    async def acquire(self, before_send: BeforeSend | None = None, *, urgent: bool = False) -> None:
        """Return when this call may be sent: a slot is reserved in the shared windows.
        ``before_send`` (a call that must not run twice: the worker records durably that
        it is being sent) runs once the slot is granted, just before the call is sent.
        ``urgent``: other events wait on this call (a batch), so it does not queue behind
        this process's other calls for its turn; it still takes a slot like any call."""
        self.waiting += 1
        try:
            await self._acquire(before_send, urgent)
        finally:
            self.waiting -= 1

    async def _acquire(self, before_send: BeforeSend | None, urgent: bool) -> None:
        hook = before_send
        for attempt in range(1, RESERVE_ATTEMPTS + 1):
            slot, asked_at = await self._reserve(urgent)
            last = attempt == RESERVE_ATTEMPTS  # a database always this slow: send anyway
            if hook is not None and (last or self._fresh(slot)):
                await hook()
                hook = None
            self._measured(time.time() - asked_at)
            if hook is None and (last or self._fresh(slot)):
                await asyncio.sleep(max(0.0, slot - time.time()))
                if last or self._fresh(slot):
                    return
            # The grant (or the hook after it) came back late — a slow commit, a busy
            # host: the slot recorded lies in the past, and a call sent now would crowd
            # the next window. Take a fresh slot; the stale one stays counted, which only
            # errs on the safe side.
            log.debug("late rate-limit grant; reserving again", extra={"slot": slot})

    @staticmethod
    def _fresh(slot: float) -> bool:
        return time.time() - slot <= FRESH_SLOT_SECONDS

    def _measured(self, round_trip: float) -> None:
        """Follow the round trips from asking for a granted slot to being ready to send
        on it (the grant, and the mark if any): the lead is LEAD_FACTOR x their average."""
        self._round_trip += (round_trip - self._round_trip) / 8
        low, high = LEAD_BOUNDS
        self.lead = min(max(LEAD_FACTOR * self._round_trip, low), high)

    async def _reserve(self, urgent: bool = False) -> tuple[float, float]:
        """Wait for and reserve a slot: the time reserved (``lead`` ahead, or later), and
        when the reservation that got it was asked for. An urgent call asks beside the
        queue (the database's limiter lock still decides: at worst a refused ask)."""
        if urgent:
            return await self._reserve_now()
        async with self._turn:
            return await self._reserve_now()

    async def _reserve_now(self) -> tuple[float, float]:
        # Ask for the next slot this process could have (its last one plus the spacing),
        # not for "now": a request bound to be refused is a wasted round trip.
        slot = max(time.time() + self.lead, self._last_slot + self._spacing)
        while True:
            early = slot - self.lead - time.time()
            if early > 0:  # never reserve further ahead than the lead
                await asyncio.sleep(min(early, 5.0))
            asked_at = time.time()
            wait = await self.store.reserve_call(slot, self.ceilings)
            if wait <= 0:
                self._last_slot = max(self._last_slot, slot)
                return slot, asked_at
            # The wait counts from the slot asked for, not from when the answer came.
            slot = max(slot + min(wait, 5.0), time.time() + self.lead)

    def observe(self, headers: Mapping[str, str], status: int) -> None:
        """Slow down for everyone when Keap says its throttle or quota is spent."""
        pause_until = throttle_pause_until(headers, status, time.time())
        if self.metrics is not None:
            self._export(read_throttle(headers))
        if pause_until is not None:
            task = asyncio.get_running_loop().create_task(self.store.set_not_before(pause_until))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def _export(self, state: ThrottleState) -> None:
        assert self.metrics is not None
        windows = [("throttle", state.throttle), ("quota", state.quota)]
        # The Keap app's own windows, shared with every other client of the app.
        windows += [(f"tenant_{'day' if w.daily else 'minute'}", w) for w in state.tenant]
        for label, window in windows:
            if window is not None and window.available is not None:
                self.metrics.keap_quota_available.labels(label).set(window.available)

    async def drain(self) -> None:
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)


def throttle_pause_until(headers: Mapping[str, str], status: int, now: float) -> float | None:
    """When Keap's headers say no call should be made before some time, that time.

    A spent daily quota (the key's, or the tenant's day window) pauses until it resets. A
    spent minute window (the key's or the tenant's), or a 429, pauses every worker for a
    second: the sliding windows of the gate, which mirror Keap's ceilings, then decide
    when the next call goes — a longer blanket pause only idles quota Keap would grant.
    """
    state = read_throttle(headers)
    daily = [w for w in (state.quota, *state.tenant) if w is not None and w.daily and w.spent]
    if daily:
        wait = spent_pause_seconds(state, now)
        return now + wait if wait else now + 60.0
    minute = [w for w in (state.throttle, *state.tenant) if w is not None and w.spent]
    if status == 429 or minute:
        return now + 1.0
    return None
