"""``/metrics``: Prometheus text exposition."""

from __future__ import annotations

import time

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from app.api.deps import MetricsDep, SettingsDep, StoreDep
from app.delivery.budget import read_budget
from app.observability.metrics import Metrics
from app.settings import Settings
from app.store.base import EVENT_STATUSES, Store

router = APIRouter()


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(registry: MetricsDep, store: StoreDep, settings: SettingsDep) -> Response:
    try:
        counts = await store.count_by_status()
    except Exception:  # a scrape still answers when the database does not
        counts = None
    if counts is not None:
        registry.queue_depth.set(counts.get("pending", 0))
        for status in EVENT_STATUSES:
            registry.events_stored.labels(status).set(counts.get(status, 0))
        await _export_budget(store, settings, registry)
    return Response(generate_latest(registry.registry), media_type=CONTENT_TYPE_LATEST)


async def _export_budget(store: Store, settings: Settings, registry: Metrics) -> None:
    try:
        budget = await read_budget(store, settings.rate_ceilings, time.time())
    except Exception:
        return
    for window in budget.windows:
        registry.keap_calls_used.labels(window.name).set(window.used)
        registry.keap_call_ceiling.labels(window.name).set(window.ceiling)
    registry.keap_quota_resets_at.set(budget.resets_at)
