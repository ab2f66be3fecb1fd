"""``/metrics``: Prometheus text exposition."""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from app.observability.metrics import Metrics
from app.store.base import EVENT_STATUSES

router = APIRouter()


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    registry: Metrics = request.app.state.metrics
    try:
        counts = await request.app.state.store.count_by_status()
    except Exception:  # a scrape still answers when the database does not
        counts = None
    if counts is not None:
        registry.queue_depth.set(counts.get("pending", 0))
        for status in EVENT_STATUSES:
            registry.events_stored.labels(status).set(counts.get(status, 0))
    return Response(generate_latest(registry.registry), media_type=CONTENT_TYPE_LATEST)
