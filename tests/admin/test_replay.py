"""Re-queueing: one event (its unfinished steps, or from the start) and many at once, from
the JSON API and from the dashboard's buttons."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
import pytest

from app.domain.events import EventRecord
from app.store.base import Store
from tests.admin.conftest import BEARER, csrf_from, insert, kill, login, new_event


async def event(store: Store, event_id: str) -> EventRecord:
    record = await store.get_event(event_id)
    assert record is not None
    return record


@pytest.fixture
async def dead_after_two(store: Store) -> str:
    """A dead event whose upsert and first tag step succeeded and whose second tag failed."""
    [event_id] = await insert(store, new_event(received_at=time.time() - 60, email="d@x.io"))
    await kill(store, event_id, done_steps=2)
    return event_id


async def test_replay_runs_only_the_unfinished_steps(
    admin: httpx.AsyncClient, store: Store, dead_after_two: str
) -> None:
    response = await admin.post(f"/admin/events/{dead_after_two}/replay", headers=BEARER)
    assert response.status_code == 202
    assert response.json() == {"event_id": dead_after_two, "status": "requeued"}
    record = await event(store, dead_after_two)
    assert record.status == "pending"
    assert record.next_attempt_at is not None
    assert record.next_attempt_at <= time.time()
    assert [s.status for s in record.steps] == ["done", "done", "pending", "pending"]
    assert record.history[-1].outcome == "replay"
    assert record.history[-1].request == "unfinished steps"


async def test_replay_from_start_runs_every_step(
    admin: httpx.AsyncClient, store: Store, dead_after_two: str
) -> None:
    response = await admin.post(
        f"/admin/events/{dead_after_two}/replay?from_start=true", headers=BEARER
    )
    assert response.status_code == 202
    record = await event(store, dead_after_two)
    assert record.status == "pending"
    assert [s.status for s in record.steps] == ["pending"] * 4
    assert record.history[-1].request == "from start"


async def test_replay_of_an_ignored_event_without_replan_is_a_conflict_naming_replan(
    admin: httpx.AsyncClient, store: Store
) -> None:
    """An ignored event has no plan to run: only a replay with replan can give it one
    (tests/admin/test_replay_ignored.py)."""
    [event_id] = await insert(store, new_event(received_at=time.time(), status="ignored"))
    response = await admin.post(f"/admin/events/{event_id}/replay", headers=BEARER)
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert "no plan to run" in response.json()["detail"]
    assert "replan=true" in response.json()["detail"]
    assert (await event(store, event_id)).status == "ignored"


async def test_replay_of_an_unknown_event_is_404(admin: httpx.AsyncClient) -> None:
    response = await admin.post("/admin/events/evt_NOPE/replay", headers=BEARER)
    assert response.status_code == 404


async def test_bulk_replay_counts_by_status_source_and_since(
    admin: httpx.AsyncClient, store: Store
) -> None:
    now = time.time()
    since = now - 3600
    old_shop, new_shop_1, new_shop_2, new_woo, pending_shop = await insert(
        store,
        new_event(received_at=since - 600, source="shop", email="a@x.io"),
        new_event(received_at=since + 60, source="shop", email="b@x.io"),
        new_event(received_at=since + 120, source="shop", email="c@x.io"),
        new_event(received_at=since + 180, source="woo", email="d@x.io"),
        new_event(received_at=since + 240, source="shop", email="e@x.io"),
    )
    for event_id in (old_shop, new_shop_1, new_shop_2, new_woo):
        await kill(store, event_id, done_steps=1)

    body = {
        "status": "dead",
        "source": "shop",
        "since": datetime.fromtimestamp(since, UTC).isoformat(),
    }
    response = await admin.post("/admin/replay", json=body, headers=BEARER)
    assert response.status_code == 202
    assert response.json() == {"requeued": 2}
    statuses = {
        i: (await event(store, i)).status
        for i in (old_shop, new_shop_1, new_shop_2, new_woo, pending_shop)
    }
    assert statuses == {
        old_shop: "dead",
        new_shop_1: "pending",
        new_shop_2: "pending",
        new_woo: "dead",
        pending_shop: "pending",
    }

    rest = await admin.post("/admin/replay", json={"status": "dead"}, headers=BEARER)
    assert rest.json() == {"requeued": 2}
    again = await admin.post("/admin/replay", json={"status": "dead"}, headers=BEARER)
    assert again.json() == {"requeued": 0}


async def test_bulk_replay_takes_a_naive_since_as_utc(
    admin: httpx.AsyncClient, store: Store
) -> None:
    received = time.time() - 120
    [event_id] = await insert(store, new_event(received_at=received, email="f@x.io"))
    await kill(store, event_id, done_steps=0)
    naive_after = datetime.fromtimestamp(received + 60, UTC).replace(tzinfo=None).isoformat()
    body = {"status": "dead", "since": naive_after}
    response = await admin.post("/admin/replay", json=body, headers=BEARER)
    assert response.json() == {"requeued": 0}


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b"{}",
        b'{"status": "ignored"}',
        b'{"status": "dead", "sorce": "x"}',
        b'{"status": "dead", "since": "yesterday"}',
        b'{"status": "dead", "source": 5}',
    ],
)
async def test_bulk_replay_refuses_a_bad_body(admin: httpx.AsyncClient, body: bytes) -> None:
    response = await admin.post(
        "/admin/replay",
        content=body,
        headers={**BEARER, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"]


async def test_dashboard_replay_buttons_requeue_and_say_so(
    admin: httpx.AsyncClient, store: Store, dead_after_two: str
) -> None:
    await login(admin)
    view = f"/admin/events/{dead_after_two}/view"
    page = await admin.get(view)
    assert 'data-testid="replay-unfinished"' in page.text
    assert 'data-testid="replay-from-start"' in page.text

    response = await admin.post(
        f"{view}/replay", data={"csrf": csrf_from(page.text), "from_start": "false"}
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"{view}?flash=requeued"
    assert [s.status for s in (await event(store, dead_after_two)).steps] == [
        "done",
        "done",
        "pending",
        "pending",
    ]
    after = await admin.get(response.headers["location"])
    assert "the event&#39;s unfinished steps will run again" in after.text
    assert 'data-status="pending"' in after.text


async def test_dashboard_replays_every_dead_event_of_a_source(
    admin: httpx.AsyncClient, store: Store
) -> None:
    ids = await insert(
        store,
        *(
            new_event(
                received_at=time.time() - 60 + n,
                email=f"g{n}@x.io",
                source="shop" if n < 3 else "woo",
            )
            for n in range(4)
        ),
    )
    for event_id in ids:
        await kill(store, event_id, done_steps=0)
    await login(admin)
    page = await admin.get("/admin/?status=dead&source=shop")
    assert 'data-testid="replay-all-dead"' in page.text
    response = await admin.post(
        "/admin/view/replay", data={"csrf": csrf_from(page.text), "source": "shop"}
    )
    assert response.status_code == 303
    after = await admin.get(response.headers["location"])
    assert "Re-queued 3 events." in after.text
    assert [(await event(store, i)).status for i in ids] == ["pending"] * 3 + ["dead"]


class WakeCounter:
    """Stands in for an in-process worker: counts the nudges a replay gives it."""

    def __init__(self) -> None:
        self.wakes = 0

    def wake(self) -> None:
        self.wakes += 1


async def test_replay_wakes_the_worker_in_this_process(
    admin: httpx.AsyncClient, store: Store, dead_after_two: str
) -> None:
    worker = WakeCounter()
    admin.app.state.runtime.worker = worker  # type: ignore[attr-defined]
    await admin.post(f"/admin/events/{dead_after_two}/replay", headers=BEARER)
    assert worker.wakes == 1
    await admin.post("/admin/replay", json={"status": "dead"}, headers=BEARER)
    assert worker.wakes == 1  # nothing was re-queued: no need to wake it
