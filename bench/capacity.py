"""How much work the machine's cores give when all are busy at once, measured before the
ingest rounds: a fixed CPU-bound job, timed alone and then one copy per core at once.

Why: the relay-over-bare ratios depend on it. The bare endpoint is one busy thread (and
wrk beside it); the relay adds its SQLite writer thread or PostgreSQL's processes. On a
host whose cores are independent, that work runs beside the event loop for free; on one
whose virtual cores share a physical core (or a host quota), it slows the loop's core
and the ratios fall with the same code. Stop 24's Intel host and stop 25's AMD host
gave about 1.3 cores' work from 2; the figures in docs/performance.md say which ratios
each host gave.

Each copy runs in its own Python process (no GIL between them). Every copy starts its
interpreter, says it is ready, and begins its loop when all are ready; the figure for
"at once" is the wall time from the first loop's start to the last one's end: the guest's
CPU clock cannot tell a shared physical core from a free one, wall time for a fixed
amount of work can. (A copy that started late under load used to look like a free core:
measured alone, each copy's own time shrinks when the copies barely overlap.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

# A loop of plain bytecode: no allocation, no system calls, the same work every time.
_JOB = """
import os, sys, time
cpus = sys.argv[2]
if cpus:
    os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})
loops = int(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()  # go
began = time.time()
x = 0
for i in range(loops):
    x += i
print(began, time.time())
"""

LOOPS = 4_000_000  # about 0.3 s alone on the 2-core hosts of stops 24 and 25
REPEATS = 3


def run_jobs(copies: int, loops: int = LOOPS, cpus: set[int] | None = None) -> float:
    """Run ``copies`` jobs at one moment: the wall seconds from the first loop's start to
    the last one's end. ``cpus`` pins every copy to those CPUs (the tests use it to share
    one core)."""
    pinned = ",".join(str(c) for c in sorted(cpus)) if cpus else ""
    jobs = [
        subprocess.Popen(
            [sys.executable, "-c", _JOB, str(loops), pinned],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(copies)
    ]
    try:
        for job in jobs:  # every interpreter is up before any loop starts
            assert job.stdout is not None
            if job.stdout.readline().strip() != "ready":
                raise RuntimeError("the capacity job did not start")
        for job in jobs:
            assert job.stdin is not None
            job.stdin.write("go\n")
            job.stdin.flush()
        spans = []
        for job in jobs:
            out, _ = job.communicate(timeout=120)
            if job.returncode != 0:
                raise RuntimeError(f"the capacity job failed (exit {job.returncode})")
            began, ended = (float(x) for x in out.split())
            spans.append((began, ended))
    finally:
        for job in jobs:
            if job.poll() is None:
                job.kill()
                job.wait()
    return wall_span(spans)


def wall_span(spans: list[tuple[float, float]]) -> float:
    """Seconds from the first loop's start to the last one's end (not the sum of the
    loops' times: copies that take turns on one core overlap in time)."""
    return max(end for _, end in spans) - min(start for start, _ in spans)


def measure(
    copies: int | None = None,
    loops: int = LOOPS,
    repeats: int = REPEATS,
    cpus: set[int] | None = None,
) -> dict[str, Any]:
    """The job alone and ``copies`` (default: one per core) at once, alternating,
    ``repeats`` times; the fastest of each (a fixed amount of work: anything else that
    ran meanwhile only slowed it)."""
    copies = copies or os.cpu_count() or 1
    alone: list[float] = []
    together: list[float] = []
    for _ in range(repeats):
        alone.append(run_jobs(1, loops, cpus))
        together.append(run_jobs(copies, loops, cpus))
    return summarise(alone, together, copies)


def summarise(alone: list[float], together: list[float], copies: int) -> dict[str, Any]:
    """``effective_cores``: how many copies' worth of the job the machine did per unit
    of time with ``copies`` running, against one running alone (``copies`` when each
    runs as fast as alone; 1.0 when they only take turns)."""
    alone_s = min(alone)
    together_s = min(together)
    return {
        "copies": copies,
        "alone_seconds": round(alone_s, 4),
        "together_seconds": round(together_s, 4),
        "effective_cores": round(copies * alone_s / together_s, 2),
    }


def describe(capacity: dict[str, Any]) -> str:
    """The line ``results.md`` gives it."""
    slower = capacity["together_seconds"] / capacity["alone_seconds"]
    return (
        f"- CPU capacity: a CPU-bound job took {capacity['alone_seconds']:.2f} s alone and "
        f"{capacity['together_seconds']:.2f} s with {capacity['copies']} copies at once "
        f"({slower:.2f} times as long): the {capacity['copies']} cores give "
        f"**{capacity['effective_cores']:.2f}** cores' work (below the core count, the "
        "relay's writer or PostgreSQL slows its event loop and the ratios fall; "
        "docs/performance.md)"
    )
