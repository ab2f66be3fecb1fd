"""Batching across events: the same repeatable step of several in-flight events (apply or
remove a tag, add to or remove from a sequence) as one REST v2 many-contacts call.

Each event still runs its own steps in order, in its own task; at a batchable step it
asks the ``Batcher``, which parks it with the other events waiting for the same step.
A group is sent when no in-flight event is still working (none could join it), when it
is full, when it is large and the rate gate is about to idle (its call then goes ahead
of the queue), or after RELAY_BATCH_WINDOW_SECONDS at the latest. A step no other event could
join — no backlog — is not held at all and goes out as its usual per-contact call, so
latency without a backlog is as before. Per-contact order is kept: one contact's events
are never in flight together (the claim's per-contact order), and a batched step
finishes before its event's next step starts.

Each event's step is recorded from its contact's own result: a contact that the batch
did not clearly succeed for (a failure status, no status, or a whole-call refusal such
as a 404) runs its step again on its own, the per-contact call classifying the failure
for that event alone; a transient failure of the whole call (429, 5xx, timeout) fails
each member's step, which retries as usual. Only calls that are safe to repeat are
batched: applying a tag twice, or adding a contact to a sequence twice, changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.delivery.actions import ACTIONS, BatchActions, Batching, BatchKey
from app.keap.client import CallContext, KeapCall
from app.keap.errors import KeapError, KeapPermanentError
from app.observability.logging import bind_log_context

log = logging.getLogger("relay.worker")

# A large group goes out as soon as this process has no more than this many calls waiting
# for the rate gate: the stragglers it would wait for then join the next group, and the
# queued calls keep the gate busy while the batch's call is on its way (at 25 calls a
# second, 8 calls are ~0.3 s: two round trips of 150 ms). Waiting for the last of a wave
# instead left the gate idle for a round trip each wave, 2.5 % of the OAuth quota.
GATE_LOW_WATER = 8

# Contacts per call at most. The v2 reference gives no limit: kept well under any
# plausible one (and under a request body a gateway might refuse).
MAX_BATCH = 100


def batch_key(action: str, params: Mapping[str, Any]) -> BatchKey | None:
    """What makes two steps one call for many contacts; None: not batchable."""
    spec = ACTIONS.get(action)
    if spec is None or spec.batching is None:
        return None
    return (action, spec.batching.key(params))


def calls_per_batch(key: BatchKey) -> int:
    """v2 calls one group costs: one per tag, or one for a sequence."""
    return _batching(key).calls(key[1])


async def send_batch(
    client: BatchActions, key: BatchKey, contact_ids: list[int], ctx: CallContext
) -> set[int]:
    """Make the group's v2 calls; the contacts every call succeeded for."""
    return await _batching(key).send(client, key[1], contact_ids, ctx)


def _batching(key: BatchKey) -> Batching:
    batching = ACTIONS[key[0]].batching
    if batching is None:  # only batch_key makes keys, and only for a batched kind
        raise ValueError(f"steps of kind {key[0]!r} are not batched")
    return batching


async def send_group(
    client: BatchActions, key: BatchKey, contact_ids: list[int]
) -> tuple[set[int], list[KeapCall]]:
    """The ``Batcher``'s sender: one group's calls, recorded apart from any one event (each
    member's history gets them); raises ``BatchFailed`` with the calls made."""
    ctx = CallContext(urgent=True)  # its members wait on it: ahead of the queue
    # This runs in a task of its own, started from one member's: it speaks for none.
    bind_log_context(event_id=None, source=None, route=None, action=key[0])
    try:
        done = await send_batch(client, key, contact_ids, ctx)
    except KeapError as error:
        raise BatchFailed(error, ctx.calls) from error
    log.info(
        "batched step sent",
        extra={"action": key[0], "contacts": len(contact_ids), "done": len(done)},
    )
    return done, ctx.calls


@dataclass
class Outcome:
    """What a parked step learns: ``done`` (its contact succeeded), else run it on its
    own; ``error``: the whole call failed transiently. ``calls``: the calls made for it."""

    done: bool = False
    error: KeapError | None = None
    calls: list[KeapCall] = field(default_factory=list)


