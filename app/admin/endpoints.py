"""The admin JSON API under ``/admin``, and ``router``: it plus the dashboard, for the app.

Query values are read as text and checked here, so that a bad one answers 400 with a
problem that says what was wrong (not FastAPI's generic 422).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import ValidationError

from app.admin import dashboard, service
from app.admin.auth import AdminRoute, require_bearer
from app.admin.schemas import (
    BulkReplayAccepted,
    BulkReplayRequest,
    EventDetail,
    EventPage,
    ReplayAccepted,
    event_detail,
    event_out,
)
from app.api.deps import ConfigDep, RuntimeDep, StoreDep
from app.api.problems import PROBLEM_JSON, Problem
from app.api.requests import read_body
from app.errors import BadRequest

_MAX_REQUEST_BYTES = 16_384


def _problem(description: str) -> dict[str, Any]:
    return {
        "model": Problem,
        "description": description,
        "content": {PROBLEM_JSON: {}},
    }


api = APIRouter(
    prefix="/admin",
    tags=["admin"],
    route_class=AdminRoute,
    dependencies=[Depends(require_bearer)],
    responses={
        401: _problem("Missing or wrong bearer token"),
        404: _problem("Unknown event, or RELAY_ADMIN_TOKEN is unset"),
    },
)


@api.get(
    "/events",
    summary="List events, newest first",
    responses={400: _problem("Bad status, limit or cursor")},
)
async def list_events(
    store: StoreDep,
    status: Annotated[str | None, Query(description="pending, delivered, dead or ignored")] = None,
    source: Annotated[str | None, Query(description="a source name from relay.yaml")] = None,
    email: Annotated[str | None, Query(description="the contact email, any case")] = None,
    limit: Annotated[str | None, Query(description="page size, 1 to 500 (default 50)")] = None,
    cursor: Annotated[str | None, Query(description="next_cursor from the previous page")] = None,
) -> EventPage:
    flt = service.parse_filter(status, source, email)
    page = await service.list_page(
        store, flt, service.parse_limit(limit), service.decode_cursor(cursor)
    )
    return EventPage(items=[event_out(r) for r in page.events], next_cursor=page.next_cursor)


@api.get("/events/{event_id}", summary="One event with its payload, steps and history")
async def get_event(event_id: str, store: StoreDep) -> EventDetail:
    return event_detail(await service.load_event(store, event_id))


@api.post(
    "/events/{event_id}/replay",
    status_code=202,
    summary="Re-queue one event",
    responses={
        409: _problem(
            "The event was ignored (replay it with replan), is being delivered right now, "
            "or (replan) the current relay.yaml does not deliver it"
        )
    },
)
async def replay_event(
    event_id: str,
    store: StoreDep,
    config: ConfigDep,
    runtime: RuntimeDep,
    from_start: Annotated[
        bool, Query(description="run every step again, not only the unfinished ones")
    ] = False,
    replan: Annotated[
        bool,
        Query(
            description="first plan the event again with the current relay.yaml; steps that "
            "already succeeded and are still in the plan are not repeated; an ignored event "
            "is queued if a route takes it now"
        ),
    ] = False,
) -> ReplayAccepted:
    options = service.ReplayOptions(from_start=from_start, replan=config if replan else None)
    await service.replay_event(store, event_id, options)
    service.wake_worker(runtime)
    return ReplayAccepted(event_id=event_id)


@api.post(
    "/replay",
    status_code=202,
    summary="Re-queue every event in a status (optionally from one source, since a time)",
    responses={400: _problem("The body is not a valid replay request")},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": BulkReplayRequest.model_json_schema()}},
        }
    },
)
async def replay_matching(
    request: Request, store: StoreDep, config: ConfigDep, runtime: RuntimeDep
) -> BulkReplayAccepted:
    ask = _bulk_request(await read_body(request, _MAX_REQUEST_BYTES))
    since = ask.since.timestamp() if ask.since is not None else None
    options = service.ReplayOptions(
        from_start=ask.from_start,
        dry_run_steps=ask.dry_run_steps,
        replan=config if ask.replan else None,
    )
    count = await service.replay_matching(store, ask.status, ask.source, since, options)
    if count:
        service.wake_worker(runtime)
    return BulkReplayAccepted(requeued=count)


def _bulk_request(body: bytes) -> BulkReplayRequest:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(
            'the body must be JSON like {"status": "dead", "source": "shop", '
            '"since": "2025-01-31T00:00:00Z"}'
        ) from None
    try:
        return BulkReplayRequest.model_validate(document)
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise BadRequest(reasons) from None


router = APIRouter()
router.include_router(api)
router.include_router(dashboard.router)
