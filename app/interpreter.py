"""The interpreter settings a serving process runs with (``relay serve``, and the bare
baseline the ingest benchmark compares it with, so that only the app differs), and the
one ``relay worker`` runs with.

Measured gains: docs/performance.md, "Register". ``RELAY_TUNE_INTERPRETER=false`` leaves
Python's defaults; either way one log line at start says which.
"""

from __future__ import annotations

import gc
import logging
import sys

SWITCH_INTERVAL = 0.001  # seconds a thread may hold the GIL while another waits
GC_THRESHOLDS = (20_000, 20, 20)  # Python's are (700, 10, 10)

log = logging.getLogger("relay.interpreter")


def tune_for_serving(enabled: bool = True) -> None:
    """Call once start-up has built the app, just before serving.

    A 1 ms GIL switch interval (the SQLite writer thread gets the GIL back soon after
    each commit); what start-up built frozen out of the collector's reach, and a young
    generation of 20,000 objects (a request's objects die before a collection sees them).
    """
    if not enabled:
        log.info(
            "interpreter tuning off (RELAY_TUNE_INTERPRETER=false)",
            extra={
                "switch_interval_ms": sys.getswitchinterval() * 1000,
                "gc_thresholds": list(gc.get_threshold()),
            },
        )
        return
    sys.setswitchinterval(SWITCH_INTERVAL)
    gc.collect()  # what start-up left as garbage is freed, not frozen
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    log.info(
        "interpreter tuned for serving",
        extra={
            "switch_interval_ms": SWITCH_INTERVAL * 1000,
            "gc_thresholds": list(GC_THRESHOLDS),
            "gc_frozen": gc.get_freeze_count(),
        },
    )


def tune_for_delivery(enabled: bool = True) -> None:
    """Call once ``relay worker`` has opened its store and client, before it delivers.

    What start-up built is frozen out of the collector's reach: a full collection then
    walks only what delivery made (under 5 ms, was ~40 ms), and a call whose slot falls
    in such a pause goes out late enough to crowd Keap's next window. Python's young
    generation stays: a worker's objects outlive a call's round trip, and 20,000 of them
    cost a 10 ms collection each time.
    """
    if not enabled:
        log.info("interpreter tuning off (RELAY_TUNE_INTERPRETER=false)")
        return
    gc.collect()
    gc.freeze()
    log.info("interpreter tuned for delivery", extra={"gc_frozen": gc.get_freeze_count()})
