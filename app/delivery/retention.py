"""Retention: delivered and ignored events (and with them their dedupe keys) are purged
after RELAY_RETENTION_DAYS, in small batches so ingest never waits behind a big delete.
Dead and pending events are never purged."""

from __future__ import annotations

import asyncio
import logging
import time

from app.store.base import Store

log = logging.getLogger("relay.retention")

BATCH = 200
PAUSE_BETWEEN_BATCHES = 0.2  # seconds: leave the database to ingest between deletes


async def purge_expired(
    store: Store, retention_days: float, *, now: float | None = None, batch: int = BATCH
) -> int:
    """Delete every finished event older than the retention window; the number deleted."""
    cutoff = (time.time() if now is None else now) - retention_days * 86400
    total = 0
    while True:
        deleted = await store.purge_finished(cutoff, batch)
        total += deleted
        if deleted < batch:
            break
        await asyncio.sleep(PAUSE_BETWEEN_BATCHES)
    if total:
        log.info(
            "purged finished events", extra={"deleted": total, "retention_days": retention_days}
        )
    return total


async def retention_loop(store: Store, retention_days: float, interval: float = 3600.0) -> None:
    """Purge now, then once per ``interval`` seconds, for as long as the worker runs."""
    while True:
        try:
            await purge_expired(store, retention_days)
        except Exception:  # a failed sweep is retried at the next interval
            log.warning("retention sweep failed", exc_info=True)
        await asyncio.sleep(interval)
