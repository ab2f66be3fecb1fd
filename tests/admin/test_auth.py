"""Who gets in: 404 with no admin token configured, the bearer token for the JSON API, a
login form and session cookie for browsers, CSRF on the dashboard's forms, no secret out."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from app.admin.auth import SESSION_COOKIE, new_session_value, session_key
from app.store.base import Store
from tests.admin.conftest import (
    ADMIN_TOKEN,
    BEARER,
    admin_client,
    csrf_from,
    database_url,
    insert,
    kill,
    login,
    new_event,
)

ADMIN_PATHS = [
    ("GET", "/admin/events"),
    ("GET", "/admin/events/evt_X"),
    ("POST", "/admin/events/evt_X/replay"),
    ("POST", "/admin/replay"),
    ("GET", "/admin"),
    ("GET", "/admin/"),
    ("GET", "/admin/login"),
    ("POST", "/admin/login"),
    ("POST", "/admin/logout"),
    ("GET", "/admin/events/evt_X/view"),
    ("POST", "/admin/events/evt_X/view/replay"),
]


@pytest.mark.parametrize("token", [None, ""])
async def test_every_admin_path_is_404_without_a_configured_token(
    tmp_path: Path, token: str | None
) -> None:
    async with admin_client(database_url(tmp_path), token=token) as client:
        for method, path in ADMIN_PATHS:
            response = await client.request(method, path, headers=BEARER)
            assert response.status_code == 404, (method, path)
            assert response.headers["content-type"] == "application/problem+json"


async def test_json_api_needs_the_bearer_token(admin: httpx.AsyncClient) -> None:
    missing = await admin.get("/admin/events")
    wrong = await admin.get("/admin/events", headers={"Authorization": "Bearer nope"})
    basic = await admin.get("/admin/events", headers={"Authorization": f"Basic {ADMIN_TOKEN}"})
    for response in (missing, wrong, basic):
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["status"] == 401
    right = await admin.get("/admin/events", headers=BEARER)
    assert right.status_code == 200
    assert right.json() == {"items": [], "next_cursor": None}


async def test_json_api_does_not_take_the_browser_cookie(admin: httpx.AsyncClient) -> None:
    await login(admin)
    assert (await admin.get("/admin/events")).status_code == 401


async def test_browser_signs_in_once_and_then_sees_the_dashboard(
    admin: httpx.AsyncClient,
) -> None:
    first = await admin.get("/admin/?status=dead")
    assert first.status_code == 303
    assert first.headers["location"] == "/admin/login?next=/admin/%3Fstatus%3Ddead"

    form = await admin.get(first.headers["location"])
    assert form.status_code == 200
    assert 'name="token"' in form.text

    refused = await admin.post("/admin/login", data={"token": "guess", "next": "/admin/"})
    assert refused.status_code == 401
    assert "set-cookie" not in refused.headers
    assert "not the admin token" in refused.text

    signed_in = await login(admin, "/admin/?status=dead")
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/admin/?status=dead"
    cookie = signed_in.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/admin" in cookie
    assert "secure" not in cookie  # plain http: a Secure cookie would never come back

    page = await admin.get("/admin/?status=dead")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'data-testid="status-header"' in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


async def test_session_cookie_is_secure_over_https(tmp_path: Path) -> None:
    async with admin_client(database_url(tmp_path), base_url="https://relay") as client:
        response = await login(client)
        assert "secure" in response.headers["set-cookie"].lower()


async def test_dashboard_accepts_the_bearer_header_for_scripts(admin: httpx.AsyncClient) -> None:
    page = await admin.get("/admin/", headers=BEARER)
    assert page.status_code == 200
    assert 'data-testid="events"' in page.text
    wrong = await admin.get("/admin/", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401


@pytest.mark.parametrize(
    "cookie",
    [
        "not-a-session",
        "1700000000.deadbeef",
        new_session_value(b"some-other-token-of-at-least-32-chars"),
        # Signed with the right token, but never issued (not in the database).
        new_session_value(ADMIN_TOKEN.encode()),
    ],
)
async def test_forged_foreign_or_unknown_sessions_are_sent_to_login(
    admin: httpx.AsyncClient, cookie: str
) -> None:
    admin.cookies.set(SESSION_COOKIE, cookie, domain="relay.local", path="/admin")
    response = await admin.get("/admin/")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/admin/login")


async def test_an_expired_session_is_sent_to_login(admin: httpx.AsyncClient, store: Store) -> None:
    cookie = new_session_value(ADMIN_TOKEN.encode())
    key = session_key(ADMIN_TOKEN.encode(), cookie)
    assert key is not None
    await store.create_admin_session(key, time.time() - 8 * 86400, time.time() - 60)
    admin.cookies.set(SESSION_COOKIE, cookie, domain="relay.local", path="/admin")
    assert (await admin.get("/admin/")).status_code == 303


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/admin/",
        "/elsewhere",
        "/admin//evil.example",
        "/admin/\\evil.example",
    ],
)
async def test_login_never_redirects_outside_the_dashboard(
    admin: httpx.AsyncClient, target: str
) -> None:
    response = await login(admin, target)
    assert response.headers["location"] == "/admin/"


async def test_dashboard_posts_without_the_csrf_token_are_refused(
    admin: httpx.AsyncClient, store: Store
) -> None:
    [event_id] = await insert(store, new_event(received_at=time.time() - 60, email="a@x.io"))
    await kill(store, event_id, done_steps=1)
    await login(admin)
    page = await admin.get(f"/admin/events/{event_id}/view")
    token = csrf_from(page.text)

    replay = f"/admin/events/{event_id}/view/replay"
    for form in ({"from_start": "true"}, {"from_start": "true", "csrf": "0" * 64}):
        refused = await admin.post(replay, data=form)
        assert refused.status_code == 403
    assert (await admin.post("/admin/logout", data={})).status_code == 403
    assert (await store.get_event(event_id)).status == "dead"  # type: ignore[union-attr]

    accepted = await admin.post(replay, data={"from_start": "true", "csrf": token})
    assert accepted.status_code == 303
    assert (await store.get_event(event_id)).status == "pending"  # type: ignore[union-attr]


async def test_logout_clears_the_cookie(admin: httpx.AsyncClient) -> None:
    await login(admin)
    page = await admin.get("/admin/")
    response = await admin.post("/admin/logout", data={"csrf": csrf_from(page.text)})
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/login?flash=signed-out"
    assert SESSION_COOKIE in response.headers["set-cookie"]
    assert "max-age=0" in response.headers["set-cookie"].lower()
    assert (await admin.get("/admin/")).status_code == 303
    goodbye = await admin.get("/admin/login?flash=signed-out")
    assert "You are signed out." in goodbye.text


async def test_the_admin_token_never_appears_in_an_answer(
    admin: httpx.AsyncClient, store: Store
) -> None:
    [event_id] = await insert(store, new_event(received_at=time.time() - 60, email="b@x.io"))
    await kill(store, event_id, done_steps=0)
    answers = [await login(admin)]
    page = await admin.get("/admin/")
    answers.append(page)
    answers.append(await admin.get(f"/admin/events/{event_id}/view"))
    answers.append(await admin.post("/admin/login", data={"token": "wrong"}))
    answers.append(await admin.get("/admin/events", headers=BEARER))
    answers.append(await admin.get(f"/admin/events/{event_id}", headers=BEARER))
    answers.append(await admin.post(f"/admin/events/{event_id}/replay", headers=BEARER))
    answers.append(await admin.get("/admin/events", headers={"Authorization": "Bearer x"}))
    answers.append(await admin.post("/admin/logout", data={"csrf": csrf_from(page.text)}))
    for response in answers:
        assert ADMIN_TOKEN not in response.text
        for cookie in response.headers.get_list("set-cookie"):
            assert ADMIN_TOKEN not in cookie


async def test_bearer_scripts_need_no_csrf_token_on_dashboard_forms(
    admin: httpx.AsyncClient, store: Store
) -> None:
    [event_id] = await insert(store, new_event(received_at=time.time() - 60, email="c@x.io"))
    await kill(store, event_id, done_steps=0)
    response = await admin.post(
        f"/admin/events/{event_id}/view/replay", data={"from_start": "false"}, headers=BEARER
    )
    assert response.status_code == 303
    assert (await store.get_event(event_id)).status == "pending"  # type: ignore[union-attr]
