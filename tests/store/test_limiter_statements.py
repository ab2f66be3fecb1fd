"""A reservation is one read and one write: each statement is a round trip, and the lane's
thread must win the GIL back from the worker's event loop after each, which made slots
late with one worker at OAuth ceilings (docs/performance.md, "Register")."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from app.delivery.gate import ceilings_for
from app.store.dialect import SQLITE
from app.store.migrations import migrate_sqlite
from app.store.queries.limiter import reserve_call
from tests.store.test_store_contract import T0

OAUTH = ceilings_for(25, 1500, 150_000)


class CountingConnection:
    """The connection, with the text of every statement it was given."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.statements: list[str] = []

    def execute(self, text: str, params: Any = ()) -> sqlite3.Cursor:
        self.statements.append(text.split()[0])
        return self.conn.execute(text, params)


def test_a_reservation_reads_once_and_writes_once(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "relay.db", isolation_level=None)
    conn.row_factory = sqlite3.Row
    migrate_sqlite(conn)
    at = float(int(T0)) + 0.25  # (a moment at which the limiter does not prune)
    assert int(at * 1000) % 97

    counting = CountingConnection(conn)
    assert reserve_call(counting, SQLITE, at, OAUTH) == 0.0
    assert counting.statements == ["SELECT", "INSERT"]

    counting.statements.clear()
    assert reserve_call(counting, SQLITE, at, OAUTH) > 0
    assert counting.statements == ["SELECT"]  # the spacing: refused, read only
    assert conn.execute("SELECT calls FROM rate_days").fetchall()[0][0] == 1
