"""Deliver one claimed event: run its unfinished steps in order, record every call, and
act on ``failure.decide_after_failure`` when a step fails.

Calls that must not run twice (``actions``: not repeatable) are durably marked
``sending`` just before their first call goes out: a step a crash left so is never
repeated, but ends outcome_unknown; so does one whose answer says Keap may have run it.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from typing import Any

from app.delivery.actions import KeapActions, is_repeatable
from app.delivery.attempts import attempt_records
from app.delivery.auth_pause import AuthPause
from app.delivery.batching import Batcher, batch_key
from app.delivery.failure import FailureDecision, RetryPolicy, decide_after_failure
from app.delivery.reuse import ContactReuse, says_contact_missing
from app.delivery.steps import run_step
from app.domain.events import CONTACT_UPSERT, EventRecord, StepRecord
from app.keap.client import CallContext
from app.keap.errors import KeapAuthError, KeapError, KeapForbiddenError
from app.keap.models import BeforeSend
from app.observability.logging import bind_log_context, mask_email
from app.observability.metrics import Metrics
from app.observability.tracing import delivery_outcome
from app.store.base import Store

log = logging.getLogger("relay.worker")

IN_FLIGHT_AT_CRASH = (
    "a worker stopped while this call was in flight; Infusionsoft most likely ran it, so "
    "it was not repeated (replay the event from the start to run it again)"
)


class ClaimLost(Exception):
    """Another worker owns the event now (this one's lease expired)."""


@dataclass
class Progress:
    """What an event's finished steps leave for the next: contact ids by upsert step,
    the upserts whose id was reused (not answered by Keap just now), results by step
    index, and the reasons of steps given up for good."""

    contact_ids: dict[int, Any]
    reused: set[int]
    finished: dict[int, Any]
    given_up: list[str]

    @classmethod
    def of(cls, event: EventRecord) -> Progress:
        upserts = [s for s in event.steps if s.action == CONTACT_UPSERT]
        return cls(
            contact_ids={
                s.idx: s.result.get("contact_id")
                for s in upserts
                if s.status == "done" and isinstance(s.result, dict)
            },
            reused={
                s.idx for s in upserts if isinstance(s.result, dict) and s.result.get("reused")
            },
            finished={s.idx: s.result for s in event.steps if s.status == "done"},
            # A step given up for good (XML-RPC retired) does not hold back the others:
            # the event runs them all, then ends dead with that step's reason.
            given_up=[s.last_error or s.action for s in event.steps if s.status == "failed"],
        )


@dataclass
class EventDelivery:
    """What delivering an event works with, besides the event (``Worker`` builds it)."""

    store: Store
    client: KeapActions
    worker_id: str
    auth: AuthPause
    policy: RetryPolicy
    dry_run: bool = False
    metrics: Metrics | None = None
    reuse: ContactReuse | None = None
    batcher: Batcher | None = None

    async def deliver(self, event: EventRecord) -> None:
        progress = Progress.of(event)
        for step in event.steps:
            if step.status in ("done", "failed"):
                continue
            # Every line logged for this step (its Keap calls included) names it.
            bind_log_context(route=step.route, action=step.action)
            if not await self._deliver_step(event, step, progress):
                return
        bind_log_context(route=None, action=None)
        await self._finish(event, "; ".join(progress.given_up) or None)

    async def _deliver_step(self, event: EventRecord, step: StepRecord, progress: Progress) -> bool:
        """Run the step and record it; False when the event stops here (the step failed
        and the event waits, dies or is released, or the claim was lost)."""
        contact_id = progress.contact_ids.get(step.params.get("contact_step", step.idx))
        if step.status == "sending":  # left so by a worker that died mid-call
            log.warning(
                "not repeating a call that was in flight when a worker stopped",
                extra={"event_id": event.id, "action": step.action},
            )
            unknown = self._outcome_unknown(step.action, contact_id, IN_FLIGHT_AT_CRASH)
            return await self.store.complete_step(event.id, step.idx, self.worker_id, unknown, None)
        mark = None if is_repeatable(step.action) else self._sending_mark(event.id, step.idx)
        ctx = CallContext(before_send=mark)
        started = time.time()
        try:
            result = await self._run_step(event, step, contact_id, progress, ctx)
        except ClaimLost:
            log.warning("lost the claim mid-event", extra={"event_id": event.id})
            return False
        except KeapError as failure:
            # A 403 is judged first, so the step's history shows the probe and verdict.
            error = await self._judged(failure, ctx)
            await self._record(event, step.idx, ctx, started, error)
            now = time.time()
            decision = decide_after_failure(
                action=step.action,
                error=error,
                failures=event.attempts + 1,
                first_failure_at=event.first_failure_at,
                now=now,
                policy=self.policy,
            )
            if decision.verdict != "unknown":
                return await self._failed(event, step, error, decision, progress, now)
            # Keap may have carried out a call that must not run twice (its answer was
            # lost, or was a gateway failure): as after a crash mid-call, it is not
            # repeated, and the step says so.
            log.warning(
                "not repeating a call Infusionsoft may have carried out",
                extra={"event_id": event.id, "action": step.action, "error": error.detail},
            )
            result = self._outcome_unknown(step.action, contact_id, decision.reason)
        else:
            await self._record(event, step.idx, ctx, started, None)
        return await self._complete(event, step, result, progress)

    async def _complete(
        self, event: EventRecord, step: StepRecord, result: dict[str, Any], progress: Progress
    ) -> bool:
        if self.dry_run:
            result = {**result, "dry_run": True}  # so a replay can send it for real
        self.auth.accepted()  # a call went through: the key works
        new_contact = result.get("contact_id") if step.action == CONTACT_UPSERT else None
        if new_contact is not None:
            progress.contact_ids[step.idx] = new_contact
            if result.get("reused"):
                progress.reused.add(step.idx)
        progress.finished[step.idx] = result
        if not await self.store.complete_step(
            event.id, step.idx, self.worker_id, result, new_contact
        ):
            log.warning("lost the claim mid-event", extra={"event_id": event.id})
            return False
        return True

    async def _finish(self, event: EventRecord, dead_reason: str | None) -> None:
        if not await self.store.finish_event(
            event.id, self.worker_id, time.time(), dead_reason=dead_reason
        ):
            return
        outcome = "dead" if dead_reason else "delivered"
        if self.metrics:
            self.metrics.events_finished.labels(outcome).inc()
        delivery_outcome(outcome, dead_reason)
        log.log(
            logging.ERROR if dead_reason else logging.INFO,
            f"event {outcome}",
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
        progress: Progress,
        ctx: CallContext,
    ) -> dict[str, Any]:
        """The step's calls, with contact reuse (``app.delivery.reuse``): an upsert may
        reuse a recent id; a call refused because a reused contact no longer exists upserts
        the contact again and is made once more with its new id."""
        reuse = self.reuse
        if step.action == CONTACT_UPSERT and reuse is not None:
            return await reuse.upsert(self.client, step.params, ctx)
        try:
            return await self._call_step(step, contact_id, progress.finished, ctx)
        except KeapError as error:
            upsert_idx = step.params.get("contact_step")
            if (
                reuse is None
                or contact_id is None
                or upsert_idx not in progress.reused
                or not says_contact_missing(error)
            ):
                raise
            upsert = event.steps[upsert_idx].params
            fresh = await reuse.renew(self.client, upsert, contact_id, ctx)
            if fresh == contact_id:  # the contact exists: the call failed for another reason
                raise
            log.warning(
                "a reused contact id no longer exists in Keap: upserted the contact again",
                extra={"event_id": event.id, "action": step.action, "error": error.detail},
            )
            progress.reused.discard(upsert_idx)
            progress.contact_ids[upsert_idx] = fresh
            progress.finished[upsert_idx] = {"contact_id": fresh}
            if not await self.store.complete_step(
                event.id,
                upsert_idx,
                self.worker_id,
                {"contact_id": fresh},
                fresh,
                replaces=contact_id,
            ):
                raise ClaimLost(event.id) from error
            return await run_step(self.client, step, fresh, progress.finished, ctx)

    async def _call_step(
        self,
        step: StepRecord,
        contact_id: int | None,
        finished: dict[int, Any],
        ctx: CallContext,
    ) -> dict[str, Any]:
        """The step as one call of a batch across events (``app.delivery.batching``) when
        other events share it, else as its own calls."""
        if self.batcher is not None and contact_id is not None:
            batched = await self._batched(self.batcher, step, contact_id, ctx)
            if batched is not None:
                return batched
        return await run_step(self.client, step, contact_id, finished, ctx)

    @staticmethod
    async def _batched(
        batcher: Batcher, step: StepRecord, contact_id: int, ctx: CallContext
    ) -> dict[str, Any] | None:
        """The step's result when a batch did it; None: make the step's own calls."""
        key = batch_key(step.action, step.params)
        if key is None:
            return None
        outcome = await batcher.submit(key, contact_id)
        ctx.calls.extend(outcome.calls)
        if outcome.error is not None:
            raise copy.copy(outcome.error)  # each member raises its own
        return {"contact_id": contact_id, "batched": True} if outcome.done else None

    async def _failed(
        self,
        event: EventRecord,
        step: StepRecord,
        error: KeapError,
        decision: FailureDecision,
        progress: Progress,
        now: float,
    ) -> bool:
        """Carry out a failed step's decision; True when the event's other steps go on."""
        if decision.verdict == "give_up":
            if not await self.store.give_up_step(
                event.id, step.idx, self.worker_id, decision.reason
            ):
                return False
            progress.given_up.append(decision.reason)
            log.error(
                "step given up: Keap retired its API; the event's other steps go on",
                extra={"event_id": event.id, "action": step.action, "error": error.detail},
            )
            return True
        if decision.verdict == "pause":
            assert isinstance(error, KeapAuthError)  # decide_after_failure's contract
            delivery_outcome("paused", decision.reason)
            self.auth.pause(error)
            await self.store.release_claim(event.id, self.worker_id, now)
            return False
        dead = decision.verdict == "dead"
        next_at = decision.next_attempt_at
        await self.store.fail_step(
            event.id,
            step.idx,
            self.worker_id,
            decision.reason,
            dead=dead,
            next_attempt_at=next_at,
            now=now,
        )
        if dead and self.metrics:
            self.metrics.events_finished.labels("dead").inc()
        delivery_outcome("dead" if dead else "retry", decision.reason)
        log.log(
            logging.ERROR if dead else logging.WARNING,
            "event dead" if dead else "step failed; will retry",
            extra={
                "event_id": event.id,
                "source": event.source,
                "action": step.action,
                "error": error.detail,
                "next_attempt_at": next_at,
            },
        )
        return False

    async def _judged(self, error: KeapError, ctx: CallContext) -> KeapError:
        if isinstance(error, KeapForbiddenError):
            return await self.auth.judge_forbidden(error, ctx)
        return error

    def _outcome_unknown(self, action: str, contact_id: Any, reason: str) -> dict[str, Any]:
        """The result of a step left outcome_unknown, counted in the metric."""
        if self.metrics:
            self.metrics.outcome_unknown.labels(action).inc()
        return {"contact_id": contact_id, "outcome_unknown": reason}

    def _sending_mark(self, event_id: str, idx: int) -> BeforeSend:
        """Durably note that a call that must not run twice is about to be sent."""

        async def mark() -> None:
            if not await self.store.mark_step_sending(event_id, idx, self.worker_id):
                raise ClaimLost(event_id)

        return mark

    async def _record(
        self,
        event: EventRecord,
        idx: int,
        ctx: CallContext,
        started: float,
        error: KeapError | None,
    ) -> None:
        await self.store.record_attempts(attempt_records(event.id, idx, ctx.calls, started, error))
