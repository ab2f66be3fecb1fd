"""`relay keap login` end to end: the real command, the fake's authorize page and token
endpoint over HTTP, a real database — and then a relay that delivers with what it stored."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from app.config.models import RelayConfig
from app.store.factory import open_store
from fake_keap.server import FakeKeapServer
from tests.delivery.conftest import running_relay
from tests.delivery.test_oauth_e2e import CLIENT_ID, CLIENT_SECRET

REGISTERED = "https://shop.example/keap/callback"


def start_login(
    cwd: Path, fake: FakeKeapServer, database_url: str, *args: str
) -> subprocess.Popen[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    env = {
        **clean,
        "RELAY_DATABASE_URL": database_url,
        "RELAY_CONFIG": str(cwd / "absent.yaml"),
        "RELAY_KEAP_CLIENT_ID": CLIENT_ID,
        "RELAY_KEAP_CLIENT_SECRET": CLIENT_SECRET,
        "RELAY_KEAP_AUTHORIZE_URL": fake.authorize_url,
        "RELAY_KEAP_TOKEN_URL": fake.token_url,
        "RELAY_KEAP_BASE_URL": fake.base_url,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "keap", "login", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def authorize_url_printed(process: subprocess.Popen[str], fake: FakeKeapServer) -> str:
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith(fake.authorize_url):
            return line.strip()
    raise AssertionError(f"no authorize URL printed; stderr: {process.stderr.read()}")  # type: ignore[union-attr]


def finish(process: subprocess.Popen[str]) -> tuple[str, str]:
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return out, err


async def stored_refresh_token(database_url: str) -> str | None:
    store = open_store(database_url, pool_size=1)
    await store.open()
    try:
        token = await store.load_oauth_token()
    finally:
        await store.close()
    return token.refresh_token if token is not None else None


async def assert_a_relay_delivers_with_it(
    database_url: str, fake: FakeKeapServer, config: RelayConfig
) -> None:
    """No RELAY_KEAP_REFRESH_TOKEN at all: the relay uses what the login stored."""
    settings = {"keap_api_key": None, "keap_client_id": CLIENT_ID}
    async with running_relay(
        database_url, fake, config, keap_client_secret=CLIENT_SECRET, **settings
    ) as relay:
        event = await relay.post({"event": "tag", "id": "after-login", "email": "l@x.test"})
        await relay.wait_for(event, "delivered")


@pytest.fixture
def oauth_fake(fake_keap: FakeKeapServer) -> FakeKeapServer:
    fake_keap.state.set_oauth(CLIENT_ID, CLIENT_SECRET, "an-old-token")
    return fake_keap


async def test_login_with_a_local_listener_stores_a_working_token(
    tmp_path: Path, database_url: str, oauth_fake: FakeKeapServer, delivery_config: RelayConfig
) -> None:
    process = start_login(tmp_path, oauth_fake, database_url, "--listen", "0", "--timeout", "30")
    url = await asyncio.to_thread(authorize_url_printed, process, oauth_fake)
    assert "response_type=code" in url
    assert "scope=full" in url
    assert "redirect_uri=http%3A%2F%2F127.0.0.1%3A" in url
    # The browser: Keap's page redirects to the listener, which answers the person.
    page = await asyncio.to_thread(httpx.get, url, follow_redirects=True)
    assert page.status_code == 200
    assert "close this tab" in page.text
    out, err = await asyncio.to_thread(finish, process)

    live = oauth_fake.state.refresh_token
    assert live is not None
    assert live != "an-old-token"
    assert await stored_refresh_token(database_url) == live
    assert "Authorised as owner@fake-keap.test" in out
    assert live not in out + err
    assert CLIENT_SECRET not in out + err
    await assert_a_relay_delivers_with_it(database_url, oauth_fake, delivery_config)


async def test_login_with_a_pasted_redirect_stores_a_working_token(
    tmp_path: Path, database_url: str, oauth_fake: FakeKeapServer, delivery_config: RelayConfig
) -> None:
    process = start_login(tmp_path, oauth_fake, database_url, "--redirect-uri", REGISTERED)
    url = await asyncio.to_thread(authorize_url_printed, process, oauth_fake)
    page = await asyncio.to_thread(httpx.get, url, follow_redirects=False)
    landed = page.headers["location"]
    assert landed.startswith(REGISTERED + "?code=")
    assert process.stdin is not None
    process.stdin.write(landed + "\n")
    process.stdin.flush()
    out, _ = await asyncio.to_thread(finish, process)

    assert await stored_refresh_token(database_url) == oauth_fake.state.refresh_token
    assert "stored in the database" in out
    await assert_a_relay_delivers_with_it(database_url, oauth_fake, delivery_config)


async def test_a_refused_code_stores_nothing_and_says_why(
    tmp_path: Path, database_url: str, oauth_fake: FakeKeapServer
) -> None:
    process = start_login(tmp_path, oauth_fake, database_url, "--redirect-uri", REGISTERED)
    await asyncio.to_thread(authorize_url_printed, process, oauth_fake)
    _, err = await asyncio.to_thread(process.communicate, "not-a-real-code\n", 60)

    assert process.returncode == 2
    assert "Invalid authorization code" in err
    assert await stored_refresh_token(database_url) is None


def test_an_unreachable_database_stops_the_login_before_keap_is_asked(
    tmp_path: Path, oauth_fake: FakeKeapServer
) -> None:
    """The code is single-use: the database is opened before the person is sent to Keap."""
    unreachable = "postgresql://postgres@127.0.0.1:1/test"
    process = start_login(tmp_path, oauth_fake, unreachable, "--redirect-uri", REGISTERED)
    out, err = process.communicate("some-code\n", timeout=60)

    assert process.returncode == 2
    assert "cannot open RELAY_DATABASE_URL" in err
    assert "nothing was sent" in err
    assert oauth_fake.authorize_url not in out
    assert oauth_fake.state.request_count("oauth.refresh") == 0
