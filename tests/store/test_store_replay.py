"""The store's side of the sunset and of the rewriting replays, on both databases: a step
given up while the event goes on, dry-run steps sent again, re-planned events."""

from __future__ import annotations

import time

from app.domain.events import EventFilter, EventRecord, PlannedStep, Replanned, StepRecord
from app.store.base import Store
from app.store.queries import replay
from tests.admin.conftest import WORKER, insert, new_event

UPSERT = PlannedStep("r", "contact.upsert", {"email": "ada@example.com"})
ACTION_SET = PlannedStep("r", "action_set", {"contact_step": 0, "id": 42})
TAGS = PlannedStep("r", "tags", {"contact_step": 0, "ids": [101]})


async def claimed(store: Store, event_id: str) -> EventRecord:
    [record] = await store.claim_due_events(WORKER, time.time(), 30, 10)
    assert record.id == event_id
    return record


async def test_a_given_up_step_lets_the_event_run_on_and_end_dead(store: Store) -> None:
    [event_id] = await insert(
        store, new_event(received_at=time.time() - 1, steps=[UPSERT, ACTION_SET, TAGS])
    )
    await claimed(store, event_id)
    assert await store.complete_step(event_id, 0, WORKER, {"contact_id": 7}, 7)
    assert await store.give_up_step(event_id, 1, WORKER, "action_set: retired")
    running = await store.get_event(event_id)
    assert running is not None
    assert running.status == "pending"
    assert running.last_error == "action_set: retired"
    assert await store.complete_step(event_id, 2, WORKER, {"contact_id": 7}, None)
    assert await store.finish_event(
        event_id, WORKER, time.time(), dead_reason="action_set: retired"
    )
    event = await store.get_event(event_id)
    assert event is not None
    assert (event.status, event.last_error) == ("dead", "action_set: retired")
    assert [s.status for s in event.steps] == ["done", "failed", "done"]
    assert await store.claim_due_events(WORKER, time.time(), 30, 10) == []


async def test_dry_run_steps_go_back_to_pending_and_the_stand_in_contact_id_goes(
    store: Store,
) -> None:
    [event_id] = await insert(store, new_event(received_at=time.time() - 1, steps=[UPSERT, TAGS]))
    await claimed(store, event_id)
    assert await store.complete_step(event_id, 0, WORKER, {"contact_id": 99, "dry_run": True}, 99)
    assert await store.complete_step(event_id, 1, WORKER, {"contact_id": 99, "dry_run": True}, None)
    assert await store.finish_event(event_id, WORKER, time.time())
    assert await store.requeue(event_id, from_start=False, now=time.time(), dry_run_steps=True)
    event = await store.get_event(event_id)
    assert event is not None
    assert event.status == "pending"
    assert event.contact_id is None
    assert [(s.status, s.result) for s in event.steps] == [("pending", None), ("pending", None)]


async def test_a_real_step_is_never_reset_by_a_dry_run_replay(store: Store) -> None:
    [event_id] = await insert(store, new_event(received_at=time.time() - 1, steps=[UPSERT, TAGS]))
    await claimed(store, event_id)
    assert await store.complete_step(event_id, 0, WORKER, {"contact_id": 7}, 7)
    assert await store.complete_step(event_id, 1, WORKER, {"contact_id": 7}, None)
    assert await store.finish_event(event_id, WORKER, time.time())
    flt_all = EventFilter()
    assert await store.requeue_matching(flt_all, time.time(), dry_run_steps=True) == 0
    event = await store.get_event(event_id)
    assert event is not None
    assert event.status == "delivered"
    assert event.contact_id == 7


async def test_a_rewriting_replay_leaves_an_event_a_worker_holds(store: Store) -> None:
    [event_id] = await insert(store, new_event(received_at=time.time() - 1, steps=[UPSERT, TAGS]))
    await claimed(store, event_id)

    def replan(record: EventRecord) -> Replanned:
        raise AssertionError("a held event must not be re-planned")

    assert not await store.requeue(event_id, from_start=False, now=time.time(), replan=replan)
    assert not await store.requeue(event_id, from_start=False, now=time.time(), dry_run_steps=True)


async def test_replan_writes_the_new_plan_routes_and_contact(store: Store) -> None:
    [event_id] = await insert(
        store,
        new_event(received_at=time.time() - 1, email="ada@example.com", steps=[UPSERT, TAGS]),
    )
    await claimed(store, event_id)
    assert await store.complete_step(event_id, 0, WORKER, {"contact_id": 7}, 7)
    assert await store.fail_step(
        event_id, 1, WORKER, "tags: bad", dead=True, next_attempt_at=None, now=time.time()
    )
    seen: list[EventRecord] = []

    def replan(record: EventRecord) -> Replanned:
        seen.append(record)
        email = {"email": "Bob@Example.com"}
        upsert = StepRecord(0, "new", "contact.upsert", email, "pending", 0, None, None)
        goal = StepRecord(1, "new", "goal", {"contact_step": 0}, "pending", 0, None, None)
        return Replanned(routes=["new"], contact_email="Bob@Example.com", steps=[upsert, goal])

    assert await store.requeue(event_id, from_start=False, now=time.time(), replan=replan)
    assert seen[0].payload is not None  # the replanner sees what was received
    event = await store.get_event(event_id)
    assert event is not None
    assert (event.status, event.routes, event.contact_email) == (
        "pending",
        ["new"],
        "Bob@Example.com",
    )
    assert event.contact_id is None  # no upsert of the new plan has run yet
    assert [(s.action, s.status) for s in event.steps] == [
        ("contact.upsert", "pending"),
        ("goal", "pending"),
    ]
    # The contact key moved with the email: Bob's later events now wait behind this one.
    listed = await store.list_events(
        EventFilter(email="bob@example.com"),
        10,
        None,
    )
    assert [e.id for e in listed] == [event_id]


async def test_a_bulk_replay_larger_than_one_batch_requeues_every_event(store: Store) -> None:
    now = time.time()
    count = replay.REQUEUE_BATCH * 2 + 3
    events = [new_event(received_at=now - 10 + i / 1000) for i in range(count)]
    ids = await insert(store, *events)
    assert await store.requeue_matching(EventFilter(status="pending"), now) == count
    for event_id in (ids[0], ids[-1]):
        event = await store.get_event(event_id)
        assert event is not None
        assert [a.outcome for a in event.history] == ["replay"]
