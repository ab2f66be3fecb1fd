"""The dashboard's pages as an operator sees them: the status header, filters and paging
of the event table, one event's page, and everything escaped."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from app.store.base import Store
from tests.admin.conftest import HTML, insert, kill, login, new_event


@pytest.fixture
async def signed_in(admin: httpx.AsyncClient) -> httpx.AsyncClient:
    await login(admin)
    return admin


def rows(page: str) -> list[str]:
    return re.findall(r'data-testid="event-row" data-event-id="([^"]+)"', page)


def stat(page: str, name: str) -> str:
    match = re.search(
        rf'data-testid="stat-{name}">\s*<div class="label">[^<]*</div>\s*'
        r'<div class="value">([^<]*)<',
        page,
    )
    assert match, name
    return match.group(1)


async def test_status_header_counts_the_queue(signed_in: httpx.AsyncClient, store: Store) -> None:
    now = time.time() - 100
    ids = await insert(
        store, *(new_event(received_at=now + n, email=f"h{n}@x.io") for n in range(4))
    )
    await insert(store, new_event(received_at=now + 10, status="ignored"))
    await kill(store, ids[0], done_steps=1)
    signed_in.app.state.metrics.keap_quota_available.labels("quota").set(29_118)  # type: ignore[attr-defined]

    page = (await signed_in.get("/admin/")).text
    assert stat(page, "queue") == "3"
    assert stat(page, "dead") == "1"
    assert stat(page, "delivered") == "0"
    assert stat(page, "ignored") == "1"
    assert stat(page, "quota") == "29118"
    assert 'data-testid="keap-auth" data-status="skipped"' in page  # dry run, no worker


async def test_table_shows_each_event_with_its_steps_and_error(
    signed_in: httpx.AsyncClient, store: Store
) -> None:
    [event_id] = await insert(
        store, new_event(received_at=time.time() - 60, email="Lee@Example.com")
    )
    await kill(store, event_id, done_steps=3)
    page = (await signed_in.get("/admin/")).text
    row = page[page.index(f'data-event-id="{event_id}"') :]
    row = row[: row.index("</tr>")]
    assert "Lee@Example.com" in row
    assert "orders/paid" in row
    assert ">shop<" in row
    assert 'data-testid="status-badge" data-status="dead"' in row
    assert "3/4 done" in row
    assert "[InvalidParameter] tag 102 does not exist" in row
    assert f'href="/admin/events/{event_id}/view"' in row


async def test_filters_and_paging(signed_in: httpx.AsyncClient, store: Store) -> None:
    start = time.time() - 1000
    ids = await insert(
        store,
        *(
            new_event(
                received_at=start + n,
                email=f"p{n}@x.io",
                source="woo" if n % 2 else "shop",
                status="ignored" if n % 3 == 0 else "pending",
            )
            for n in range(130)
        ),
    )
    newest_first = list(reversed(ids))

    first = (await signed_in.get("/admin/")).text
    assert rows(first) == newest_first[:50]
    older = re.search(r'href="(/admin/\?cursor=[^"]+)" data-testid="next-page"', first)
    assert older
    second = (await signed_in.get(older.group(1))).text
    assert rows(second) == newest_first[50:100]
    assert 'data-testid="first-page"' in second

    woo_pending = [i for n, i in reversed(list(enumerate(ids))) if n % 2 and n % 3]
    page = (await signed_in.get("/admin/?status=pending&source=woo&email=")).text
    assert rows(page) == woo_pending[:50]
    assert len(woo_pending) < 50
    assert '<option value="woo" selected>' in page
    assert 'data-testid="next-page"' not in page

    one = (await signed_in.get("/admin/?email=P7@X.IO")).text
    assert rows(one) == [ids[7]]

    none = (await signed_in.get("/admin/?source=nowhere")).text
    assert 'data-testid="no-events"' in none


async def test_bad_filter_values_show_an_error_on_the_page(
    signed_in: httpx.AsyncClient,
) -> None:
    for query in ("status=lost", "cursor=garbage"):
        response = await signed_in.get(f"/admin/?{query}")
        assert response.status_code == 400
        assert 'data-testid="error"' in response.text


async def test_event_page_shows_payload_steps_and_history_escaped(
    signed_in: httpx.AsyncClient, store: Store
) -> None:
    payload = {"note": "<script>alert('x')</script>", "customer": {"email": "m@x.io"}}
    [event_id] = await insert(
        store,
        new_event(
            received_at=time.time() - 60,
            email="m@x.io",
            payload=payload,
            event_type="<img src=x onerror=alert(1)>",
        ),
    )
    await kill(store, event_id, done_steps=1, error="<b>bad</b> tag")

    response = await signed_in.get(f"/admin/events/{event_id}/view")
    assert response.status_code == 200
    page = response.text
    assert "<script>" not in page
    assert "<img src=x" not in page
    assert "<b>bad</b>" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert "&lt;b&gt;bad&lt;/b&gt; tag" in page
    payload_block = page[page.index('data-testid="payload"') :]
    assert "\n  &#34;customer&#34;: {\n    &#34;email&#34;: &#34;m@x.io&#34;" in payload_block
    assert len(re.findall(r'data-testid="step-row"', page)) == 4
    assert page.count('data-testid="step-status" data-status="done"') == 1
    assert page.count('data-testid="step-status" data-status="failed"') == 1
    assert len(re.findall(r'data-testid="history-row"', page)) == 1
    assert "POST /v1/contacts/4242/tags" in page


async def test_ignored_event_page_offers_only_the_re_plan_button(
    signed_in: httpx.AsyncClient, store: Store
) -> None:
    """It has no steps to finish or repeat; a re-plan gives it some once a route takes it
    (pressed in tests/admin/test_replay_ignored.py)."""
    [event_id] = await insert(store, new_event(received_at=time.time(), status="ignored"))
    page = (await signed_in.get(f"/admin/events/{event_id}/view")).text
    assert re.findall(r'data-testid="(replay-[a-z-]+)"', page) == ["replay-replanned"]
    assert "none matched" in page


async def test_unknown_event_page_is_404(signed_in: httpx.AsyncClient) -> None:
    browser = await signed_in.get("/admin/events/evt_NOPE/view", headers=HTML)
    assert browser.status_code == 404
    assert browser.headers["content-type"].startswith("text/html")
    assert "no event has the id" in browser.text
    script = await signed_in.get("/admin/events/evt_NOPE/view")
    assert script.status_code == 404
    assert script.headers["content-type"] == "application/problem+json"


async def test_bare_admin_path_leads_to_the_dashboard(signed_in: httpx.AsyncClient) -> None:
    response = await signed_in.get("/admin")
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/"


async def test_signed_in_browser_skips_the_login_form(signed_in: httpx.AsyncClient) -> None:
    response = await signed_in.get("/admin/login?next=/admin/%3Fstatus%3Ddead")
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/?status=dead"
