"""Run ``relay`` commands the way a user does: in a directory holding relay.yaml, with the
secrets in the environment, and nothing else of the developer's RELAY_ settings."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.cli import main
from app.domain.events import EventFilter, NewEvent
from app.store.factory import open_store
from tests.admin.conftest import insert, kill
from tests.conftest import CONFIG_YAML, SECRETS


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


Cli = Callable[..., Result]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("RELAY_"):
            monkeypatch.delenv(name)
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "relay.yaml").write_text(CONFIG_YAML)
    monkeypatch.setenv("RELAY_CONFIG", str(tmp_path / "relay.yaml"))
    monkeypatch.setenv("RELAY_DATABASE_URL", database_url(tmp_path))
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    return tmp_path


@pytest.fixture
def cli(workdir: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    """``cli(*argv)``: run the command in-process; its exit code, stdout and stderr."""

    def run(*argv: str) -> Result:
        capsys.readouterr()
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse: --help and usage errors
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def database_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'relay.db'}"


def seed(
    url: str,
    events: list[NewEvent],
    dead: dict[str, int] | None = None,
    errors: dict[str, str] | None = None,
) -> list[str]:
    """Store ``events``; then kill each id in ``dead`` after that many successful steps,
    with its text from ``errors`` (or a Keap fault about a missing tag)."""

    async def run() -> list[str]:
        store = open_store(url)
        await store.open()
        try:
            ids = await insert(store, *events)
            for event_id, done_steps in (dead or {}).items():
                error = (errors or {}).get(event_id)
                extra = {"error": error} if error else {}
                await kill(store, event_id, done_steps=done_steps, **extra)
            return ids
        finally:
            await store.close()

    return asyncio.run(run())


def statuses(url: str) -> dict[str, str]:
    async def run() -> dict[str, str]:
        store = open_store(url)
        await store.open()
        try:
            records = await store.list_events(EventFilter(), 100, None)
            return {record.id: record.status for record in records}
        finally:
            await store.close()

    return asyncio.run(run())
