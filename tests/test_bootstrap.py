"""app/bootstrap.py: the one start-up of serve, worker and the commands that open the store —
it opens the store, makes the HTTP client with Keap's timeouts only when asked for it, closes
both in reverse order whatever happens, and names an unusable database."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import httpx
import pytest

from app import bootstrap as bootstrap_module
from app.bootstrap import DatabaseUnavailable, bootstrap
from app.keap.exchange import KEAP_TIMEOUT
from app.store.base import Store
from tests.conftest import make_settings

APP = Path(__file__).resolve().parents[1] / "app"


@pytest.fixture
def closes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What bootstrap closed, in order: "store" (and its pool size) as each store closes."""
    closed: list[str] = []
    real_open_store = bootstrap_module.open_store

    def open_store(url: str, *, pool_size: int, ingest: bool = False) -> Store:
        store = real_open_store(url, pool_size=pool_size, ingest=ingest)
        real_close = store.close

        async def close() -> None:
            closed.append(f"store (pool {pool_size})")
            await real_close()

        store.close = close  # type: ignore[method-assign]
        return store

    monkeypatch.setattr(bootstrap_module, "open_store", open_store)
    return closed


async def test_the_store_opens_and_the_client_comes_with_keaps_timeouts(
    database_url: str, closes: list[str]
) -> None:
    settings = make_settings(database_url, database_pool_size=3)
    async with bootstrap(settings) as opened:
        assert await opened.store.count_by_status() == {}  # open, migrated, empty
        assert opened._http is None  # nothing called out yet: no client was made
        http = opened.http
        assert opened.http is http  # one client per process
        assert http.timeout == KEAP_TIMEOUT
        assert not http.is_closed
    assert http.is_closed
    assert closes == ["store (pool 3)"]


async def test_a_one_shot_command_asks_for_one_connection(
    sqlite_url: str, closes: list[str]
) -> None:
    async with bootstrap(make_settings(sqlite_url), pool_size=1):
        pass
    assert closes == ["store (pool 1)"]


async def test_everything_closes_when_the_block_fails(sqlite_url: str, closes: list[str]) -> None:
    opened_http: list[httpx.AsyncClient] = []

    async def command() -> None:
        async with bootstrap(make_settings(sqlite_url)) as opened:
            opened_http.append(opened.http)
            raise RuntimeError("the command failed")

    with pytest.raises(RuntimeError, match="the command failed"):
        await command()
    http = opened_http[0]
    assert http.is_closed
    assert closes == ["store (pool 4)"]  # make_settings: RELAY_DATABASE_POOL_SIZE=4


@pytest.mark.parametrize(
    ("url", "cause"),
    [
        ("mysql://localhost/relay", ValueError),  # no such store
        ("postgresql://127.0.0.1:1/none?connect_timeout=1", Exception),  # nothing listens
    ],
)
async def test_a_database_that_cannot_be_opened_is_named_with_its_cause(
    url: str, cause: type[Exception], closes: list[str]
) -> None:
    with pytest.raises(DatabaseUnavailable) as raised:
        async with bootstrap(make_settings(url), pool_size=1):
            pytest.fail("the block ran without a database")
    assert isinstance(raised.value.cause, cause)
    assert str(raised.value) == str(raised.value.cause)
    assert closes == []  # nothing was opened, so nothing is closed


def _client_constructions(path: Path) -> list[int]:
    """Lines of ``httpx.AsyncClient(...)`` calls in one file."""
    lines: list[int] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            func: Any = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name == "AsyncClient":
                lines.append(node.lineno)
    return lines


def test_the_relay_builds_its_http_client_in_one_place() -> None:
    found = {
        str(path.relative_to(APP.parent)): lines
        for path in sorted(APP.rglob("*.py"))
        if (lines := _client_constructions(path))
    }
    assert list(found) == ["app/bootstrap.py"]
    assert len(found["app/bootstrap.py"]) == 1
