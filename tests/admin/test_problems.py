"""Open problems on the dashboard: dead events grouped by source, route and reason, each
with a "replay these" button that replays that group and no other."""

from __future__ import annotations

import html
import re
import time

import httpx

from app.store.base import Store
from tests.admin.conftest import csrf_from, insert, kill, login, new_event

NO_TAG = "tags: [InvalidParameter] tag 102 does not exist"
NO_SET = "action_set: [RecordNotFound] Record not found for Id:42"


def problem_rows(page: str) -> list[tuple[str, str, str]]:
    """(count, source, reason) of each open problem, in page order."""
    rows = re.findall(
        r'data-testid="problem-row" data-source="([^"]+)">\s*'
        r'<td class="nowrap" data-testid="problem-count">(\d+)</td>.*?'
        r'data-testid="problem-reason">([^<]*)<',
        page,
        re.S,
    )
    return [(count, source, html.unescape(reason)) for source, count, reason in rows]


async def test_dead_events_are_grouped_above_the_list_and_one_group_is_replayed(
    admin: httpx.AsyncClient, store: Store
) -> None:
    now = time.time() - 100
    shop = await insert(store, *(new_event(received_at=now + n) for n in range(3)))
    woo = await insert(store, new_event(received_at=now + 5, source="woo"))
    for event_id in shop[:2] + woo:
        await kill(store, event_id, done_steps=1, error=NO_TAG)
    await kill(store, shop[2], done_steps=0, error=NO_SET)
    await login(admin)

    page = (await admin.get("/admin/")).text
    assert problem_rows(page) == [  # the largest first, then the most recent
        ("2", "shop", NO_TAG),
        ("1", "shop", NO_SET),
        ("1", "woo", NO_TAG),
    ]
    assert page.index('data-testid="problems"') < page.index('data-testid="events"')

    replay = await admin.post(
        "/admin/view/replay",
        data={
            "csrf": csrf_from(page),
            "source": "shop",
            "routes": '["paid-order"]',
            "reason": NO_TAG,
        },
    )
    assert replay.status_code == 303
    assert "n=2" in replay.headers["location"]
    statuses = {e: (await store.get_event(e)).status for e in shop + woo}  # type: ignore[union-attr]
    assert statuses == {shop[0]: "pending", shop[1]: "pending", shop[2]: "dead", woo[0]: "dead"}
    page = (await admin.get("/admin/")).text
    assert problem_rows(page) == [("1", "shop", NO_SET), ("1", "woo", NO_TAG)]


async def test_replay_these_needs_the_dashboards_csrf_token(
    admin: httpx.AsyncClient, store: Store
) -> None:
    [event_id] = await insert(store, new_event(received_at=time.time() - 10))
    await kill(store, event_id, done_steps=1, error=NO_TAG)
    await login(admin)
    form = {"source": "shop", "routes": '["paid-order"]', "reason": NO_TAG}
    refused = await admin.post("/admin/view/replay", data={**form, "csrf": "0" * 64})
    assert refused.status_code == 403
    assert (await store.get_event(event_id)).status == "dead"  # type: ignore[union-attr]
