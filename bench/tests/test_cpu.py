"""The ingest benchmark's CPU accounting (bench/cpu.py), read from the real /proc: a
thread's work lands under "other threads", not the event loop; PostgreSQL's work is
seen in its own processes; and the per-webhook arithmetic and its report line up."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import psycopg
import pytest

from bench import cpu
from bench.report import _cpu_lines

pytestmark = pytest.mark.skipif(not cpu.available(), reason="needs Linux's /proc")


def _spin(seconds: float) -> None:
    """Burn ``seconds`` of this thread's CPU."""
    started = time.thread_time()
    while time.thread_time() - started < seconds:
        sum(range(1000))


def test_a_threads_work_is_told_apart_from_the_event_loops() -> None:
    before = cpu.sample(os.getpid())
    worker = threading.Thread(target=_spin, args=(0.3,))
    worker.start()
    worker.join()  # the main thread waits, spending next to nothing
    after = cpu.sample(os.getpid())
    figures = cpu.per_webhook(before, after, accepted=1_000)
    # 0.3 s over 1 000 webhooks is 300 µs each; the clock ticks in 10 ms steps.
    assert figures["cpu_other_threads_us"] >= 250
    assert figures["cpu_event_loop_us"] < 100
    assert 0 < figures["machine_busy_percent"] <= 100
    # The thread has ended: its CPU still counts (the process's total keeps it).
    assert after.process - before.process >= 0.25


def test_a_child_processs_work_is_counted_apart() -> None:
    """As the SQLite ingest writer's: a live child of the target, read while it lives."""
    spin = (
        "import sys, time\nt = time.process_time()\n"
        "while time.process_time() - t < 0.3: pass\nprint(flush=True)\nsys.stdin.read()"
    )
    before = cpu.sample(os.getpid())
    child = subprocess.Popen(
        [sys.executable, "-c", spin], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        child.stdout.readline()  # it has spun
        figures = cpu.since(before, accepted=1_000)
    finally:
        child.communicate()
    assert figures["cpu_child_processes_us"] >= 250
    assert figures["cpu_event_loop_us"] < 100
    assert figures["cpu_wrk_us"] < 100  # not yet waited for: no "wrk" share either


def test_postgresql_work_is_counted_in_its_own_processes(postgres_schema_url: str) -> None:
    before = cpu.sample(os.getpid(), postgres=True)
    with psycopg.connect(postgres_schema_url) as conn:
        conn.execute("SELECT count(*) FROM generate_series(1, 6000000)").fetchone()
        # Read while the backend still lives: one that exits takes its CPU with it.
        figures = cpu.since(before, accepted=1)  # as the bench reads a round
    assert figures["cpu_postgres_us"] >= 50_000  # at least 50 ms: the server counted
    assert figures["cpu_event_loop_us"] < figures["cpu_postgres_us"]


def test_figures_per_webhook_and_their_table() -> None:
    before = cpu.CpuSample(1, 10.0, 8.0, None, 0.5, 1.0, 100.0, 200.0)
    after = cpu.CpuSample(1, 12.0, 9.5, None, 0.8, 1.2, 103.0, 204.0)
    figures = cpu.per_webhook(before, after, accepted=10_000)
    assert figures == {
        "cpu_event_loop_us": 150.0,  # 1.5 s / 10 000
        "cpu_other_threads_us": 50.0,  # (2.0 - 1.5) s / 10 000
        "cpu_child_processes_us": 30.0,
        "cpu_wrk_us": 20.0,
        "machine_busy_percent": 75.0,  # 3 of 4 core-seconds
    }
    assert cpu.per_webhook(before, after, accepted=0) == {}
    rounds = [figures, {**figures, "cpu_event_loop_us": 170.0}, {"accepted": 1}]
    assert cpu.medians(rounds)["cpu_event_loop_us"] == 160.0
    table = _cpu_lines({"relay-sqlite": cpu.medians(rounds), "bare": {"p50_ms": 1.0}})
    assert "| relay-sqlite | 160 | 50 | 30 | n/a | 20 | 75% |" in table
    assert "| bare | n/a | n/a | n/a | n/a | n/a | n/a |" in table
    assert _cpu_lines({"bare": {"p50_ms": 1.0}}) == []  # no /proc: no table
