"""The day ceiling's counter (rate_days, kept by a trigger on rate_calls), on both
databases: the check reads one counter, so a reservation late in a busy day costs what
the first did (docs/performance.md,
"Measured: OAuth scale", stop 26: walking the day's calls took 37 ms at 140 000)."""

from __future__ import annotations

from typing import Any

import pytest

from app.delivery.budget import read_budget
from app.domain.quota import QUOTA_RESET_MARGIN, UTC_DAY_WINDOW, utc_day_start
from app.store import migrations
from app.store.base import Store
from app.store.dialect import POSTGRES, SQLITE
from tests.store.conftest import StoreFactory
from tests.store.test_store_contract import T0

DAY = utc_day_start(T0)
MIDNIGHT = DAY + UTC_DAY_WINDOW  # the next 00:00 UTC


async def execute(store: Store, text: str, *params: Any) -> list[tuple[Any, ...]]:
    dialect = SQLITE if store.dialect == "sqlite" else POSTGRES

    def run(conn: Any) -> list[Any]:
        cursor = conn.execute(dialect.sql(text), params)
        return list(cursor.fetchall()) if text.startswith("SELECT") else []

    rows = await store.db.write(run)  # type: ignore[attr-defined]
    return [tuple(row.values()) if isinstance(row, dict) else tuple(row) for row in rows]


async def calls_made(store: Store, *moments: float) -> None:
    """Calls in rate_calls that the limiter did not reserve: those of a relay from before
    the counter existed, or, in the second test, ones its counter never saw."""
    for at in moments:
        await execute(store, "INSERT INTO rate_calls (at) VALUES (?)", at)


async def test_every_call_counts_whoever_made_it(store: Store) -> None:
    """A replica still on an older version during a rolling upgrade only inserts into
    rate_calls: the trigger counts its calls too."""
    await calls_made(store, DAY - 10, DAY + 1, DAY + 2, DAY + 3)  # one of them yesterday
    day = [(4, UTC_DAY_WINDOW)]

    assert await store.reserve_call(DAY + 100, day) == 0.0  # the day's 4th call
    assert await store.reserve_call(DAY + 101, day) == pytest.approx(
        MIDNIGHT + QUOTA_RESET_MARGIN - (DAY + 101)
    )
    assert await execute(store, "SELECT day, calls FROM rate_days ORDER BY day") == [
        (DAY - UTC_DAY_WINDOW, 1),
        (DAY, 4),
    ]


async def test_the_days_check_reads_its_counter_not_every_call_of_the_day(store: Store) -> None:
    day = [(3, UTC_DAY_WINDOW)]
    assert await store.reserve_call(DAY + 100, day) == 0.0
    await execute(store, "UPDATE rate_days SET calls = 3 WHERE day = ?", DAY)

    # One call in rate_calls today, but the counter says the day is spent.
    assert await store.reserve_call(DAY + 300, day) > 0
    await execute(store, "UPDATE rate_days SET calls = 1 WHERE day = ?", DAY)
    assert await store.reserve_call(DAY + 301, day) == 0.0
    assert await execute(store, "SELECT calls FROM rate_days WHERE day = ?", DAY) == [(2,)]


async def test_the_upgrade_recounts_the_day_its_old_counter_missed(
    open_another_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migration 8 on a database whose counter (7's, kept by the limiter alone) missed
    the calls of replicas on an older version: the day is counted again from its calls."""
    with monkeypatch.context() as before_8:
        before_8.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:7])
        old = await open_another_store()
        await execute(old, "INSERT INTO rate_days (day, calls) VALUES (?, 1)", DAY)
        await calls_made(old, DAY + 1, DAY + 2, DAY + 3)  # the counter saw one of them
        await old.close()

    store = await open_another_store()  # migrates to 8
    assert await execute(store, "SELECT day, calls FROM rate_days") == [(DAY, 3)]
    assert await store.reserve_call(DAY + 100, [(4, UTC_DAY_WINDOW)]) == 0.0
    assert await store.reserve_call(DAY + 101, [(4, UTC_DAY_WINDOW)]) > 0


async def test_the_counters_of_past_days_are_pruned(store: Store) -> None:
    minute = [(100, 60.0)]
    assert await store.reserve_call(DAY + 100, minute) == 0.0  # counted without a day ceiling
    # A reservation two days on whose millisecond prunes (the limiter prunes 1 in 97).
    later = next(
        at
        for at in (MIDNIGHT + UTC_DAY_WINDOW + 100 + ms / 1000 for ms in range(200))
        if int(at * 1000) % 97 == 0
    )
    assert await store.reserve_call(later, minute) == 0.0

    assert await execute(store, "SELECT day, calls FROM rate_days") == [(utc_day_start(later), 1)]


async def test_the_budget_counts_the_day_as_the_gate_does(store: Store) -> None:
    """The dashboard, /metrics and the quota alerts read the day from the gate's counter:
    the same figure the gate enforces, and one row to read late in a busy day."""
    assert (await read_budget(store, (5, 240, 3), DAY + 50)).day.used == 0
    await calls_made(store, DAY + 1, DAY + 2)
    assert await store.reserve_call(DAY + 100, [(3, UTC_DAY_WINDOW)]) == 0.0  # the 3rd
    await calls_made(store, DAY + 260)
    await execute(store, "UPDATE rate_days SET calls = calls + 5 WHERE day = ?", DAY)

    budget = await read_budget(store, (5, 240, 3), DAY + 300)
    assert [w.used for w in budget.windows] == [0, 1, 9]  # the counter, not the 4 rows
