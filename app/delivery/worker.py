"""The delivery worker: claim due events, keep their leases renewed while it works, and
hand each to ``EventDelivery`` (``app.delivery.event_delivery``) in a task of its own.

A claim is a lease renewed while the worker works, so a killed worker's events return
to the queue within RELAY_CLAIM_LEASE_SECONDS. While the credentials are rejected
(``app.delivery.auth_pause``) no event is claimed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from app.alerts.alerter import Alerter
from app.delivery.actions import NOT_REPEATABLE, BatchActions, KeapActions
from app.delivery.auth_pause import AuthPause, Probe
from app.delivery.batching import Batcher, send_group
from app.delivery.event_delivery import EventDelivery
from app.delivery.failure import RetryPolicy
from app.delivery.retention import retention_loop
from app.delivery.reuse import ContactReuse
from app.delivery.token_upkeep import TokenKeeper, describe_token_age, keep_refresh_token_fresh
from app.domain.events import EventRecord
from app.observability.logging import log_context
from app.observability.metrics import Metrics
from app.observability.tracing import delivery_span
from app.store.base import Store, StoreUnavailable

log = logging.getLogger("relay.worker")


@dataclass
class WorkerOptions:
    concurrency: int = 8
    lease_seconds: float = 30.0
    retry_max_hours: float = 72.0
    retry_base_seconds: float = 5.0
    poll_interval: float = 0.5
    auth_probe_interval: float = 60.0
    dry_run: bool = False
    retention_days: float | None = None  # None: this worker does not purge
    contact_reuse_seconds: float = 0.0  # 0: every upsert step calls Keap
    batch_window_seconds: float = 0.0  # 0: no batching across events
    refresh_token_every_seconds: float = 7 * 86400.0  # OAuth: rotate at least this often


class Worker:
    def __init__(
        self,
        store: Store,
        client: KeapActions,
        options: WorkerOptions,
        metrics: Metrics | None = None,
        probe_auth: Probe | None = None,
        token_keeper: TokenKeeper | None = None,
        alerts: Alerter | None = None,
        gate_backlog: Callable[[], int] | None = None,
    ) -> None:
        """``gate_backlog``: how many calls of this process wait for the rate gate."""
        self.store = store
        self.client = client
        self.options = options
        self.metrics = metrics
        self.token_keeper = token_keeper
        self.alerts = alerts
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._crashed: str | None = None
        self._store_failure: str | None = None
        self.auth = AuthPause(
            probe_auth,
            options.auth_probe_interval,
            stopping=self._stopping,
            on_resumed=self._wake.set,
            spawn=self._spawn,
            metrics=metrics,
            alerts=alerts,
        )
        self.batcher = (
            Batcher(
                functools.partial(send_group, client),
                options.batch_window_seconds,
                lambda: len(self._inflight),
                gate_backlog,
            )
            if options.batch_window_seconds > 0
            and not options.dry_run
            and isinstance(client, BatchActions)
            else None
        )
        self.delivery = EventDelivery(
            store,
            client,
            self.worker_id,
            self.auth,
            RetryPolicy(options.retry_max_hours, options.retry_base_seconds),
            dry_run=options.dry_run,
            metrics=metrics,
            reuse=(
                ContactReuse(store, options.contact_reuse_seconds)
                if options.contact_reuse_seconds > 0 and not options.dry_run
                else None
            ),
            batcher=self.batcher,
        )
        if metrics:  # present from the start, so rate() sees the zeroes
            for action in NOT_REPEATABLE:
                metrics.outcome_unknown.labels(action)

    # lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._claim_loop(), name="relay-claim-loop"),
            loop.create_task(self._renew_loop(), name="relay-lease-renewal"),
        ]
        if self.options.retention_days is not None:
            self._tasks.append(
                loop.create_task(
                    retention_loop(self.store, self.options.retention_days),
                    name="relay-retention",
                )
            )
        if self.alerts is not None:
            self._tasks.append(loop.create_task(self.alerts.run(), name="relay-alerts"))
        if self.options.dry_run:
            self.auth.skip("dry-run")
        elif self.token_keeper is not None:
            self._tasks.append(
                loop.create_task(
                    keep_refresh_token_fresh(
                        self.token_keeper,
                        self.options.refresh_token_every_seconds,
                        on_refreshed=self.auth.accepted,
                        on_refused=self.auth.pause,
                    ),
                    name="relay-oauth-upkeep",
                )
            )

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        for task in list(self._inflight.values()):
            task.cancel()
        if self.batcher is not None:
            await self.batcher.close()
        await asyncio.gather(*self._tasks, *self._inflight.values(), return_exceptions=True)
        self._tasks = []
        if self.alerts is not None:
            await self.alerts.stop()

    def working_on(self, event_id: str) -> bool:
        """This worker still holds a task for the event (it may log or count after its
        status is committed)."""
        return event_id in self._inflight

    def wake(self) -> None:
        """New work may be due (called by ingest in the same process)."""
        self._wake.set()

    @property
    def running(self) -> bool:
        """The claim and lease loops are alive (probe and retention tasks may come and go)."""
        core = self._tasks[:2]
        return bool(core) and not any(t.done() for t in core)

    def health(self) -> dict[str, str]:
        if self._crashed:
            return {"status": "failing", "detail": self._crashed}
        if not self.running:
            return {"status": "not_started", "detail": "the worker is not running"}
        if self._store_failure:
            return {"status": "failing", "detail": f"cannot claim: {self._store_failure}"}
        paused = "; delivery paused: credentials rejected" if self.auth.paused else ""
        return {"status": "ok", "detail": f"{len(self._inflight)} events in flight{paused}"}

    def auth_health(self) -> dict[str, str]:
        detail = self.auth.detail
        if self.token_keeper is not None and self.auth.state != "skipped":
            age = describe_token_age(self.token_keeper, self.options.refresh_token_every_seconds)
            detail = f"{detail}; {age}" if age else detail
        return {"status": self.auth.state, "detail": detail}

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` (the auth probe loop) as a task stopped with the worker's own."""
        self._tasks.append(asyncio.get_running_loop().create_task(work))

    # loops -------------------------------------------------------------------------
    async def _claim_loop(self) -> None:
        try:
            while not self._stopping.is_set():
                await self.auth.wait_until_allowed()
                events = await self._claim()
                if events is None:
                    continue  # the database fails: _claim waited before the next try
                for event in events:
                    if event.id in self._inflight:
                        # Our lease lapsed (renewals failed) and we claimed it again: its
                        # delivery goes on; a second one would pass the same claim's fences.
                        continue
                    task = asyncio.get_running_loop().create_task(self._deliver_guarded(event))
                    self._inflight[event.id] = task
                    task.add_done_callback(functools.partial(self._finished, event.id))
                if not events:
                    await self._sleep(self.options.poll_interval)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # surfaced in /readyz instead of dying silently
            self._crashed = f"claim loop stopped: {type(exc).__name__}: {exc}"
            log.exception("worker claim loop crashed")
            raise

    async def _claim(self) -> list[EventRecord] | None:
        """Due events, as many as there is room for; None when the database fails."""
        free = self.options.concurrency - len(self._inflight)
        if free <= 0:
            return []
        try:
            events = await self.store.claim_due_events(
                self.worker_id, time.time(), self.options.lease_seconds, free
            )
        except StoreUnavailable as exc:
            # The database is down, full or read-only: wait and try again.
            # Claimed events were not touched; nothing is lost meanwhile.
            self._store_failure = str(exc)
            log.warning("cannot claim events", extra={"error": str(exc)})
            if self.alerts is not None:
                self.alerts.database_failing(str(exc))
            await self._sleep(min(5.0, self.options.poll_interval * 4))
            return None
        if self._store_failure is not None and self.alerts is not None:
            self.alerts.database_answers()
        self._store_failure = None
        return events

    def _finished(self, event_id: str, _: asyncio.Task[None]) -> None:
        self._inflight.pop(event_id, None)
        self._wake.set()
        if self.batcher is not None:  # the groups it could have joined need not wait
            self.batcher.poke()

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    async def _renew_loop(self) -> None:
        interval = self.options.lease_seconds / 3
        while not self._stopping.is_set():
            await asyncio.sleep(interval)
            if self._inflight:
                try:
                    await self.store.renew_claims(
                        self.worker_id,
                        list(self._inflight),
                        time.time() + self.options.lease_seconds,
                    )
                except Exception:
                    log.warning("could not renew claims", exc_info=True)

    # one event ---------------------------------------------------------------------
    async def _deliver_guarded(self, event: EventRecord) -> None:
        with log_context(event_id=event.id, source=event.source), delivery_span(event):
            try:
                await self.delivery.deliver(event)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug or a database error: leave the event claimed; its lease expires and
                # it is tried again, so nothing is lost.
                log.exception("delivery failed unexpectedly", extra={"event_id": event.id})
