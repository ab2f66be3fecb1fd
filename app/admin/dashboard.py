"""The HTML dashboard: login, the event list with its status header, one event's page,
and the replay buttons. Every page works without JavaScript."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, Request, Response
from starlette.responses import RedirectResponse

from app.admin import service
from app.admin.auth import (
    AdminDisabled,
    AdminRoute,
    OperatorDep,
    admin_path,
    clear_session_cookie,
    client_address,
    configured_token,
    current_session,
    end_session,
    issue_session,
    safe_next_path,
    set_session_cookie,
    token_matches,
    verify_csrf,
)
from app.admin.pages import PAGE_HEADERS, render
from app.admin.schemas import event_detail, event_out
from app.api.deps import (
    ConfigDep,
    FailedLoginsDep,
    MetricsDep,
    RuntimeDep,
    SettingsDep,
    StoreDep,
)
from app.api.requests import read_body
from app.config.sunset import sunset_summary
from app.domain.problems import DeadGroup
from app.errors import BadRequest, NotFound, RelayError, TooManyRequests

_MAX_FORM_BYTES = 16_384
_MAX_FORM_FIELDS = 100
FLASHES = {
    "requeued": "Re-queued: the event's unfinished steps will run again.",
    "requeued-from-start": "Re-queued from the start: every step will run again.",
    "requeued-replanned": "Planned again with the current relay.yaml and re-queued: steps "
    "that already succeeded and are still planned will not run again.",
    "requeued-dry-run": "Re-queued: the steps recorded in dry-run go to Infusionsoft now, once.",
    "signed-out": "You are signed out.",
}


class DashboardRoute(AdminRoute):
    """Shows a browser an HTML page for errors; scripts still get problem+json."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def with_error_page(request: Request) -> Response:
            try:
                return await handler(request)
            except AdminDisabled:
                raise
            except RelayError as exc:
                if "text/html" not in request.headers.get("accept", ""):
                    raise
                return render(
                    request,
                    "error.html",
                    status_code=exc.status_code,
                    title=exc.title,
                    detail=exc.detail,
                )

        return with_error_page


PROBLEM_GROUPS = 20  # open problems listed above the events, the largest first
router = APIRouter(prefix="/admin", route_class=DashboardRoute, include_in_schema=False)


async def read_form(request: Request) -> dict[str, str]:
    """The dashboard's small forms: reading stops at 16 KiB (413), never buffering more."""
    body = await read_body(request, _MAX_FORM_BYTES)
    try:
        fields = parse_qs(
            body.decode("utf-8", "replace"),
            keep_blank_values=True,
            max_num_fields=_MAX_FORM_FIELDS,
        )
    except ValueError:
        raise BadRequest(f"the form has more than {_MAX_FORM_FIELDS} fields") from None
    return {name: values[0] for name, values in fields.items()}


def _redirect(request: Request, path: str) -> RedirectResponse:
    return RedirectResponse(admin_path(request, path), status_code=303)


def flash_message(query: dict[str, str]) -> str | None:
    """The message a redirect asked for, by code: never text taken from the URL."""
    code = query.get("flash", "")
    if code == "bulk" and query.get("n", "").isdigit():
        return f"Re-queued {int(query['n'])} events."
    if code == "bulk-replanned" and query.get("n", "").isdigit():
        return (
            f"Re-planned the ignored events: {int(query['n'])} queued; "
            "those no route takes yet stay ignored."
        )
    return FLASHES.get(code)


def problem_out(group: DeadGroup) -> dict[str, Any]:
    """One open problem as the page shows it (times as datetimes, like the events')."""
    return {
        **dataclasses.asdict(group),
        "first_at": datetime.fromtimestamp(group.first_at, UTC),
        "last_at": datetime.fromtimestamp(group.last_at, UTC),
    }


@router.get("")
async def bare_admin(request: Request) -> RedirectResponse:
    configured_token(request)
    return _redirect(request, "/admin/")


@router.get("/login")
async def login_form(request: Request) -> Response:
    token = configured_token(request)
    next_path = safe_next_path(request.query_params.get("next"))
    if await current_session(request, token) is not None:
        return _redirect(request, next_path)
    return render(
        request,
        "login.html",
        next_path=next_path,
        error=None,
        flash=flash_message(dict(request.query_params)),
    )


@router.post("/login")
async def login(request: Request, limits: FailedLoginsDep) -> Response:
    token = configured_token(request)
    address, now = client_address(request), time.time()
    if (wait := await limits.retry_after(address, now)) > 0:
        raise TooManyRequests(
            f"too many failed sign-ins from {address}: try again in {int(wait) + 1} s",
            retry_after=int(wait) + 1,
        )
    form = await read_form(request)
    next_path = safe_next_path(form.get("next"))
    if not token_matches(token, form.get("token", "")):
        await limits.record_failure(address, now)
        return render(
            request,
            "login.html",
            status_code=401,
            next_path=next_path,
            error="That is not the admin token.",
            flash=None,
        )
    await limits.clear(address)
    response = _redirect(request, next_path)
    set_session_cookie(response, request, await issue_session(request, token))
    return response


