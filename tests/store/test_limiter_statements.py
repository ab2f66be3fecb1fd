"""A reservation is one read and two writes: each statement is a round trip, and the lane's
thread must win the GIL back from the worker's event loop after each, which made slots
late with one worker at OAuth ceilings (docs/performance.md, "Register")."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from app.delivery.gate import ceilings_for
from app.store.dialect import SQLITE
from app.store.migrations import migrate_sqlite
from app.store.queries.limiter import reserve_call
from tests.store.test_store_contract import T0

OAUTH = ceilings_for(25, 1500, 150_000)


def test_a_reservation_reads_once_and_writes_twice(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "relay.db", isolation_level=None)
    conn.row_factory = sqlite3.Row
    migrate_sqlite(conn)
    at = float(int(T0)) + 0.25  # (a moment at which the limiter does not prune)
    assert int(at * 1000) % 97
    assert int((at + 1) * 1000) % 97
    assert reserve_call(conn, SQLITE, at, OAUTH) == 0.0  # the day's first: starts its counter

    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    assert reserve_call(conn, SQLITE, at + 1, OAUTH) == 0.0
    assert [text.split()[0] for text in statements] == ["SELECT", "INSERT", "UPDATE"]

    statements.clear()
    assert reserve_call(conn, SQLITE, at + 1, OAUTH) > 0  # the spacing: refused, read only
    assert [text.split()[0] for text in statements] == ["SELECT"]
