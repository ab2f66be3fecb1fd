"""Capture what the relay logs, formatted exactly as in production, into a string; and
the delivery fixtures (a relay configured for the fake Infusionsoft)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from app.observability import logging as relay_logging

LogCapture = Callable[..., io.StringIO]


@pytest.fixture
def capture_logs() -> Iterator[LogCapture]:
    """``capture_logs(fmt="json", pii=False)`` routes every log line into the returned
    buffer through ``configure_logging``; the logging setup is restored afterwards."""
    root = logging.getLogger()
    saved_root = (root.handlers[:], root.level)
    touched = ("uvicorn", "uvicorn.error", "uvicorn.access", "httpx")
    saved = {
        name: (
            logging.getLogger(name).handlers[:],
            logging.getLogger(name).propagate,
            logging.getLogger(name).disabled,
            logging.getLogger(name).level,
        )
        for name in touched
    }
    saved_state = (relay_logging._state.pii, relay_logging._state.secrets)

    def start(fmt: str = "json", *, pii: bool = False) -> io.StringIO:
        buffer = io.StringIO()
        relay_logging.configure_logging(fmt, pii=pii, stream=buffer)
        return buffer

    yield start
    root.handlers[:], level = saved_root
    root.setLevel(level)
    for name, (handlers, propagate, disabled, lvl) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.propagate, logger.disabled = propagate, disabled
        logger.setLevel(lvl)
    relay_logging._state.pii, relay_logging._state.secrets = saved_state


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line parsed as JSON (a line that is not JSON fails the test)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


from tests.delivery.conftest import delivery_config, fake_keap  # noqa: E402, F401 (fixtures)
