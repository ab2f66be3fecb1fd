"""The production log handler writes lines in batches: none is lost or torn, a warning
goes out at once, and info lines follow within the flush interval."""

from __future__ import annotations

import io
import logging
import threading
import time

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
    assert len(set(lines)) == 2000 and all(line.endswith("}") for line in lines)


def test_a_broken_stream_does_not_break_the_caller() -> None:
    stream = io.StringIO()
    handler = BatchingStreamHandler(stream, interval=60)
    logger = _logger(handler, "test.batching.broken")
    logger.info("lost")
    stream.close()
    logger.error("still fine")  # writing fails inside the handler, not in the caller
    handler.close()
