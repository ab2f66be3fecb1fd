"""The relay's store: every ``Store`` operation written once, over either database.

Each operation is one transaction of the database (``Database.write``) or one read
(``Database.read``), running the SQL of ``app.store.queries`` in the database's dialect;
webhooks take the database's group-commit path (``Database.insert_events``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Coroutine
from typing import Any

from app.domain.events import (
    AttemptRecord,
    EventFilter,
    EventRecord,
    Inserted,
    NewEvent,
    Replanner,
)
from app.domain.problems import DeadEvent, DeadGroup
from app.keap.models import StoredToken
from app.store.database import Database
from app.store.queries import alerts, auth, claims, contacts, limiter, operator, replay
from app.store.queries import events as event_sql


class SQLStore:
    """Implements ``app.store.base.Store`` over a ``Database``."""

    # Webhooks go straight to the database's group-commit path: bound, not wrapped, so
    # the ingest hot path pays no extra coroutine (docs/performance.md, the register).
    insert_events: Callable[[list[NewEvent]], Coroutine[Any, Any, list[Inserted]]]

    def __init__(self, db: Database) -> None:
        self.db = db
        self.dialect = db.dialect.name  # shown by /readyz
        self._d = db.dialect
        self.insert_events = db.insert_events

    # lifecycle ---------------------------------------------------------------------
    async def open(self) -> None:
        await self.db.open()

    async def close(self) -> None:
        await self.db.close()

    async def ping(self) -> None:
        await self.db.ping()

    def durability(self) -> dict[str, str]:
        return self.db.durability()

    def ingest_writer_up(self) -> bool | None:
        return self.db.ingest_writer_up()

    # delivery ----------------------------------------------------------------------
    async def claim_due_events(
        self, worker_id: str, now: float, lease_seconds: float, limit: int
    ) -> list[EventRecord]:
        return await self.db.write(
            lambda c: claims.claim_due_events(c, self._d, worker_id, now, lease_seconds, limit)
        )

    async def renew_claims(self, worker_id: str, event_ids: list[str], until: float) -> None:
        if event_ids:
            await self.db.write(
                lambda c: claims.renew_claims(c, self._d, worker_id, event_ids, until)
            )

    async def complete_step(
        self,
        event_id: str,
        idx: int,
        worker_id: str,
        result: Any,
        contact_id: int | None,
        *,
        replaces: int | None = None,
    ) -> bool:
        return await self.db.write(
            lambda c: claims.complete_step(
                c, self._d, event_id, idx, worker_id, result, contact_id, replaces
            )
        )

    async def mark_step_sending(self, event_id: str, idx: int, worker_id: str) -> bool:
        return await self.db.write_now(
            lambda c: claims.mark_step_sending(c, self._d, event_id, idx, worker_id)
        )

    async def fail_step(
        self,
        event_id: str,
        idx: int,
        worker_id: str,
        error: str,
        *,
        dead: bool,
        next_attempt_at: float | None,
        now: float,
    ) -> bool:
        return await self.db.write(
            lambda c: claims.fail_step(
                c, self._d, event_id, idx, worker_id, error, dead, next_attempt_at, now
            )
        )

    async def give_up_step(self, event_id: str, idx: int, worker_id: str, error: str) -> bool:
        return await self.db.write(
            lambda c: claims.give_up_step(c, self._d, event_id, idx, worker_id, error)
        )

    async def finish_event(
        self, event_id: str, worker_id: str, now: float, *, dead_reason: str | None = None
    ) -> bool:
        return await self.db.write(
            lambda c: claims.finish_event(c, self._d, event_id, worker_id, now, dead_reason)
        )

    async def release_claim(self, event_id: str, worker_id: str, next_attempt_at: float) -> None:
        await self.db.write(
            lambda c: claims.release_claim(c, self._d, event_id, worker_id, next_attempt_at)
        )

    async def record_attempts(self, attempts: list[AttemptRecord]) -> None:
        if attempts:
            await self.db.write(lambda c: event_sql.record_attempts(c, self._d, attempts))

    # limiter -----------------------------------------------------------------------
    async def reserve_call(self, now: float, ceilings: list[tuple[int, float]]) -> float:
        return await self.db.write_now(lambda c: limiter.reserve_call(c, self._d, now, ceilings))

    async def quota_use(self, moments: list[float], day: float) -> list[int]:
        return await self.db.read(lambda c: limiter.quota_use(c, self._d, moments, day))

    async def set_not_before(self, until: float) -> None:
        await self.db.write(lambda c: limiter.set_not_before(c, self._d, until))

    # contact reuse -----------------------------------------------------------------
    async def reused_contact(self, email_key: str, fields_key: str, since: float) -> int | None:
        return await self.db.read(
            lambda c: contacts.reused_contact(c, self._d, email_key, fields_key, since)
        )

    async def remember_contact(
        self, email_key: str, fields_key: str, contact_id: int, now: float, keep: float
    ) -> None:
        await self.db.write(
            lambda c: contacts.remember_contact(
                c, self._d, email_key, fields_key, contact_id, now, keep
            )
        )

    async def forget_contact(self, email_key: str, contact_id: int) -> None:
        await self.db.write(lambda c: contacts.forget_contact(c, self._d, email_key, contact_id))

    # oauth -------------------------------------------------------------------------
    async def load_oauth_token(self) -> StoredToken | None:
        return await self.db.read(lambda c: auth.load_oauth_token(c, self._d))

    async def save_oauth_token(
        self, token: StoredToken, *, previous_refresh_token: str | None
    ) -> bool:
        return await self.db.write(
            lambda c: auth.save_oauth_token(c, self._d, token, previous_refresh_token, time.time())
        )

    # admin sessions ----------------------------------------------------------------
    async def create_admin_session(self, id_hash: str, now: float, expires_at: float) -> None:
        await self.db.write(
            lambda c: auth.create_admin_session(c, self._d, id_hash, now, expires_at)
        )

    async def admin_session_active(self, id_hash: str, now: float) -> bool:
        return await self.db.read(lambda c: auth.admin_session_active(c, self._d, id_hash, now))

    async def revoke_admin_session(self, id_hash: str) -> None:
        await self.db.write(lambda c: auth.revoke_admin_session(c, self._d, id_hash))

    async def sign_in_failures(self, address: str, since: float, limit: int) -> list[float]:
        return await self.db.read(
            lambda c: auth.sign_in_failures(c, self._d, address, since, limit)
        )

    async def record_sign_in_failure(self, address: str, now: float, forget_before: float) -> None:
        await self.db.write(
            lambda c: auth.record_sign_in_failure(c, self._d, address, now, forget_before)
        )

    async def clear_sign_in_failures(self, address: str) -> None:
        await self.db.write(lambda c: auth.clear_sign_in_failures(c, self._d, address))

    # operator ----------------------------------------------------------------------
    async def event_payload_text(self, event_id: str) -> str | None:
        return await self.db.read(lambda c: operator.event_payload_text(c, self._d, event_id))

    async def list_events(
        self, flt: EventFilter, limit: int, before_seq: int | None
    ) -> list[EventRecord]:
        return await self.db.read(
            lambda c: operator.list_events(c, self._d, flt, limit, before_seq)
        )

    async def get_event(self, event_id: str) -> EventRecord | None:
        return await self.db.read(lambda c: operator.get_event(c, self._d, event_id))

    async def count_by_status(self) -> dict[str, int]:
        return await self.db.read(lambda c: operator.count_by_status(c, self._d))

    async def dead_groups(self, limit: int) -> list[DeadGroup]:
        return await self.db.read(lambda c: operator.dead_groups(c, self._d, limit))

    async def purge_finished(self, before: float, batch: int) -> int:
        return await self.db.write(lambda c: operator.purge_finished(c, self._d, before, batch))

    async def requeue(
        self,
        event_id: str,
        *,
        from_start: bool,
        now: float,
        dry_run_steps: bool = False,
        replan: Replanner | None = None,
    ) -> bool:
        return await self.db.write(
            lambda c: replay.requeue(
                c, self._d, event_id, from_start, now, dry_run_steps=dry_run_steps, replan=replan
            )
        )

    async def requeue_matching(
        self,
        flt: EventFilter,
        now: float,
        *,
        from_start: bool = False,
        dry_run_steps: bool = False,
        replan: Replanner | None = None,
    ) -> int:
        ids = await self.db.read(
            lambda c: replay.requeue_candidates(c, self._d, flt, dry_run_steps, replan is not None)
        )
        count = 0
        for start in range(0, len(ids), replay.REQUEUE_BATCH):
            requeue_batch = functools.partial(
                replay.requeue_many,
                d=self._d,
                event_ids=ids[start : start + replay.REQUEUE_BATCH],
                now=now,
                from_start=from_start,
                dry_run_steps=dry_run_steps,
                replan=replan,
            )
            count += await self.db.write(requeue_batch)
        return count

    # alerts ------------------------------------------------------------------------
    async def dead_since(self, since: float, until: float, limit: int) -> list[DeadEvent]:
        return await self.db.read(lambda c: alerts.dead_since(c, self._d, since, until, limit))

    async def load_alert_state(self, prefix: str) -> dict[str, tuple[float, float]]:
        return await self.db.read(lambda c: alerts.load_alert_state(c, self._d, prefix))

    async def forget_alert_state(self, prefix: str, sent_before: float) -> int:
        return await self.db.write(
            lambda c: alerts.forget_alert_state(c, self._d, prefix, sent_before)
        )

    async def advance_alert_state(
        self, key: str, value: float, now: float, *, expected: float | None = None
    ) -> bool:
        return await self.db.write(
            lambda c: alerts.advance_alert_state(c, self._d, key, value, now, expected)
        )
