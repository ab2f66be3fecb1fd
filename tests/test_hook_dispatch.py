"""The hook fast path: ``/hooks/{source}`` is answered beside FastAPI, not inside it."""

from __future__ import annotations

import json

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

from app.main import create_app
from tests.conftest import make_config, make_settings
from tests.test_ingest_http import ORDER, shopify_headers


class PathRecorder:
    """ASGI middleware that notes the path of every HTTP request it sees."""

    def __init__(self, app: ASGIApp, seen: list[str]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.seen.append(scope["path"])
        await self.app(scope, receive, send)


async def test_middleware_added_to_fastapi_does_not_see_webhooks(sqlite_url: str) -> None:
    """Middleware added to the FastAPI app sees every path except ``/hooks/...``.

    ``HookDispatcher`` (app/api/hook_dispatch.py) sends webhooks to the ingest handler
    before FastAPI, to keep the hot path cheap (docs/performance.md, "Register"). So
    whatever is added to ``app.fastapi`` — middleware, exception handlers, dependencies
    — does not run for a webhook: a concern that must cover webhooks too (a header, a
    limit, a metric) belongs in the ingest handler or in the ASGI server, not there.
    """
    seen: list[str] = []
    app = create_app(make_settings(sqlite_url), config=make_config(), run_worker=False)
    app.fastapi.add_middleware(PathRecorder, seen=seen)
    body = json.dumps(ORDER).encode()
    async with app.fastapi.router.lifespan_context(app.fastapi):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://relay") as client:
            accepted = await client.post("/hooks/shop", content=body, headers=shopify_headers(body))
            unknown = await client.post("/hooks/nowhere", content=b"{}")
            healthy = await client.get("/healthz")
            missing = await client.get("/hooks/shop/more")
    assert (accepted.status_code, unknown.status_code) == (202, 404)
    assert unknown.headers["content-type"] == "application/problem+json"  # the hook path's
    assert (healthy.status_code, missing.status_code) == (200, 404)
    assert seen == ["/healthz", "/hooks/shop/more"]  # not a /hooks/{source} path
