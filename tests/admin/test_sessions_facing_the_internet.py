"""Dashboard sessions facing the internet: Secure behind TLS, revoked on sign-out on every
replica (both databases), failed sign-ins rate-limited per address, a proxy's Basic auth
no obstacle, a long admin token required, and every stored event shown without a 5xx."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest

from app.admin.auth import SESSION_COOKIE
from app.admin.login_limits import MAX_FAILURES, FailedLogins
from app.admin.pages import PAYLOAD_CHARS
from app.ingest.bodies import MAX_NESTING
from app.store.base import Store
from tests.admin.conftest import ADMIN_TOKEN, BEARER, HTML, admin_client, csrf_from, insert, login
from tests.admin.conftest import new_event as admin_event

# The payload shown is cut at PAYLOAD_CHARS of JSON; HTML escaping (a quote is 5
# characters) and the rest of the page come on top.
PAGE_CAP = 6 * PAYLOAD_CHARS
PROXY = {"trusted_proxies": ["127.0.0.1"]}  # the test client's own address


@pytest.mark.parametrize(
    ("settings", "headers", "secure"),
    [
        (PROXY, {"X-Forwarded-Proto": "https"}, True),
        (PROXY, {"X-Forwarded-Proto": "http"}, False),
        ({}, {"X-Forwarded-Proto": "https"}, False),  # not from a trusted proxy: not believed
    ],
)
async def test_the_cookie_is_secure_when_the_browser_came_over_tls_through_a_trusted_proxy(
    database_url: str, settings: dict[str, list[str]], headers: dict[str, str], secure: bool
) -> None:
    async with admin_client(database_url, **settings) as client:
        response = await client.post(
            "/admin/login", data={"token": ADMIN_TOKEN, "next": "/admin/"}, headers=headers
        )
        assert response.status_code == 303
        assert ("secure" in response.headers["set-cookie"].lower()) is secure


async def test_signing_out_ends_the_session_on_the_server(database_url: str) -> None:
    async with admin_client(database_url) as browser, admin_client(database_url) as replica:
        await login(browser)
        cookie = browser.cookies[SESSION_COOKIE]
        replica.cookies.set(SESSION_COOKIE, cookie, domain="relay.local", path="/admin")
        assert (await replica.get("/admin/")).status_code == 200  # shared by both processes
        page = await browser.get("/admin/")
        assert (
            await browser.post("/admin/logout", data={"csrf": csrf_from(page.text)})
        ).status_code == 303
        # The copied cookie (what a thief would hold) no longer opens the dashboard anywhere.
        for client in (browser, replica):
            client.cookies.set(SESSION_COOKIE, cookie, domain="relay.local", path="/admin")
            response = await client.get("/admin/")
            assert response.status_code == 303
            assert response.headers["location"].startswith("/admin/login")


async def test_failed_sign_ins_are_rate_limited_per_address(database_url: str) -> None:
    async with admin_client(database_url, **PROXY) as client:
        guesser = {"X-Forwarded-For": "198.51.100.66"}
        for attempt in range(MAX_FAILURES):
            wrong = await client.post(
                "/admin/login", data={"token": f"guess-{attempt}"}, headers=guesser
            )
            assert wrong.status_code == 401
        blocked = await client.post("/admin/login", data={"token": ADMIN_TOKEN}, headers=guesser)
        assert blocked.status_code == 429
        assert int(blocked.headers["retry-after"]) > 0
        assert "198.51.100.66" in blocked.json()["detail"]
        assert "set-cookie" not in blocked.headers
        # Someone else, from another address, signs in as usual.
        other = await client.post(
            "/admin/login", data={"token": ADMIN_TOKEN}, headers={"X-Forwarded-For": "203.0.113.5"}
        )
        assert other.status_code == 303


async def test_a_proxys_basic_auth_header_does_not_lock_out_a_signed_in_browser(
    admin: httpx.AsyncClient,
) -> None:
    await login(admin)
    basic = {"Authorization": "Basic b3BlcmF0b3I6cHJveHktcGFzc3dvcmQ="}
    page = await admin.get("/admin/", headers=basic)
    assert page.status_code == 200
    assert 'data-testid="events"' in page.text
    # The JSON API still takes only the bearer token.
    assert (await admin.get("/admin/events", headers=basic)).status_code == 401


def test_a_short_admin_token_is_refused_at_start() -> None:
    env = {"PATH": "/usr/bin:/bin", "RELAY_ADMIN_TOKEN": "only-twenty-characte"}
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "RELAY_ADMIN_TOKEN: must be at least 32 characters (it is 20)" in result.stderr
    assert "only-twenty-characte" not in result.stderr + result.stdout


def _nested(levels: int) -> object:
    value: object = "bottom"
    for _ in range(levels):
        value = {"k": value}
    return value


async def test_a_deep_stored_payload_is_shown_cut_and_downloadable_whole(
    admin: httpx.AsyncClient, store: Store
) -> None:
    # Stored before ingest refused deep bodies: 900 levels, as the issue found.
    deep = _nested(900)
    [event_id] = await insert(store, admin_event(received_at=time.time() - 60, payload=deep))
    answer = await admin.get(f"/admin/events/{event_id}", headers=BEARER)
    assert answer.status_code == 200
    detail = answer.json()
    assert detail["payload_truncated"] is True
    shown = detail["payload"]
    for _ in range(MAX_NESTING):
        shown = shown["k"]
    assert isinstance(shown, str)
    assert "download the stored body" in shown

    await login(admin)
    page = await admin.get(f"/admin/events/{event_id}/view", headers=HTML)
    assert page.status_code == 200
    assert len(page.text) < PAGE_CAP
    assert 'data-testid="payload-truncated"' in page.text
    link = f"/admin/events/{event_id}/payload"
    assert f'href="{link}"' in page.text
    download = await admin.get(link)
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("application/json")
    assert "attachment" in download.headers["content-disposition"]
    assert download.text.count('{"k":') == 900


async def test_a_large_payload_page_stays_under_its_size_cap(
    admin: httpx.AsyncClient, store: Store
) -> None:
    large = {"items": [{"sku": f"SKU-{n}", "title": "x" * 200} for n in range(3000)]}
    [event_id] = await insert(store, admin_event(received_at=time.time() - 60, payload=large))
    await login(admin)
    page = await admin.get(f"/admin/events/{event_id}/view")
    assert page.status_code == 200
    assert len(page.text) < PAGE_CAP
    assert 'data-testid="payload-truncated"' in page.text
    whole = await admin.get(f"/admin/events/{event_id}/payload")
    assert json.loads(whole.text) == large


async def test_a_blocked_address_may_try_again_once_its_oldest_failure_ages_out(
    store: Store,
) -> None:
    limits = FailedLogins(store, max_failures=3, window_seconds=60)
    for now in (0.0, 1.0, 2.0):
        assert await limits.retry_after("198.51.100.1", now) == 0
        await limits.record_failure("198.51.100.1", now)
    assert await limits.retry_after("198.51.100.1", 10.0) == 50.0
    assert await limits.retry_after("203.0.113.1", 10.0) == 0  # another address is not blocked
    assert await limits.retry_after("198.51.100.1", 60.5) == 0  # the first failure aged out
    await limits.record_failure("198.51.100.1", 60.5)  # three within the last minute again
    assert await limits.retry_after("198.51.100.1", 60.5) == 0.5
    await limits.clear("198.51.100.1")  # signed in
    assert await limits.retry_after("198.51.100.1", 60.5) == 0


async def test_a_failure_forgets_every_failure_older_than_the_window(store: Store) -> None:
    """The table holds one window of failures, whatever the number of addresses."""
    limits = FailedLogins(store, max_failures=3, window_seconds=60)
    for n in range(50):
        await limits.record_failure(f"198.51.100.{n}", float(n))
    await limits.record_failure("203.0.113.1", 200.0)
    kept = await store.sign_in_failures("203.0.113.1", 0.0, 10)
    gone = [await store.sign_in_failures(f"198.51.100.{n}", 0.0, 10) for n in range(50)]
    assert kept == [200.0]
    assert not any(gone)


async def test_replicas_count_the_same_failed_sign_ins(database_url: str) -> None:
    """Two relays on one database: the failures made on one block the address on the
    other, so a guesser gets MAX_FAILURES tries however many replicas there are."""
    guesser = {"X-Forwarded-For": "198.51.100.77"}
    async with (
        admin_client(database_url, **PROXY) as first,
        admin_client(database_url, **PROXY) as second,
    ):
        for attempt in range(MAX_FAILURES):
            replica = (first, second)[attempt % 2]
            wrong = await replica.post(
                "/admin/login", data={"token": f"guess-{attempt}"}, headers=guesser
            )
            assert wrong.status_code == 401
        for replica in (first, second):
            blocked = await replica.post(
                "/admin/login", data={"token": ADMIN_TOKEN}, headers=guesser
            )
            assert blocked.status_code == 429
