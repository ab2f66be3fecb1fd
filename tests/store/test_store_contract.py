"""The Store contract, run against both SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time

import psycopg
import pytest

from app.domain.events import AttemptRecord, EventFilter, EventStatus, NewEvent, PlannedStep
from app.keap.models import StoredToken
from app.store.base import Store, StoreUnavailable
from app.store.factory import open_store
from app.store.ids import new_event_id
from app.store.migrations import MIGRATIONS
from tests.store.conftest import StoreFactory

T0 = 1_700_000_000.0
LEASE = 30.0
_keys = itertools.count()


def make_event(
    *,
    email: str | None = None,
    at: float = T0,
    source: str = "shop",
    status: EventStatus = "pending",
    dedupe_key: str | None = None,
    steps: int = 2,
) -> NewEvent:
    return NewEvent(
        id=new_event_id(at),
        source=source,
        event_type="orders/paid",
        external_id="ext-1",
        dedupe_key=dedupe_key or f"key-{next(_keys)}",
        status=status,
        received_at=at,
        payload={"order": 1, "note": "café"},
        headers={"x-topic": "orders/paid"},
        routes=["paid-order"],
        contact_email=email,
        last_error=None,
        steps=[PlannedStep("paid-order", "tags", {"ids": [i]}) for i in range(steps)],
    )


async def insert(store: Store, *events: NewEvent) -> list[str]:
    inserted = await store.insert_events(list(events))
    assert all(i.created for i in inserted)
    return [i.id for i in inserted]


async def claimed_ids(store: Store, worker: str, now: float, limit: int = 10) -> list[str]:
    return [e.id for e in await store.claim_due_events(worker, now, LEASE, limit)]


# ingest ----------------------------------------------------------------------------
async def test_insert_stores_the_event_with_its_steps(store: Store) -> None:
    event = make_event(email="Ann@Example.com")
    [inserted] = await store.insert_events([event])
    assert inserted.created
    assert inserted.id == event.id

    stored = await store.get_event(event.id)
    assert stored is not None
    assert stored.status == "pending"
    assert stored.contact_email == "Ann@Example.com"
    assert stored.payload == {"order": 1, "note": "café"}
    assert stored.headers == {"x-topic": "orders/paid"}
    assert stored.routes == ["paid-order"]
    assert [(s.idx, s.action, s.params, s.status) for s in stored.steps] == [
        (0, "tags", {"ids": [0]}, "pending"),
        (1, "tags", {"ids": [1]}, "pending"),
    ]
    assert await store.count_by_status() == {"pending": 1}


async def test_a_duplicate_names_the_first_event(store: Store) -> None:
    first = make_event(dedupe_key="order-7")
    duplicate = make_event(dedupe_key="order-7", at=T0 + 5)
    other_source = make_event(dedupe_key="order-7", source="woo")

    results = await store.insert_events([first, duplicate, other_source])

    assert [(r.id, r.created) for r in results] == [
        (first.id, True),
        (first.id, False),
        (other_source.id, True),
    ]
    assert await store.get_event(duplicate.id) is None


async def test_concurrent_inserts_of_one_key_store_one_event(store: Store) -> None:
    copies = [make_event(dedupe_key="same-order") for _ in range(20)]

    results = await asyncio.gather(*(store.insert_events([copy]) for copy in copies))

    winners = [r[0] for r in results if r[0].created]
    assert len(winners) == 1
    assert {r[0].id for r in results} == {winners[0].id}
    assert await store.count_by_status() == {"pending": 1}


# claims ----------------------------------------------------------------------------
async def test_a_large_mixed_batch_is_stored_row_for_row(store: Store) -> None:
    """71 events (statements of 32, 32, 4, 2 and 1 rows), some repeating stored keys and
    two sharing a key: each created or named after the event stored first, in order."""
    stored_before = [make_event(dedupe_key=f"old-{i}") for i in range(3)]
    await insert(store, *stored_before)
    batch = [make_event(at=T0 + i, email=f"c{i}@example.com") for i in range(66)]
    batch.insert(10, make_event(dedupe_key="old-1"))
    batch.insert(40, make_event(dedupe_key="old-2"))
    twin_key = batch[20].dedupe_key
    batch.insert(50, make_event(dedupe_key=twin_key))
    batch += [make_event(dedupe_key="old-0"), make_event()]
    assert len(batch) == 71
    inserted = await store.insert_events(batch)
    expected_first = {e.dedupe_key: e.id for e in reversed(batch)} | {
        e.dedupe_key: e.id for e in stored_before
    }
    assert [i.id for i in inserted] == [expected_first[e.dedupe_key] for e in batch]
    assert [i.created for i in inserted] == [expected_first[e.dedupe_key] == e.id for e in batch]
    assert sum(i.created for i in inserted) == 71 - 4
    last = await store.get_event(batch[-1].id)
    assert last is not None
    assert last.received_at == batch[-1].received_at
    assert last.steps[1].params == {"ids": [1]}


async def test_only_due_events_are_claimed(store: Store) -> None:
    now_id, later_id = await insert(store, make_event(at=T0), make_event(at=T0 + 10))

    assert await claimed_ids(store, "w1", T0) == [now_id]
    assert await claimed_ids(store, "w2", T0 + 9) == []
    assert await claimed_ids(store, "w2", T0 + 10) == [later_id]


async def test_a_lease_is_respected_until_it_expires(store: Store) -> None:
    [event_id] = await insert(store, make_event())
    assert await claimed_ids(store, "w1", T0) == [event_id]

    assert await claimed_ids(store, "w2", T0 + LEASE - 1) == []
    assert await claimed_ids(store, "w2", T0 + LEASE + 1) == [event_id]

    # w1 lost its claim: none of its writes land
    assert not await store.complete_step(event_id, 0, "w1", {"ok": True}, 11)
    assert not await store.fail_step(
        event_id, 0, "w1", "boom", dead=True, next_attempt_at=None, now=T0 + 40
    )
    assert not await store.finish_event(event_id, "w1", T0 + 40)
    stored = await store.get_event(event_id)
    assert stored is not None
    assert stored.status == "pending"
    assert stored.contact_id is None
    assert [s.status for s in stored.steps] == ["pending", "pending"]


async def test_renewing_a_claim_extends_the_lease(store: Store) -> None:
    [event_id] = await insert(store, make_event())
    await claimed_ids(store, "w1", T0)

    await store.renew_claims("w1", [event_id], T0 + 100)
    await store.renew_claims("w2", [event_id], T0 + 1)  # not its claim: no effect

    assert await claimed_ids(store, "w2", T0 + LEASE + 1) == []
    assert await claimed_ids(store, "w2", T0 + 101) == [event_id]


async def test_one_contacts_events_are_claimed_in_order(store: Store) -> None:
    first, second, other = await insert(
        store,
        make_event(email="ann@example.com"),
        make_event(email="ANN@example.com", at=T0 + 1),
        make_event(email="bob@example.com", at=T0 + 2),
    )

    assert await claimed_ids(store, "w1", T0 + 10) == [first, other]
    assert await claimed_ids(store, "w2", T0 + 10) == []

    assert await store.finish_event(first, "w1", T0 + 11)
    assert await claimed_ids(store, "w2", T0 + 12) == [second]


async def test_a_delivered_event_records_results(store: Store) -> None:
    [event_id] = await insert(store, make_event(email="ann@example.com"))
    await claimed_ids(store, "w1", T0)

    assert await store.complete_step(event_id, 0, "w1", {"contact": 11}, 11)
    assert await store.complete_step(event_id, 1, "w1", None, 99)
    await store.record_attempts(
        [AttemptRecord(event_id, 0, T0, 0.25, "contact.upsert", "PUT /contacts", 200, "ok", None)]
    )
    assert await store.finish_event(event_id, "w1", T0 + 1)

    stored = await store.get_event(event_id)
    assert stored is not None
    assert (stored.status, stored.contact_id, stored.attempts) == ("delivered", 11, 1)
    assert [(s.status, s.result) for s in stored.steps] == [
        ("done", {"contact": 11}),
        ("done", None),
    ]
    assert [(a.operation, a.status_code, a.outcome) for a in stored.history] == [
        ("contact.upsert", 200, "ok")
    ]


async def test_a_transient_failure_retries_later(store: Store) -> None:
    [event_id] = await insert(store, make_event())
    await claimed_ids(store, "w1", T0)
    assert await store.complete_step(event_id, 0, "w1", {"ok": 1}, None)

    assert await store.fail_step(
        event_id, 1, "w1", "503 from Keap", dead=False, next_attempt_at=T0 + 60, now=T0 + 1
    )

    stored = await store.get_event(event_id)
    assert stored is not None
    assert (stored.status, stored.attempts, stored.last_error) == ("pending", 1, "503 from Keap")
    assert (stored.first_failure_at, stored.next_attempt_at) == (T0 + 1, T0 + 60)
    assert [(s.status, s.attempts) for s in stored.steps] == [("done", 1), ("pending", 1)]
    assert await claimed_ids(store, "w2", T0 + 59) == []
    assert await claimed_ids(store, "w2", T0 + 60) == [event_id]


async def test_a_released_claim_is_due_again_at_the_given_time(store: Store) -> None:
    [event_id] = await insert(store, make_event())
    await claimed_ids(store, "w1", T0)

    await store.release_claim(event_id, "w1", T0 + 5)

    assert await claimed_ids(store, "w2", T0 + 4) == []
    assert await claimed_ids(store, "w2", T0 + 5) == [event_id]


async def test_concurrent_workers_never_claim_the_same_event(
    store: Store, open_another_store: StoreFactory
) -> None:
    await store.insert_events([make_event(email=f"c{i}@example.com") for i in range(50)])
    other_replica = await open_another_store()

    async def work(worker_store: Store, worker: str) -> list[str]:
        mine: list[str] = []
        while batch := await claimed_ids(worker_store, worker, T0 + 1, limit=3):
            mine += batch
            await asyncio.sleep(0)
        return mine

    # two workers per replica: SQLite's writer then claims for both in one transaction
    claims = await asyncio.gather(
        work(store, "w1"), work(store, "w2"), work(other_replica, "w3"), work(other_replica, "w4")
    )

    every_claim = [event_id for worker_claims in claims for event_id in worker_claims]
    assert len(every_claim) == len(set(every_claim)) == 50


# limiter ---------------------------------------------------------------------------
async def test_reserve_call_holds_every_ceiling(store: Store) -> None:
    ceilings = [(3, 1.0), (5, 10.0)]
    for offset in (0.0, 0.1, 0.2):
        assert await store.reserve_call(T0 + offset, ceilings) == 0.0

    # the 4th waits until the oldest call leaves the 1 s window, and reserves nothing
    assert await store.reserve_call(T0 + 0.3, ceilings) == pytest.approx(0.7)
    assert await store.reserve_call(T0 + 1.0, ceilings) == 0.0
    assert await store.reserve_call(T0 + 1.1, ceilings) == 0.0
    # five calls within 10 s: the next waits for the first to leave that window
    assert await store.reserve_call(T0 + 5.0, ceilings) == pytest.approx(5.0)


async def test_replicas_reserving_together_share_one_ceiling(
    store: Store, open_another_store: StoreFactory
) -> None:
    other_replica = await open_another_store()
    replicas = [store, other_replica] * 6

    waits = await asyncio.gather(*(r.reserve_call(T0, [(3, 1.0)]) for r in replicas))

    assert sorted(waits) == [0.0] * 3 + [pytest.approx(1.0)] * 9


async def test_not_before_delays_every_call_and_only_moves_forward(store: Store) -> None:
    await store.set_not_before(T0 + 5)
    await store.set_not_before(T0 + 2)

    assert await store.reserve_call(T0, [(100, 1.0)]) == pytest.approx(5.0)
    assert await store.reserve_call(T0 + 5, [(100, 1.0)]) == 0.0


# oauth -----------------------------------------------------------------------------
async def test_oauth_token_is_saved_by_compare_and_swap(store: Store) -> None:
    first = StoredToken("refresh-1", "access-1", T0 + 3600, "seed", stored_at=T0)
    second = StoredToken("refresh-2", "access-2", T0 + 7200, "seed", stored_at=T0 + 60)
    assert await store.load_oauth_token() is None

    assert await store.save_oauth_token(first, previous_refresh_token=None)
    assert not await store.save_oauth_token(second, previous_refresh_token=None)
    assert not await store.save_oauth_token(second, previous_refresh_token="refresh-0")
    assert await store.load_oauth_token() == first

    assert await store.save_oauth_token(second, previous_refresh_token="refresh-1")
    assert await store.load_oauth_token() == second


async def test_a_token_saved_without_its_time_is_stamped_when_stored(store: Store) -> None:
    before = time.time()
    token = StoredToken("refresh-1", "access-1", T0 + 3600, "seed")
    assert await store.save_oauth_token(token, previous_refresh_token=None)
    loaded = await store.load_oauth_token()
    assert loaded is not None
    assert loaded.stored_at is not None
    assert before - 1 <= loaded.stored_at <= time.time() + 1  # the refresh token's age starts
    assert dataclasses.replace(loaded, stored_at=None) == token


# operator --------------------------------------------------------------------------
async def test_list_events_filters_and_pages_newest_first(store: Store) -> None:
    ids = await insert(
        store,
        *(make_event(email="ann@example.com", at=T0 + i) for i in range(5)),
        make_event(email="bob@example.com", at=T0 + 5, source="woo"),
        make_event(at=T0 + 6, status="ignored"),
    )

    page = await store.list_events(EventFilter(), 3, None)
    assert [e.id for e in page] == ids[6:3:-1]
    assert page[0].payload is None  # listings leave the payload out
    page = await store.list_events(EventFilter(), 3, page[-1].seq)
    assert [e.id for e in page] == ids[3:0:-1]

    assert [e.id for e in await store.list_events(EventFilter(source="woo"), 10, None)] == [ids[5]]
    assert [e.id for e in await store.list_events(EventFilter(status="ignored"), 10, None)] == [
        ids[6]
    ]
    by_email = await store.list_events(EventFilter(email="ANN@example.com"), 10, None)
    assert [e.id for e in by_email] == ids[4::-1]
    since = await store.list_events(EventFilter(email="ann@example.com", since=T0 + 3), 10, None)
    assert [e.id for e in since] == [ids[4], ids[3]]


async def _dead_event_with_one_step_done(store: Store) -> str:
    [event_id] = await insert(store, make_event())
    await claimed_ids(store, "w1", T0)
    await store.complete_step(event_id, 0, "w1", {"ok": 1}, None)
    await store.fail_step(event_id, 1, "w1", "400", dead=True, next_attempt_at=None, now=T0 + 1)
    return event_id


async def test_requeue_retries_unfinished_steps_or_everything(store: Store) -> None:
    event_id = await _dead_event_with_one_step_done(store)
    assert await claimed_ids(store, "w1", T0 + 10) == []

    assert await store.requeue(event_id, from_start=False, now=T0 + 10)
    stored = await store.get_event(event_id)
    assert stored is not None
    assert stored.status == "pending"
    assert [s.status for s in stored.steps] == ["done", "pending"]
    assert [a.outcome for a in stored.history] == ["replay"]
    assert await claimed_ids(store, "w1", T0 + 10) == [event_id]

    assert await store.requeue(event_id, from_start=True, now=T0 + 20)
    stored = await store.get_event(event_id)
    assert stored is not None
    assert [s.status for s in stored.steps] == ["pending", "pending"]
    assert await claimed_ids(store, "w2", T0 + 20) == [event_id]  # requeue dropped w1's claim


async def test_requeue_matching_requeues_the_matching_events(store: Store) -> None:
    dead = [await _dead_event_with_one_step_done(store) for _ in range(2)]
    [ignored] = await insert(store, make_event(status="ignored"))

    assert await store.requeue_matching(EventFilter(status="dead"), T0 + 30) == 2
    assert not await store.requeue(ignored, from_start=True, now=T0 + 30)
    assert await store.count_by_status() == {"pending": 2, "ignored": 1}
    assert sorted(await claimed_ids(store, "w1", T0 + 30)) == sorted(dead)


async def test_requeue_matching_from_start_runs_every_step_again(store: Store) -> None:
    dead = await _dead_event_with_one_step_done(store)
    flt = EventFilter(status="dead")
    assert await store.requeue_matching(flt, T0 + 30, from_start=True) == 1
    stored = await store.get_event(dead)
    assert stored is not None
    assert [s.status for s in stored.steps] == ["pending", "pending"]


async def test_purge_removes_only_old_finished_events(store: Store) -> None:
    old_delivered, new_delivered = await insert(store, make_event(), make_event(at=T0 + 500))
    await claimed_ids(store, "w1", T0 + 500)
    await store.finish_event(old_delivered, "w1", T0 + 10)
    await store.finish_event(new_delivered, "w1", T0 + 600)
    old_ignored, old_pending = await insert(
        store, make_event(status="ignored"), make_event(at=T0 + 1)
    )
    old_dead = await _dead_event_with_one_step_done(store)

    assert await store.purge_finished(T0 + 100, 100) == 2

    for gone in (old_delivered, old_ignored):
        assert await store.get_event(gone) is None
    for kept in (new_delivered, old_pending, old_dead):
        assert await store.get_event(kept) is not None
    assert await store.purge_finished(T0 + 100, 100) == 0


async def test_ping_answers(store: Store) -> None:
    await store.ping()


# PostgreSQL only -------------------------------------------------------------------
async def test_replicas_starting_together_migrate_once(postgres_schema_url: str) -> None:
    replicas = [open_store(postgres_schema_url, pool_size=2) for _ in range(3)]
    try:
        await asyncio.gather(*(replica.open() for replica in replicas))
        assert await replicas[0].count_by_status() == {}
    finally:
        for replica in replicas:
            await replica.close()

    with psycopg.connect(postgres_schema_url) as conn:
        rows = conn.execute(
            "SELECT version, COUNT(*) FROM schema_migrations GROUP BY version ORDER BY version"
        ).fetchall()
    assert rows == [(version, 1) for version, _, _ in MIGRATIONS]


@pytest.mark.parametrize("scheme", ["postgres://", "postgresql+psycopg://"])
async def test_postgres_url_spellings_are_accepted(postgres_schema_url: str, scheme: str) -> None:
    store = open_store(scheme + postgres_schema_url.split("://", 1)[1], pool_size=1)
    await store.open()
    try:
        await store.ping()
    finally:
        await store.close()


async def test_an_unreachable_postgres_is_unavailable_without_its_password() -> None:
    store = open_store("postgresql://relay:s3cr%40t-pw@127.0.0.1:1/relay", pool_size=1)
    try:
        with pytest.raises(StoreUnavailable) as raised:
            await store.open()
    finally:
        await store.close()
    assert "127.0.0.1:1/relay" in str(raised.value)
    assert "s3cr" not in str(raised.value)
    with pytest.raises(StoreUnavailable):
        await store.ping()
