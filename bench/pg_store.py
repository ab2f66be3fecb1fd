"""PostgreSQL's ingest path alone: the store's ``insert_events`` under concurrent requests.

``python -m bench.pg_store`` sends N one-event requests from 32 concurrent tasks (as wrk
-c32 does through the server) straight into the store, and prints the CPU each row cost
this process (the event loop, where the batches are built and sent) and PostgreSQL's
processes, and the wall time a row: the median of 3 runs, each on a fresh schema. It
leaves out HTTP, so a change to the insert path shows above the host's noise, which
``python -m bench --only ingest`` cannot always resolve. To compare two trees, run it
in each (``PYTHONPATH=<tree> python -m bench.pg_store``), alternating.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from itertools import count

from app.domain.events import NewEvent, PlannedStep
from app.store.ids import new_event_id
from app.store.postgres_db import PostgresDatabase
from app.store.store import SQLStore
from bench import cpu
from bench.databases import DEFAULT_POSTGRES_URL, fresh_postgres_schema

CONCURRENCY = 32
WARM_UP = 200
RUNS = 3
_numbers = count()


def event() -> NewEvent:
    """One WooCommerce-like order, as ingest stores it: payload, headers, one route."""
    n = next(_numbers)
    at = time.time()
    email = f"buyer{n}@example.com"
    return NewEvent(
        id=new_event_id(at),
        source="woocommerce",
        event_type="order.created",
        external_id=str(n),
        dedupe_key=f"woocommerce:{n}:{os.getpid()}",
        status="pending",
        received_at=at,
        payload={
            "id": n,
            "status": "processing",
            "billing": {"email": email, "first_name": "Ann", "last_name": "Lee"},
            "line_items": [{"sku": "SKU-1", "quantity": 1, "total": "49.00"}],
        },
        headers={"content-type": "application/json", "x-wc-webhook-topic": "order.created"},
        routes=["woocommerce-purchase"],
        contact_email=email,
        last_error=None,
        steps=[PlannedStep("woocommerce-purchase", "tags.add", {"tag_ids": [12]})],
    )


async def one_run(url: str, rows: int) -> dict[str, float]:
    store = SQLStore(PostgresDatabase(url, pool_size=4))
    await store.open()
    try:
        events = iter([event() for _ in range(WARM_UP + rows)])
        for _ in range(WARM_UP):  # the ingest pool opens, the statement is prepared
            await store.insert_events([next(events)])

        async def requests() -> None:
            for e in events:
                await store.insert_events([e])

        before = cpu.sample(os.getpid(), postgres=True)
        started = time.perf_counter()
        await asyncio.gather(*(requests() for _ in range(CONCURRENCY)))
        wall = time.perf_counter() - started
        figures = cpu.since(before, rows)
    finally:
        await store.close()
    return {
        "process_us": figures["cpu_event_loop_us"] + figures["cpu_other_threads_us"],
        "postgres_us": figures["cpu_postgres_us"],
        "wall_us": round(wall / rows * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--rows", type=int, default=24_000)
    args = parser.parse_args()
    runs = []
    for _ in range(RUNS):
        with fresh_postgres_schema(args.postgres_url) as url:
            runs.append(asyncio.run(one_run(url, args.rows)))
    for key in ("process_us", "postgres_us", "wall_us"):
        values = ", ".join(f"{run[key]:.1f}" for run in runs)
        print(f"{key:12s} median {statistics.median(r[key] for r in runs):6.1f}  ({values})")


if __name__ == "__main__":
    main()