ALONE = Outcome()
# (contact ids) -> (contacts done, calls made) or raises KeapError with the calls made.
Sender = Callable[[BatchKey, list[int]], Awaitable[tuple[set[int], list[KeapCall]]]]


class BatchFailed(Exception):
    def __init__(self, error: KeapError, calls: list[KeapCall]) -> None:
        super().__init__(str(error))
        self.error = error
        self.calls = calls


@dataclass
class _Group:
    members: list[tuple[int, asyncio.Future[Outcome]]] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


class Batcher:
    """Groups in-flight events' identical batchable steps. ``in_flight()``: how many
    events the worker is delivering now (parked ones included)."""

    def __init__(
        self,
        send: Sender,
        window_seconds: float,
        in_flight: Callable[[], int],
        gate_backlog: Callable[[], int] | None = None,
    ) -> None:
        self.send = send
        self.window = window_seconds
        self.in_flight = in_flight
        self.gate_backlog = gate_backlog
        self._groups: dict[BatchKey, _Group] = {}
        self._sending: set[asyncio.Task[None]] = set()

    def parked(self) -> int:
        return sum(1 for g in self._groups.values() for _, future in g.members if not future.done())

    async def submit(self, key: BatchKey, contact_id: int) -> Outcome:
        """Wait for the group's call; ALONE when the step should go out on its own."""
        if key not in self._groups and self.in_flight() - self.parked() <= 1:
            return ALONE  # no other event is working: nobody could join, do not wait
        loop = asyncio.get_running_loop()
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group()
            group.timer = loop.call_later(self.window, self._flush, key)
        future: asyncio.Future[Outcome] = loop.create_future()
        group.members.append((contact_id, future))
        if len(group.members) >= MAX_BATCH or self._gate_starving(len(group.members)):
            self._flush(key)
        else:
            self.poke()
        return await future

    def poke(self) -> None:
        """Send every group if no in-flight event is still working (none could join)."""
        if self._groups and self.in_flight() - self.parked() <= 0:
            for key in list(self._groups):
                self._flush(key)

    def _gate_starving(self, members: int) -> bool:
        """A large group, and the gate about to run out of this process's calls."""
        return (
            members > GATE_LOW_WATER
            and self.gate_backlog is not None
            and self.gate_backlog() <= GATE_LOW_WATER
        )

    def _flush(self, key: BatchKey) -> None:
        group = self._groups.pop(key, None)
        if group is None:
            return
        if group.timer is not None:
            group.timer.cancel()
        members = [(c, f) for c, f in group.members if not f.done()]
        contacts = {c for c, _ in members}
        if len(contacts) < 2 or len(contacts) <= calls_per_batch(key):
            for _, future in members:  # the per-contact calls cost no more: make those
                future.set_result(ALONE)
            return
        task = asyncio.get_running_loop().create_task(self._send(key, members))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(
        self, key: BatchKey, members: list[tuple[int, asyncio.Future[Outcome]]]
    ) -> None:
        contacts = sorted({c for c, _ in members})
        try:
            done, calls = await self.send(key, contacts)
            outcomes = {c: Outcome(done=c in done, calls=calls) for c in contacts}
        except BatchFailed as failed:
            # Refused as a whole (a 404, a 400): each step runs on its own and finds out
            # for its contact. Transient (429, 5xx, timeout): each step fails and retries.
            permanent = isinstance(failed.error, KeapPermanentError)
            outcomes = {
                c: Outcome(error=None if permanent else failed.error, calls=failed.calls)
                for c in contacts
            }
        except BaseException as exc:  # a bug or cancellation: members must not hang
            for _, future in members:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else RuntimeError())
            raise
        for contact_id, future in members:
            if not future.done():
                future.set_result(outcomes[contact_id])

    async def close(self) -> None:
        for key in list(self._groups):
            group = self._groups.pop(key)
            if group.timer is not None:
                group.timer.cancel()
            for _, future in group.members:
                future.cancel()
        for task in list(self._sending):
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*self._sending, return_exceptions=True)
