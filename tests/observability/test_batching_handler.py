"""The production log handler writes lines in batches: none is lost or torn, a warning
goes out at once, and info lines follow within the flush interval."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from typing import Any

from app.observability import logging as relay_logging
from app.observability.logging import BatchingStreamHandler, JsonFormatter


def _logger(handler: logging.Handler, name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def test_info_lines_wait_for_the_interval_warnings_do_not() -> None:
    stream = io.StringIO()
    handler = BatchingStreamHandler(stream, interval=60)  # the flusher never fires here
    logger = _logger(handler, "test.batching.wait")
    try:
        logger.info("first")
        assert stream.getvalue() == ""  # batched, not yet written
        logger.warning("trouble")
        assert stream.getvalue().splitlines() == ["first", "trouble"]  # in order, at once
    finally:
        handler.close()


def test_background_flush_and_close_write_everything() -> None:
    stream = io.StringIO()
    handler = BatchingStreamHandler(stream, interval=0.05)
    logger = _logger(handler, "test.batching.flush")
    logger.info("soon")
    deadline = time.monotonic() + 5
    while "soon" not in stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stream.getvalue() == "soon\n"
    logger.info("at close")
    handler.close()
    assert stream.getvalue() == "soon\nat close\n"


def test_threads_logging_at_once_lose_and_tear_no_line() -> None:
    stream = io.StringIO()
    handler = BatchingStreamHandler(stream, interval=0.001, max_lines=7)
    handler.setFormatter(JsonFormatter())
    logger = _logger(handler, "test.batching.threads")

    def log_many(thread: int) -> None:
        for i in range(500):
            logger.info("line", extra={"writer": thread, "i": i})

    threads = [threading.Thread(target=log_many, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    handler.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2000
    assert len(set(lines)) == 2000
    assert all(line.endswith("}") for line in lines)


def test_a_broken_stream_does_not_break_the_caller() -> None:
    stream = io.StringIO()
    handler = BatchingStreamHandler(stream, interval=60)
    logger = _logger(handler, "test.batching.broken")
    logger.info("lost")
    stream.close()
    logger.error("still fine")  # writing fails inside the handler, not in the caller
    handler.close()


def test_log_line_writes_the_line_the_standard_path_writes(monkeypatch: Any) -> None:
    """The per-webhook shortcut must be indistinguishable from logger.info(extra=...):
    same fields in the same order, log context, scrubbing — and step aside for any
    other setup."""
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    saved_secrets = relay_logging._state.secrets
    relay_logging.configure_logging("json", stream=stream, batched=True)
    relay_logging.register_secrets(["s3cret-value-1"])
    monkeypatch.setattr(time, "time", lambda: 1_764_000_000.25)
    logger = logging.getLogger("relay.ingest")
    fields = {"source": "shop", "event_id": "evt_1", "routes": ["a"], "note": "s3cret-value-1"}
    try:
        with relay_logging.log_context(request="r-1", source="context loses"):
            relay_logging.log_line(logger, "webhook received", fields)
            assert relay_logging._state.line_handler is not None
            relay_logging._state.line_handler, kept = None, relay_logging._state.line_handler
            relay_logging.log_line(logger, "webhook received", fields)  # the standard path
            relay_logging._state.line_handler = kept
        root.handlers[0].flush()
        fast, standard = stream.getvalue().splitlines()
        assert fast == standard
        assert json.loads(fast) == {
            "time": "2025-11-24T16:00:00.250Z",
            "level": "info",
            "logger": "relay.ingest",
            "message": "webhook received",
            "source": "shop",
            "event_id": "evt_1",
            "routes": ["a"],
            "note": "[redacted]",
            "request": "r-1",
        }
        captured: list[logging.LogRecord] = []
        capture = logging.Handler()
        capture.emit = captured.append  # type: ignore[method-assign]
        root.addHandler(capture)  # a second handler: the shortcut steps aside
        relay_logging.log_line(logger, "webhook received", fields)
        assert [r.getMessage() for r in captured] == ["webhook received"]
    finally:
        for handler in root.handlers:
            if isinstance(handler, BatchingStreamHandler):
                handler.close()
        root.handlers[:], level = saved
        root.setLevel(level)
        relay_logging._state.line_handler = None
        relay_logging._state.secrets = saved_secrets


def test_closing_over_a_closed_stream_is_quiet() -> None:
    stream = io.StringIO()
    handler = BatchingStreamHandler(stream, interval=60)
    stream.close()  # e.g. a test's captured stderr, gone before the handler
    handler.flush()
    handler.close()
