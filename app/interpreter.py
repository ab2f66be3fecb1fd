"""The interpreter settings a serving process runs with (``relay serve``, and the bare
baseline the ingest benchmark compares it with, so that only the app differs).

Both were measured on the ingest benchmark (docs/performance.md):

- **GIL switch interval, 1 ms.** The SQLite writer thread needs the GIL back after each
  commit while the event loop is busy with requests; at Python's default of 5 ms it
  waited up to that long, requests piled up behind the commit, and the loop then idled
  through the next one: ~10% more webhooks a second at 1 ms.
- **Garbage collector: start-up objects frozen, young generation 20,000.** At Python's
  700, a young collection ran every couple of requests and promoted whatever the 32
  requests in flight held, so full collections came often — each one walking every
  object the app, FastAPI and pydantic made at start-up. That was a third of the relay's
  p99 (29 ms against 10 ms) and ~10% of its CPU per webhook. Frozen, the start-up heap
  is never walked again; a larger first generation lets a request's objects die before
  a collection sees them. Reference counting still frees them at once: only cycles
  wait for the collector, and the relay makes few.
"""

from __future__ import annotations

import gc
import sys

SWITCH_INTERVAL = 0.001  # seconds a thread may hold the GIL while another waits
GC_THRESHOLDS = (20_000, 20, 20)  # Python's are (700, 10, 10)


def tune_for_serving() -> None:
    """Call once start-up has built the app, just before serving."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    gc.collect()  # what start-up left as garbage is freed, not frozen
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
