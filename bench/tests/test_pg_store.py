"""``python -m bench.pg_store``: every request of a run is a stored row, and the run
reports each figure."""

from __future__ import annotations

import asyncio

import psycopg

from bench import pg_store


def test_a_run_stores_every_request_and_reports_its_costs(postgres_schema_url: str) -> None:
    figures = asyncio.run(pg_store.one_run(postgres_schema_url, rows=96))
    assert set(figures) == {"process_us", "postgres_us", "wall_us"}
    assert figures["wall_us"] > 0
    with psycopg.connect(postgres_schema_url) as conn:
        row = conn.execute("SELECT count(*) FROM events").fetchone()
    assert row is not None
    assert row[0] == pg_store.WARM_UP + 96