@router.post("/logout")
async def logout(request: Request, operator: OperatorDep) -> Response:
    verify_csrf(operator, (await read_form(request)).get("csrf"))
    await end_session(request, configured_token(request))
    response = _redirect(request, "/admin/login?flash=signed-out")
    clear_session_cookie(response, request)
    return response


@router.get("/")
async def index(
    request: Request,
    operator: OperatorDep,
    store: StoreDep,
    metrics: MetricsDep,
    runtime: RuntimeDep,
    settings: SettingsDep,
    config: ConfigDep,
) -> Response:
    query = dict(request.query_params)
    filters = {key: query.get(key, "").strip() for key in ("status", "source", "email")}
    summary = await service.status_summary(store, metrics, runtime, settings.rate_ceilings)
    context: dict[str, Any] = {
        "operator": operator,
        "summary": summary,
        "filters": filters,
        "sources": sorted(config.sources),
        "flash": flash_message(query),
        "sunset_warning": sunset_summary(config, settings.keap_xmlrpc_sunset),
        "events": [],
        "problems": [problem_out(g) for g in await store.dead_groups(PROBLEM_GROUPS)],
        "next_page": None,
        "first_page": None,
        "error": None,
    }
    try:
        flt = service.parse_filter(filters["status"], filters["source"], filters["email"])
        page = await service.list_page(
            store, flt, service.DEFAULT_PAGE_SIZE, service.decode_cursor(query.get("cursor"))
        )
    except BadRequest as exc:
        return render(request, "index.html", status_code=400, **{**context, "error": exc.detail})
    kept = {key: value for key, value in filters.items() if value}
    context["events"] = [event_out(record) for record in page.events]
    if page.next_cursor:
        context["next_page"] = "?" + urlencode({**kept, "cursor": page.next_cursor})
    if query.get("cursor"):
        context["first_page"] = "?" + urlencode(kept)
    return render(request, "index.html", **context)


@router.get("/events/{event_id}/view")
async def event_page(
    request: Request, event_id: str, operator: OperatorDep, store: StoreDep, settings: SettingsDep
) -> Response:
    record = await service.load_event(store, event_id)
    return render(
        request,
        "event.html",
        operator=operator,
        event=event_detail(record),
        live=not settings.is_dry_run,  # dry-run steps can be sent for real
        flash=flash_message(dict(request.query_params)),
    )


@router.get("/events/{event_id}/payload")
async def event_payload(event_id: str, operator: OperatorDep, store: StoreDep) -> Response:
    """The body as stored (JSON, secrets already redacted), to download whole: the event
    page shows at most MAX_NESTING levels and PAYLOAD_CHARS characters of it."""
    text = await store.event_payload_text(event_id)
    if text is None:
        raise NotFound(f"no event has the id {event_id[:80]!r}")
    filename = "".join(c for c in event_id if c.isalnum() or c in "_-")[:80] or "event"
    headers = {**PAGE_HEADERS, "Content-Disposition": f'attachment; filename="{filename}.json"'}
    return Response(text, media_type="application/json", headers=headers)


@router.post("/events/{event_id}/view/replay")
async def replay_event(
    request: Request,
    event_id: str,
    operator: OperatorDep,
    store: StoreDep,
    config: ConfigDep,
    runtime: RuntimeDep,
) -> Response:
    """The event page's buttons: unfinished steps, from the start, re-planned, or the
    steps recorded in dry-run sent for real (one field each, "true")."""
    form = await read_form(request)
    verify_csrf(operator, form.get("csrf"))
    options = service.ReplayOptions(
        from_start=form.get("from_start") == "true",
        dry_run_steps=form.get("dry_run_steps") == "true",
        replan=config if form.get("replan") == "true" else None,
    )
    await service.replay_event(store, event_id, options)
    service.wake_worker(runtime)
    flash = _replayed_flash(options)
    return _redirect(request, f"/admin/events/{quote(event_id, safe='')}/view?flash={flash}")


def _replayed_flash(options: service.ReplayOptions) -> str:
    if options.from_start:
        return "requeued-from-start"
    if options.replan is not None:
        return "requeued-replanned"
    return "requeued-dry-run" if options.dry_run_steps else "requeued"


@router.post("/view/replay")
async def replay_matching(
    request: Request, operator: OperatorDep, store: StoreDep, config: ConfigDep, runtime: RuntimeDep
) -> Response:
    """The list page's 'replay all dead' button, for the source filter shown (re-planned
    first when its box is ticked), its 're-plan every ignored event' button, and each open
    problem's 'replay these' button."""
    form = await read_form(request)
    verify_csrf(operator, form.get("csrf"))
    source = form.get("source") or None
    status = "ignored" if form.get("status") == "ignored" else "dead"
    count = await service.replay_matching(
        store,
        status,
        source,
        None,
        service.ReplayOptions(replan=config if form.get("replan") == "true" else None),
        # Sent by an open problem's "replay these" button: that group only.
        reason=form.get("reason") if "reason" in form else None,
        routes_json=form.get("routes") if "routes" in form else None,
    )
    if count:
        service.wake_worker(runtime)
    back = {
        "status": status,
        **({"source": source} if source else {}),
        "flash": "bulk-replanned" if status == "ignored" else "bulk",
        "n": str(count),
    }
    return _redirect(request, "/admin/?" + urlencode(back))
