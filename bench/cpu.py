"""The CPU an ingest round spent per accepted webhook, read from Linux's /proc: the
target's event loop (its main thread) apart from its other threads (the SQLite writer,
the log flusher) and its child processes (the SQLite ingest writer), PostgreSQL's server
processes, wrk, and how busy the machine was.

A ratio to the bare endpoint moves with the host: the same tree gave SQLite 0.92 on one
2-core host and 0.78 on another (bench/results/ingest-2026-11-28-intel.md). These
figures say where the difference went: into the relay's own work on the event loop, or
into the work beside it (the writer, the database, wrk, the kernel) that shares the
machine's cores with the loop. On a system without /proc they are left out.
"""

from __future__ import annotations

import os
import resource
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class CpuSample:
    """Cumulative CPU seconds at one moment."""

    pid: int  # the target process
    process: float  # the whole target process, every thread (ended ones too)
    main_thread: float  # its main thread: the event loop
    postgres: float | None  # every PostgreSQL server process, when asked for
    child_processes: float  # the target's children (relay serve on SQLite: its writer)
    children: float  # this process's waited-for children: wrk
    machine_busy: float  # every core, not idle
    machine_total: float


def available() -> bool:
    return (PROC / "stat").exists() and (PROC / "self" / "task").exists()


def sample(pid: int, *, postgres: bool = False) -> CpuSample:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy, total = _machine()
    return CpuSample(
        pid=pid,
        process=_stat_seconds(PROC / str(pid) / "stat"),
        main_thread=_stat_seconds(PROC / str(pid) / "task" / str(pid) / "stat"),
        postgres=_postgres_seconds() if postgres else None,
        child_processes=_children_seconds(pid),
        children=usage.ru_utime + usage.ru_stime,
        machine_busy=busy,
        machine_total=total,
    )


def since(before: CpuSample, accepted: int) -> dict[str, float]:
    """``per_webhook`` from ``before`` to now, for the same process (and PostgreSQL if
    ``before`` counted it)."""
    after = sample(before.pid, postgres=before.postgres is not None)
    return per_webhook(before, after, accepted)


def per_webhook(before: CpuSample, after: CpuSample, accepted: int) -> dict[str, float]:
    """µs of CPU per accepted webhook between two samples, by where it was spent, and
    the share of the machine's cores that were busy (with anything) meanwhile."""
    if accepted <= 0:
        return {}

    def micros(seconds: float) -> float:
        return round(seconds / accepted * 1e6, 1)

    loop = after.main_thread - before.main_thread
    figures = {
        "cpu_event_loop_us": micros(loop),
        "cpu_other_threads_us": micros(after.process - before.process - loop),
        "cpu_child_processes_us": micros(after.child_processes - before.child_processes),
        "cpu_wrk_us": micros(after.children - before.children),
    }
    if before.postgres is not None and after.postgres is not None:
        figures["cpu_postgres_us"] = micros(after.postgres - before.postgres)
    elapsed = after.machine_total - before.machine_total
    if elapsed > 0:
        busy = (after.machine_busy - before.machine_busy) / elapsed
        figures["machine_busy_percent"] = round(busy * 100, 1)
    return figures


def medians(rounds: list[dict[str, Any]]) -> dict[str, float]:
    """The median of each CPU figure over the rounds that have it."""
    keys = sorted({k for r in rounds for k in r if k.startswith(("cpu_", "machine_busy"))})
    return {key: round(statistics.median(r[key] for r in rounds if key in r), 1) for key in keys}


def _stat_seconds(path: Path) -> float:
    """utime + stime of a /proc stat file (a process's counts its ended threads too)."""
    text = path.read_text()
    fields = text[text.rindex(")") + 2 :].split()  # the name may hold spaces
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _children_seconds(pid: int) -> float:
    """CPU of the process's live children (one that ends between two samples takes its
    share with it; the relay's ingest writer lives as long as the relay)."""
    total = 0.0
    try:
        tasks = list((PROC / str(pid) / "task").iterdir())
    except OSError:
        return 0.0
    for task in tasks:
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            try:
                total += _stat_seconds(PROC / child / "stat")
            except (OSError, ValueError, IndexError):
                continue
    return total


def _postgres_seconds() -> float:
    """CPU of every process named postgres (the server's backends and its own workers).
    A backend that exits between two samples takes its share with it; the relay's pool
    keeps its connections for the round."""
    total = 0.0
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            total += _stat_seconds(entry / "stat")
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile, or not ours to read
    return total


def _machine() -> tuple[float, float]:
    """(busy, total) seconds over every core since boot, from /proc/stat's cpu line;
    idle and iowait are not busy, steal is (the host took the core)."""
    first = (PROC / "stat").read_text().split("\n", 1)[0].split()
    values = [int(v) for v in first[1:9]]  # user nice system idle iowait irq softirq steal
    total = sum(values)
    idle = values[3] + values[4]
    return (total - idle) / _TICKS, total / _TICKS
