"""The delivery worker: claim due events, run their unfinished steps in order, record
every attempt, and decide — through ``retry`` — what happens after a failure.

A claim is a lease renewed while the worker works, so a killed worker's events return
to the queue within RELAY_CLAIM_LEASE_SECONDS. A rejected credential pauses all delivery
(nothing is burnt) until a probe, once a minute, is accepted again. A 403 is probed at
once: if the credential still works, the 403 belongs to that one call (a record or feature
the key's user may not touch) and only that event fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import functools
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

from app.alerts.alerter import Alerter
from app.delivery.batching import Batcher, BatchFailed, batch_key, send_batch
from app.delivery.gate import before_send
from app.delivery.retention import retention_loop
from app.delivery.retry import decide_retry
from app.delivery.reuse import ContactReuse, says_contact_missing
from app.delivery.steps import KeapActions, run_step
from app.delivery.token_upkeep import TokenKeeper, describe_token_age, keep_refresh_token_fresh
from app.domain.events import AttemptRecord, EventRecord, StepRecord
from app.keap.client import KeapCall
from app.keap.errors import (
    KeapAuthError,
    KeapError,
    KeapForbiddenError,
    KeapPermanentError,
    KeapRetiredError,
    KeapThrottledError,
    KeapTransientError,
)
from app.observability.logging import bind_log_context, log_context, mask_email
from app.observability.metrics import Metrics
from app.observability.tracing import delivery_outcome, delivery_span
from app.plan.planner import CONTACT_UPSERT
from app.store.base import Store, StoreUnavailable

log = logging.getLogger("relay.worker")

# Calls that must not run twice: a crash mid-call leaves them "sending", and an answer
# after which Keap may have carried them out (the client's ``maybe_applied``) leaves them
# outcome_unknown; neither is repeated. An order and its payment are the costliest to
# repeat (the order step first looks for the order, so a replay reuses it); a note twice
# is clutter on the contact's record. Every other call may run twice.
# docs/delivery-guarantees.md has the table.
NOT_REPEATABLE = frozenset({"action_set", "email_template", "goal", "order", "payment", "note"})
ANSWER_LOST = (
    "the answer to this call was lost or was a gateway failure after it reached "
    "Infusionsoft, which may have run it, so it was not repeated (replay the event from "
    "the start to run it again)"
)
IN_FLIGHT_AT_CRASH = (
    "a worker stopped while this call was in flight; Infusionsoft most likely ran it, so "
    "it was not repeated (replay the event from the start to run it again)"
)

# The step a Keap call belongs to, so the client's call reports land in its history.
_current_step: contextvars.ContextVar[tuple[str, int] | None] = contextvars.ContextVar(
    "current_step", default=None
)
_calls: contextvars.ContextVar[list[KeapCall] | None] = contextvars.ContextVar(
    "calls", default=None
)


class ClaimLost(Exception):
    """Another worker owns the event now (this one's lease expired)."""


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


def record_call(call: KeapCall) -> None:
    """The client's observer hook: keep the call for the current step's history."""
    calls = _calls.get()
    if calls is not None:
        calls.append(call)


class Worker:
    def __init__(
        self,
        store: Store,
        client: KeapActions,
        options: WorkerOptions,
        metrics: Metrics | None = None,
        probe_auth: Callable[[], Awaitable[None]] | None = None,
        token_keeper: TokenKeeper | None = None,
        alerts: Alerter | None = None,
    ) -> None:
        self.store = store
        self.client = client
        self.options = options
        self.metrics = metrics
        self.probe_auth = probe_auth
        self.token_keeper = token_keeper
        self.alerts = alerts
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._auth_ok = asyncio.Event()
        self._auth_ok.set()
        self._auth_detail = "not probed yet: no call has been made"
        self._auth_state = "not_started"
        self._crashed: str | None = None
        self._store_failure: str | None = None
        self.reuse = (
            ContactReuse(store, options.contact_reuse_seconds)
            if options.contact_reuse_seconds > 0 and not options.dry_run
            else None
        )
        self.batcher = (
            Batcher(self._send_batch, options.batch_window_seconds, lambda: len(self._inflight))
            if options.batch_window_seconds > 0
            and not options.dry_run
            and hasattr(client, "change_sequence_contacts")
            else None
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
            self._auth_state, self._auth_detail = "skipped", "dry-run"
        elif self.token_keeper is not None:
            self._tasks.append(
                loop.create_task(
                    keep_refresh_token_fresh(
                        self.token_keeper,
                        self.options.refresh_token_every_seconds,
                        on_refreshed=self._credentials_accepted_by_refresh,
                        on_refused=self._pause_for_auth,
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
        paused = "" if self._auth_ok.is_set() else "; delivery paused: credentials rejected"
        return {"status": "ok", "detail": f"{len(self._inflight)} events in flight{paused}"}

    def auth_health(self) -> dict[str, str]:
        detail = self._auth_detail
        if self.token_keeper is not None and self._auth_state != "skipped":
            age = describe_token_age(self.token_keeper, self.options.refresh_token_every_seconds)
            detail = f"{detail}; {age}" if age else detail
        return {"status": self._auth_state, "detail": detail}

    def _credentials_accepted_by_refresh(self) -> None:
        if self._auth_state == "not_started":
            self._auth_state, self._auth_detail = "ok", "credentials accepted"

    # loops -------------------------------------------------------------------------
    async def _claim_loop(self) -> None:
        try:
            while not self._stopping.is_set():
                await self._auth_ok.wait()
                free = self.options.concurrency - len(self._inflight)
                events = []
                if free > 0:
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
                        continue
                    if self._store_failure is not None and self.alerts is not None:
                        self.alerts.database_answers()
                    self._store_failure = None
                for event in events:
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

    async def _probe_until_accepted(self) -> None:
        while not self._stopping.is_set():
            await asyncio.sleep(self.options.auth_probe_interval)
            if self.probe_auth is None:
                break
            try:
                await self.probe_auth()
            except KeapAuthError as exc:
                self._auth_detail = _rejection_detail(exc)
                log.warning(
                    "credentials still rejected; delivery stays paused",
                    extra={"error": exc.detail, "remedy": exc.remedy},
                )
                continue
            except KeapError as exc:  # Keap is down, not our key: keep probing
                log.info("auth probe failed", extra={"error": exc.detail})
                continue
            break
        self._auth_state, self._auth_detail = "ok", "credentials accepted"
        if self.metrics:
            self.metrics.keap_auth_ok.set(1)
        log.info("credentials accepted again: delivery resumes")
        if self.alerts is not None:
            self.alerts.auth_resumed()
        self._auth_ok.set()
        self._wake.set()

    def _pause_for_auth(self, error: KeapAuthError) -> None:
        self._auth_state = "failing"
        self._auth_detail = _rejection_detail(error)
        if self.metrics:
            self.metrics.keap_auth_ok.set(0)
        if self._auth_ok.is_set():
            self._auth_ok.clear()
            log.error(
                "credentials rejected: delivery paused, probing every "
                f"{self.options.auth_probe_interval:g} s"
                + (f"; {error.remedy}" if error.remedy else ""),
                extra={"error": error.detail, "remedy": error.remedy},
            )
            task = asyncio.get_running_loop().create_task(self._probe_until_accepted())
            self._tasks.append(task)
            if self.alerts is not None:
                self.alerts.auth_paused(error.detail, self.options.auth_probe_interval)

    # one event ---------------------------------------------------------------------
    async def _deliver_guarded(self, event: EventRecord) -> None:
        with log_context(event_id=event.id, source=event.source), delivery_span(event):
            try:
                await self.deliver(event)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug or a database error: leave the event claimed; its lease expires and
                # it is tried again, so nothing is lost.
                log.exception("delivery failed unexpectedly", extra={"event_id": event.id})

    async def deliver(self, event: EventRecord) -> None:
        contact_ids = {
            s.idx: s.result.get("contact_id")
            for s in event.steps
            if s.action == CONTACT_UPSERT and s.status == "done" and isinstance(s.result, dict)
        }
        # Upsert steps whose contact id was reused rather than answered by Keap just now.
        reused = {
            s.idx
            for s in event.steps
            if s.action == CONTACT_UPSERT and isinstance(s.result, dict) and s.result.get("reused")
        }
        finished = {s.idx: s.result for s in event.steps if s.status == "done"}
        # A step given up for good (XML-RPC retired) does not hold back the others: the
        # event runs them all, then ends dead with that step's reason.
        given_up = [s.last_error or s.action for s in event.steps if s.status == "failed"]
        for step in event.steps:
            if step.status in ("done", "failed"):
                continue
            # Every line logged for this step (its Keap calls included) names it.
            bind_log_context(route=step.route, action=step.action)
            contact_id = contact_ids.get(step.params.get("contact_step", step.idx))
            if step.status == "sending":  # left so by a worker that died mid-call
                log.warning(
                    "not repeating a call that was in flight when a worker stopped",
                    extra={"event_id": event.id, "action": step.action},
                )
                result: dict[str, Any] = self._outcome_unknown(
                    step.action, contact_id, IN_FLIGHT_AT_CRASH
                )
                if not await self.store.complete_step(
                    event.id, step.idx, self.worker_id, result, None
                ):
                    return
                continue
            calls: list[KeapCall] = []
            token = _calls.set(calls)
            marker = before_send.set(
                functools.partial(self._mark_sending, event.id, step.idx)
                if step.action in NOT_REPEATABLE
                else None
            )
            started = time.time()
            recorded = False
            try:
                result = await self._run_step(
                    event, step, contact_id, contact_ids, reused, finished
                )
            except ClaimLost:
                log.warning("lost the claim mid-event", extra={"event_id": event.id})
                return
            except KeapRetiredError as error:
                await self._record(event, step.idx, calls, started, error)
                reason = f"{step.action}: {error.detail}"
                if not await self.store.give_up_step(event.id, step.idx, self.worker_id, reason):
                    return
                given_up.append(reason)
                log.error(
                    "step given up: Keap retired its API; the event's other steps go on",
                    extra={"event_id": event.id, "action": step.action, "error": error.detail},
                )
                continue
            except KeapError as failure:
                # A 403 is judged first, so the step's history shows the probe and verdict.
                judged = (
                    await self._judge_forbidden(failure)
                    if isinstance(failure, KeapForbiddenError)
                    else failure
                )
                await self._record(event, step.idx, calls, started, judged)
                recorded = True
                if not (step.action in NOT_REPEATABLE and _maybe_applied(judged)):
                    await self._after_failure(event, step.idx, step.action, judged)
                    return
                # Keap may have carried out a call that must not run twice (its answer was
                # lost, or was a gateway failure): as after a crash mid-call, it is not
                # repeated, and the step says so.
                log.warning(
                    "not repeating a call Infusionsoft may have carried out",
                    extra={"event_id": event.id, "action": step.action, "error": judged.detail},
                )
                result = self._outcome_unknown(
                    step.action, contact_id, f"{ANSWER_LOST} ({judged.detail})"
                )
            finally:
                before_send.reset(marker)
                _calls.reset(token)
            if not recorded:
                await self._record(event, step.idx, calls, started, None)
            if self.options.dry_run:
                result = {**result, "dry_run": True}  # so a replay can send it for real
            if self._auth_state == "not_started":  # a call went through: the key works
                self._auth_state, self._auth_detail = "ok", "credentials accepted"
            new_contact = result.get("contact_id") if step.action == CONTACT_UPSERT else None
            if new_contact is not None:
                contact_ids[step.idx] = new_contact
                if result.get("reused"):
                    reused.add(step.idx)
            finished[step.idx] = result
            if not await self.store.complete_step(
                event.id, step.idx, self.worker_id, result, new_contact
            ):
                log.warning("lost the claim mid-event", extra={"event_id": event.id})
                return
        bind_log_context(route=None, action=None)
        dead_reason = "; ".join(given_up) or None
        if await self.store.finish_event(
            event.id, self.worker_id, time.time(), dead_reason=dead_reason
        ):
            if self.metrics:
                self.metrics.events_finished.labels("dead" if dead_reason else "delivered").inc()
            delivery_outcome("dead" if dead_reason else "delivered", dead_reason)
            log.log(
                logging.ERROR if dead_reason else logging.INFO,
                "event dead" if dead_reason else "event delivered",
                extra={
                    "event_id": event.id,
                    "source": event.source,
                    "routes": event.routes,
                    "contact": mask_email(event.contact_email),
                    "steps": len(event.steps),
                },
            )

    async def _run_step(
        self,
        event: EventRecord,
        step: StepRecord,
        contact_id: int | None,
        contact_ids: dict[int, Any],
        reused: set[int],
        finished: dict[int, Any],
    ) -> dict[str, Any]:
        """The step's calls, with contact reuse (``app.delivery.reuse``): an upsert may
        reuse a recent id; a call refused because a reused contact no longer exists upserts
        the contact again and is made once more with its new id."""
        if step.action == CONTACT_UPSERT and self.reuse is not None:
            return await self.reuse.upsert(self.client, step.params)
        try:
            return await self._call_step(step, contact_id, finished)
        except KeapError as error:
            upsert_idx = step.params.get("contact_step")
            if (
                self.reuse is None
                or contact_id is None
                or upsert_idx not in reused
                or not says_contact_missing(error)
            ):
                raise
            fresh = await self.reuse.renew(self.client, event.steps[upsert_idx].params, contact_id)
            if fresh == contact_id:  # the contact exists: the call failed for another reason
                raise
            log.warning(
                "a reused contact id no longer exists in Keap: upserted the contact again",
                extra={"event_id": event.id, "action": step.action, "error": error.detail},
            )
            reused.discard(upsert_idx)
            contact_ids[upsert_idx] = fresh
            finished[upsert_idx] = {"contact_id": fresh}
            if not await self.store.complete_step(
                event.id,
                upsert_idx,
                self.worker_id,
                {"contact_id": fresh},
                fresh,
                replaces=contact_id,
            ):
                raise ClaimLost(event.id) from error
            return await run_step(self.client, step, fresh, finished)

    async def _call_step(
        self, step: StepRecord, contact_id: int | None, finished: dict[int, Any]
    ) -> dict[str, Any]:
        """The step as one call of a batch across events (``app.delivery.batching``) when
        other events share it, else as its own calls."""
        key = batch_key(step.action, step.params) if self.batcher is not None else None
        if key is not None and self.batcher is not None and contact_id is not None:
            outcome = await self.batcher.submit(key, contact_id)
            calls = _calls.get()
            if calls is not None:
                calls.extend(outcome.calls)
            if outcome.error is not None:
                raise copy.copy(outcome.error)  # each member raises its own
            if outcome.done:
                return {"contact_id": contact_id, "batched": True}
        return await run_step(self.client, step, contact_id, finished)

    async def _send_batch(
        self, key: tuple[Hashable, ...], contact_ids: list[int]
    ) -> tuple[set[int], list[KeapCall]]:
        """One batch's calls, recorded apart from any one event (each member's history
        gets them)."""
        calls: list[KeapCall] = []
        _calls.set(calls)  # this runs in a task of its own: its context is a copy
        before_send.set(None)
        bind_log_context(event_id=None, source=None, route=None, action=key[0])
        try:
            done = await send_batch(self.client, key, contact_ids)  # type: ignore[arg-type]
        except KeapError as error:
            raise BatchFailed(error, calls) from error
        log.info(
            "batched step sent",
            extra={"action": key[0], "contacts": len(contact_ids), "done": len(done)},
        )
        return done, calls

    def _outcome_unknown(self, action: str, contact_id: Any, reason: str) -> dict[str, Any]:
        """The result of a step left outcome_unknown, counted in the metric."""
        if self.metrics:
            self.metrics.outcome_unknown.labels(action).inc()
        return {"contact_id": contact_id, "outcome_unknown": reason}

    async def _mark_sending(self, event_id: str, idx: int) -> None:
        """Durably note that a call that must not run twice is about to be sent."""
        if not await self.store.mark_step_sending(event_id, idx, self.worker_id):
            raise ClaimLost(event_id)

    async def _after_failure(
        self, event: EventRecord, idx: int, action: str, error: KeapError
    ) -> None:
        now = time.time()
        reason = f"{action}: {error.detail}"
        if isinstance(error, KeapAuthError):
            delivery_outcome("paused", reason)
            self._pause_for_auth(error)
            await self.store.release_claim(event.id, self.worker_id, now)
            return
        if isinstance(error, KeapTransientError):
            decision = decide_retry(
                failures=event.attempts + 1,
                retry_after=error.retry_after,
                first_failure_at=event.first_failure_at or now,
                now=now,
                max_hours=self.options.retry_max_hours,
                base=self.options.retry_base_seconds,
            )
            dead = decision.dead
            if dead:
                reason = f"{reason} ({decision.reason})"
            next_at = decision.next_attempt_at
        else:  # permanent: retrying cannot help
            dead, next_at = True, None
        await self.store.fail_step(
            event.id, idx, self.worker_id, reason, dead=dead, next_attempt_at=next_at, now=now
        )
        if dead and self.metrics:
            self.metrics.events_finished.labels("dead").inc()
        delivery_outcome("dead" if dead else "retry", reason)
        log.log(
            logging.ERROR if dead else logging.WARNING,
            "event dead" if dead else "step failed; will retry",
            extra={
                "event_id": event.id,
                "source": event.source,
                "action": action,
                "error": error.detail,
                "next_attempt_at": next_at,
            },
        )

    async def _judge_forbidden(self, error: KeapForbiddenError) -> KeapError:
        """Probe at once: a 403 while the credential works belongs to the call alone."""
        if self.probe_auth is None:
            return error
        try:
            await self.probe_auth()
        except KeapAuthError:
            return error  # the whole credential is barred: pause
        except KeapError as exc:  # cannot tell now: try the event again later
            return KeapTransientError(
                error.operation,
                f"{error.detail} (the credential could not be checked: {exc.detail})",
                status_code=error.status_code,
            )
        return KeapPermanentError(
            error.operation,
            f"{error.detail} (the credential works: its user may not do this call)",
            status_code=error.status_code,
        )

    async def _record(
        self,
        event: EventRecord,
        idx: int,
        calls: list[KeapCall],
        started: float,
        error: KeapError | None,
    ) -> None:
        attempts = [
            AttemptRecord(
                event_id=event.id,
                step_idx=idx,
                started_at=started,
                duration=c.duration,
                operation=c.operation,
                request=f"{c.method} {c.path}",
                status_code=c.status_code,
                outcome=_outcome(c, error),
                error=c.error,
            )
            for c in calls
        ]
        if not attempts and error is not None:
            attempts.append(
                AttemptRecord(
                    event.id,
                    idx,
                    started,
                    time.time() - started,
                    error.operation,
                    "",
                    error.status_code,
                    _outcome(None, error),
                    error.detail,
                )
            )
        await self.store.record_attempts(attempts)


def _rejection_detail(error: KeapAuthError) -> str:
    detail = f"Infusionsoft rejects the credentials: {error.detail}"
    return f"{detail}; {error.remedy}" if error.remedy else detail


def _maybe_applied(error: KeapError) -> bool:
    """The client's verdict (``app.keap.errors``): Keap may have carried the call out."""
    return isinstance(error, KeapTransientError) and error.maybe_applied


def _outcome(call: KeapCall | None, error: KeapError | None) -> str:
    if call is not None and call.error is None:
        return "ok"
    if error is None:
        return "error"
    for kind, name in (
        (KeapRetiredError, "retired"),
        (KeapAuthError, "auth"),
        (KeapThrottledError, "throttled"),
        (KeapTransientError, "transient"),
        (KeapPermanentError, "permanent"),
    ):
        if isinstance(error, kind):
            return name
    return "error"
