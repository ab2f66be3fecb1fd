"""Put back what app/interpreter.py's tuning changes, for tests that run it."""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def interpreter_restored() -> Iterator[None]:
    """The GIL switch interval and the collector's thresholds as they were, and nothing
    left frozen."""
    interval, thresholds = sys.getswitchinterval(), gc.get_threshold()
    try:
        yield
    finally:
        sys.setswitchinterval(interval)
        gc.set_threshold(*thresholds)
        gc.unfreeze()
