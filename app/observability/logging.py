"""Structured logs: one JSON object per line (or a readable console line).

Secrets never reach a log line: callers pass only safe fields, and every line is
scrubbed on the way out of each secret the process registered (API key, OAuth values,
webhook secrets, admin token) — a second net for an error text that echoes one. Contact
emails are masked unless RELAY_LOG_PII is true, both where a caller masks them with
``mask_email`` and, as that second net, anywhere else in the line.

``log_context`` adds fields (event id, source, route, action) to every line logged
inside it, so a Keap call's line says which event and step it was made for.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

import orjson

from app.observability.secrets import REDACTED

# Attributes every LogRecord has; anything else was passed with ``extra=`` and is logged.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "color_message",
}
# Shorter values are too likely to occur by chance (and too weak to be real secrets).
_MIN_SECRET_LENGTH = 6
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")


class _LogState:
    pii = False
    secrets: tuple[str, ...] = ()  # each secret, and its JSON-escaped form where different
    # The relay's own JSON handler, when configure_logging made one that batches lines
    # (production): log_line writes to it directly while it is the only handler.
    line_handler: BatchingStreamHandler | None = None


_state = _LogState()
_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "relay_log_context", default=None
)


def mask_email(email: str | None) -> str | None:
    """``jane.doe@example.com`` → ``j***@example.com`` unless PII logging is on."""
    if email is None or _state.pii:
        return email
    local, at, domain = email.partition("@")
    return f"{local[:1]}***{at}{domain}" if at else "***"


def register_secrets(values: Iterable[str | None]) -> None:
    """Never let these values appear in a log line (kept for the life of the process)."""
    known = set(_state.secrets)
    for value in values:
        if value and len(value) >= _MIN_SECRET_LENGTH:
            known.update((value, json.dumps(value, ensure_ascii=False)[1:-1]))
    # Longest first, so a secret containing another is replaced whole.
    _state.secrets = tuple(sorted(known, key=len, reverse=True))


def scrub(line: str) -> str:
    """``line`` without registered secrets and, unless PII logging is on, full emails."""
    for secret in _state.secrets:
        if secret in line:
            line = line.replace(secret, REDACTED)
    if not _state.pii and "@" in line:  # most lines hold no email: skip the regex
        line = _EMAIL.sub(lambda m: mask_email(m.group(0)) or "***", line)
    return line


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to every line logged inside the block (in this task)."""
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def bind_log_context(**fields: Any) -> None:
    """Set or replace fields (None removes one) until the enclosing ``log_context`` ends."""
    merged = {**(_context.get() or {}), **fields}
    _context.set({k: v for k, v in merged.items() if v is not None})


def current_log_context() -> dict[str, Any]:
    return dict(_context.get() or {})


class LogContextFilter(logging.Filter):
    """Stamps the current ``log_context`` on each record; fields passed with ``extra=``
    win over it."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_context.get() or {}).items():
            if key not in vars(record):
                setattr(record, key, value)
        return True


def _extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)  # built once: dumps(**kw) is not


class JsonFormatter(logging.Formatter):
    _second = -1
    _stamp = ""

    def _time(self, created: float) -> str:
        second = int(created)
        if second != self._second:  # strftime once a second, not once a line
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int((created - second) * 1000):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self._time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_extra_fields(record))
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return _json_line(entry)


def _json_line(entry: dict[str, Any]) -> str:
    try:
        line = orjson.dumps(entry, default=str).decode()  # docs/performance.md, "Register"
    except TypeError:  # an int wider than 64 bits, say
        line = _ENCODER.encode(entry)
    return scrub(line)


def log_line(logger: logging.Logger, message: str, fields: dict[str, Any]) -> None:
    """``logger.info(message, extra=fields)``, for the line written for every webhook.

    While the relay's own batching JSON handler is the only one on the way (production),
    the line is built and queued directly: the same line, with the same fields, log
    context and scrubbing, without a LogRecord (docs/performance.md, "Register"). Any
    other setup (console format, a test's capturing handler, a filter, a level, a logger
    of its own) takes the standard path.
    """
    handler = _state.line_handler
    if handler is None or not _plain_path(logger, handler):
        logger.info(message, extra=fields)
        return
    formatter = handler.formatter
    assert isinstance(formatter, JsonFormatter)
    entry: dict[str, Any] = {
        "time": formatter._time(time.time()),
        "level": "info",
        "logger": logger.name,
        "message": message,
    }
    entry.update(fields)
    for key, value in (_context.get() or {}).items():  # as LogContextFilter: extras win
        if key not in entry and key not in _STANDARD:
            entry[key] = value
    handler.add_line(_json_line(entry))


def _plain_path(logger: logging.Logger, handler: logging.Handler) -> bool:
    """Whether an INFO line of ``logger`` reaches ``handler`` alone, with no filter but
    the log context's."""
    if not logger.isEnabledFor(logging.INFO) or handler.level > logging.INFO:
        return False
    node: logging.Logger | None = logger
    while node is not None and node is not logging.root:
        if node.disabled or node.handlers or node.filters or not node.propagate:
            return False
        node = node.parent
    root = logging.root
    return (
        len(root.handlers) == 1
        and root.handlers[0] is handler
        and not root.filters
        and len(handler.filters) == 1
        and isinstance(handler.filters[0], LogContextFilter)
    )


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={v}" for k, v in _extra_fields(record).items())
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        line = f"{stamp} {record.levelname:<7} {record.getMessage()}"
        line = f"{line}  {fields}" if fields else line
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return scrub(line)


