"""Micro-benchmarks behind the per-webhook rows of docs/performance.md, "Register".

``python -m bench.micro`` prints, for each hand-rolled part, its cost next to what it
replaced or the library that would replace it: microseconds of CPU per item, for the
whole process (every thread: they share the GIL with the event loop), the median of 5.
These are alternatives in one process, so load on the machine shifts them alike.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import queue
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import orjson

from app.domain.quota import UTC_DAY_WINDOW, utc_day_start
from app.observability import logging as relay_logging
from app.store.dialect import SQLITE
from app.store.ids import new_event_id
from app.store.migrations import migrate_sqlite
from app.store.queries import limiter

RUNS = 5
LOG_LINES = 20_000
IDS = 20_000
RESERVATIONS = 200
CALLS_TODAY = 140_000  # near an OAuth app's 150 000 a day
FIELDS = {
    "source": "shop",
    "event_id": "evt_06H20NVXV26BZJVNWR24QPHG4G",
    "outcome": "accepted",
    "status": "pending",
    "routes": ["orders"],
}
PAYLOAD = {
    "id": 820982911946154508,
    "financial_status": "paid",
    "customer": {"email": "jane@example.com", "first_name": "Jane", "last_name": "Doe"},
    "line_items": [{"sku": f"SKU-{i}", "quantity": 1, "price": "19.90"} for i in range(5)],
}


def per_item(work: Callable[[], None], items: int) -> float:
    """Median µs of CPU (all threads) per item over RUNS runs of ``work``."""
    spent = []
    for _ in range(RUNS):
        started = time.process_time()
        work()
        spent.append((time.process_time() - started) / items * 1e6)
    return statistics.median(spent)


def _id_variants() -> dict[str, Callable[[], None]]:
    now = time.time()

    def hand_rolled() -> None:
        for _ in range(IDS):
            new_event_id(now)

    def urandom_each() -> None:  # the encoding with one os.urandom call per id
        for _ in range(IDS):
            int.from_bytes(os.urandom(10), "big")
            new_event_id(now)

    variants = {"hand-rolled (random pool)": hand_rolled, "+ os.urandom per id": urandom_each}
    try:
        from ulid import PureRandomPolicy, ULIDGenerator
    except ImportError:
        return variants
    # Pure random: python-ulid's default (monotonic) policy makes the next id of the same
    # millisecond the previous one plus one, which a sender could guess.
    generator = ULIDGenerator(policy=PureRandomPolicy())

    def library() -> None:
        for _ in range(IDS):
            "evt_" + str(generator.generate(now))

    variants["python-ulid (pure random)"] = library
    return variants


def _reset_logging() -> None:
    root = logging.getLogger()
    for handler in root.handlers:
        handler.close()
    root.handlers[:] = []
    relay_logging._state.line_handler = None


def _log_variants(out: Any) -> dict[str, Callable[[], None]]:
    log = logging.getLogger("relay.ingest")

    def batched_line() -> None:  # production: log_line, the relay's batching handler alone
        relay_logging.configure_logging("json", stream=out, batched=True)
        for _ in range(LOG_LINES):
            relay_logging.log_line(log, "webhook received", FIELDS)
        logging.getLogger().handlers[0].flush()

    def batched_record() -> None:  # the same handler, through a LogRecord
        relay_logging.configure_logging("json", stream=out, batched=True)
        for _ in range(LOG_LINES):
            log.info("webhook received", extra=FIELDS)
        logging.getLogger().handlers[0].flush()

    def unbatched() -> None:  # a write and a flush per line
        relay_logging.configure_logging("json", stream=out, batched=False)
        for _ in range(LOG_LINES):
            log.info("webhook received", extra=FIELDS)

    def stdlib_queue() -> None:  # logging.handlers.QueueHandler + QueueListener
        relay_logging.configure_logging("json", stream=out, batched=False)
        root = logging.getLogger()
        writer = root.handlers[0]
        lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        handler = logging.handlers.QueueHandler(lines)
        handler.setFormatter(writer.formatter)  # formats in the caller, as QueueHandler does
        handler.filters[:], writer.filters[:] = writer.filters[:], []
        writer.setFormatter(logging.Formatter("%(message)s"))
        root.handlers[:] = [handler]
        listener = logging.handlers.QueueListener(lines, writer)
        listener.start()
        for _ in range(LOG_LINES):
            log.info("webhook received", extra=FIELDS)
        listener.stop()
        writer.close()
        root.handlers[:] = []

    def measured(variant: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            _reset_logging()
            variant()

        return run

    return {
        "log_line + BatchingStreamHandler": measured(batched_line),
        "logger.info + BatchingStreamHandler": measured(batched_record),
        "logger.info + StreamHandler": measured(unbatched),
        "logger.info + QueueHandler/Listener": measured(stdlib_queue),
    }


def _json_variants() -> dict[str, Callable[[], None]]:
    def with_orjson() -> None:
        for _ in range(IDS):
            orjson.dumps(PAYLOAD).decode()

    def with_json() -> None:
        for _ in range(IDS):
            json.dumps(PAYLOAD, ensure_ascii=False, separators=(",", ":"))

    return {"orjson.dumps": with_orjson, "json.dumps": with_json}


def _day_ceiling_variants(conn: sqlite3.Connection) -> dict[str, Callable[[], None]]:
    """A reservation late in a busy day, on SQLite: the limiter as it is (a counter a
    day, ``rate_days``) against the query it replaced (walk the day's calls)."""
    now = time.time()
    day = utc_day_start(now)
    conn.executemany(
        "INSERT INTO rate_calls (at) VALUES (?)",
        ((day + i * (now - 120 - day) / CALLS_TODAY,) for i in range(1, CALLS_TODAY + 1)),
    )
    ceilings = [(25, 1.04), (1500, 60.5), (150_000, UTC_DAY_WINDOW)]

    def counter() -> None:
        for i in range(RESERVATIONS):
            conn.execute("BEGIN IMMEDIATE")
            limiter.reserve_call(conn, SQLITE, now + i / 1000, ceilings)
            conn.execute("ROLLBACK")

    def walk() -> None:
        for _ in range(RESERVATIONS):
            conn.execute(
                "SELECT at FROM rate_calls WHERE at > ? ORDER BY at DESC LIMIT 1 OFFSET ?",
                (day, 150_000 - 1),
            ).fetchone()

    # (The day's counter was kept by rate_calls' trigger as the calls went in; each
    # measured reservation is rolled back.)
    return {
        "rate_days counter (a whole reservation)": counter,
        "walk the day's calls (that check alone)": walk,
    }


def main() -> None:
    print(f"# µs of CPU per item (all threads), median of {RUNS} runs")
    print("\n## event id (app/store/ids.py)")
    for name, work in _id_variants().items():
        print(f"{name:40s} {per_item(work, IDS):6.2f}")
    print("\n## the per-webhook log line (app/observability/logging.py), to a file")
    with tempfile.TemporaryFile("w") as out:
        root = logging.getLogger()
        kept = root.handlers[:], root.level
        try:
            for name, work in _log_variants(out).items():
                print(f"{name:40s} {per_item(work, LOG_LINES):6.2f}")
        finally:
            _reset_logging()
            root.handlers[:], level = kept
            root.setLevel(level)
    print("\n## an order's payload as JSON text (app/store/queries.py)")
    for name, work in _json_variants().items():
        print(f"{name:40s} {per_item(work, IDS):6.2f}")
    print(
        f"\n## a reservation with {CALLS_TODAY} calls made today "
        "(app/store/queries/limiter.py), SQLite"
    )
    with tempfile.TemporaryDirectory() as where:
        conn = sqlite3.connect(f"{where}/micro.db", isolation_level=None)
        conn.row_factory = sqlite3.Row
        try:
            migrate_sqlite(conn)
            for name, work in _day_ceiling_variants(conn).items():
                print(f"{name:40s} {per_item(work, RESERVATIONS):6.2f}")
        finally:
            conn.close()


if __name__ == "__main__":
    main()
