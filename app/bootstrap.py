"""One start-up for every relay process that opens the database: ``relay serve`` (the app's
lifespan, also under ``relay sandbox``), ``relay worker``, and the commands that read or
write the store (``relay replay``, ``relay events``, ``relay keap login``, and the probe
before serving).

``async with bootstrap(settings) as opened:`` opens the store (and tracing, when asked),
gives the one HTTP client every Infusionsoft call goes through, and closes them in reverse
order. A store that cannot be opened raises :class:`DatabaseUnavailable`, whose cause each
command words for its user.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from app.keap.exchange import KEAP_TIMEOUT
from app.observability.logging import configure_logging
from app.observability.tracing import start_tracing, stop_tracing
from app.settings import Settings
from app.store.base import Store
from app.store.factory import open_store


class DatabaseUnavailable(Exception):
    """RELAY_DATABASE_URL could not be opened (or migrated); ``cause`` says why."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause) or type(cause).__name__)
        self.cause = cause


def keap_http_client() -> httpx.AsyncClient:
    """The process's HTTP client, with Keap's timeouts (the one place that builds it)."""
    return httpx.AsyncClient(timeout=KEAP_TIMEOUT)


def setup_logging(settings: Settings) -> None:
    """The log format and PII masking every long-running process starts with."""
    configure_logging(settings.log_format, pii=settings.log_pii)


class Opened:
    """What :func:`bootstrap` opened: the settings, the store and, made on first use (a
    command that never calls out pays nothing for it), the HTTP client."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._http: httpx.AsyncClient | None = None

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = keap_http_client()
        return self._http

    async def close_http(self) -> None:
        if self._http is not None:
            await self._http.aclose()


@asynccontextmanager
async def bootstrap(
    settings: Settings, *, pool_size: int | None = None, tracing: bool = False, ingest: bool = False
) -> AsyncIterator[Opened]:
    """Open what a relay process runs on; close it when the block ends.

    ``pool_size``: PostgreSQL connections (default RELAY_DATABASE_POOL_SIZE; a one-shot
    command needs one). ``tracing``: start OpenTelemetry when it is configured, and send
    the spans still queued at the end. ``ingest``: the process takes webhooks.
    """
    traced = start_tracing() if tracing else False
    try:
        try:
            store = open_store(
                settings.database_url,
                pool_size=settings.database_pool_size if pool_size is None else pool_size,
                ingest=ingest,
            )
            await store.open()
        except Exception as exc:  # the database is the operator's to fix: each command says so
            raise DatabaseUnavailable(exc) from exc
        opened = Opened(settings, store)
        try:
            yield opened
        finally:
            try:
                await opened.close_http()
            finally:
                await store.close()
    finally:
        if traced:
            stop_tracing()