class BatchingStreamHandler(logging.StreamHandler[TextIO]):
    """A stream handler that writes lines in batches instead of one write and flush each
    (docs/performance.md, "Register": also why not ``QueueHandler``).

    Lines are written by a background thread every ``interval`` seconds, at once for a
    warning or worse (and when ``max_lines`` are waiting), and on ``flush``/``close`` —
    which ``logging.shutdown`` calls at exit. What a kill -9 can cost is the last
    ``interval`` of info lines, never a stored event.
    """

    def __init__(self, stream: TextIO, *, interval: float = 0.2, max_lines: int = 1000) -> None:
        super().__init__(stream)
        self.interval = interval
        self.max_lines = max_lines
        self._pending: list[str] = []
        self._stop_flusher = threading.Event()
        self._flusher = threading.Thread(
            target=self._flush_loop, name="relay-log-flush", daemon=True
        )
        self._flusher.start()

    def emit(self, record: logging.LogRecord) -> None:  # called holding the handler lock
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.add_line(line)
        if record.levelno >= logging.WARNING:
            self.flush()

    def add_line(self, line: str) -> None:
        """Queue a formatted line (from ``emit``, or ``log_line`` directly)."""
        with self.lock:  # type: ignore[union-attr]
            self._pending.append(line)
            if len(self._pending) >= self.max_lines:
                self.flush()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            lines, self._pending = self._pending, []
            try:
                if lines:
                    self.stream.write("\n".join(lines) + "\n")
                self.stream.flush()
            except Exception:
                pass  # a closed or broken stream: there is nowhere left to say so

    def close(self) -> None:
        self._stop_flusher.set()
        self.flush()
        super().close()

    def _flush_loop(self) -> None:
        while not self._stop_flusher.wait(self.interval):
            if self._pending:
                self.flush()


def configure_logging(
    fmt: str = "json",
    *,
    pii: bool = False,
    level: int = logging.INFO,
    stream: TextIO | None = None,
    batched: bool | None = None,
) -> None:
    """Log to ``stream`` (stderr by default). ``batched`` (the default for stderr) writes
    lines in batches a few times a second (``BatchingStreamHandler``)."""
    _state.pii = pii
    # No line shows the caller's file, thread or process: skip finding them for every
    # record (the logging HOWTO's "Optimization" section; a third of a line's cost).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    out = stream or sys.stderr
    batch = stream is None if batched is None else batched
    handler = BatchingStreamHandler(out) if batch else logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter() if fmt == "json" else ConsoleFormatter())
    handler.addFilter(LogContextFilter())
    batching = handler if isinstance(handler, BatchingStreamHandler) else None
    _state.line_handler = batching if fmt == "json" else None
    root = logging.getLogger()
    for old in root.handlers:
        if isinstance(old, BatchingStreamHandler):
            old.close()  # its lines out, its thread stopped
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Access logs would repeat every request (and URL tokens): the ingest line says enough.
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("httpx").setLevel(logging.WARNING)
