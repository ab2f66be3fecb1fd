"""app/interpreter.py: the tuning says at start what it set, or that it is off."""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Iterator

import pytest

from app.interpreter import tune_for_serving
from tests.support.interpreter import interpreter_restored


@pytest.fixture
def restored_interpreter() -> Iterator[None]:
    with interpreter_restored():
        yield


@pytest.mark.usefixtures("restored_interpreter")
def test_tuning_logs_the_switch_interval_and_gc_thresholds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="relay.interpreter"):
        tune_for_serving(True)
    [record] = caplog.records
    assert record.getMessage() == "interpreter tuned for serving"
    assert record.switch_interval_ms == 1.0  # type: ignore[attr-defined]
    assert record.gc_thresholds == [20_000, 20, 20]  # type: ignore[attr-defined]
    assert sys.getswitchinterval() == pytest.approx(0.001)


@pytest.mark.usefixtures("restored_interpreter")
def test_tuning_off_changes_nothing_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    interval, thresholds = sys.getswitchinterval(), gc.get_threshold()
    with caplog.at_level(logging.INFO, logger="relay.interpreter"):
        tune_for_serving(False)
    [record] = caplog.records
    assert record.getMessage() == "interpreter tuning off (RELAY_TUNE_INTERPRETER=false)"
    assert record.gc_thresholds == list(thresholds)  # type: ignore[attr-defined]
    assert (sys.getswitchinterval(), gc.get_threshold()) == (interval, thresholds)
