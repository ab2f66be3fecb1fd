"""``HookDispatcher``: the relay's ASGI app, with FastAPI beside it.

``/hooks/{source}`` requests go straight to ``app.ingest.endpoints.receive_webhook``;
every other request, and the lifespan, go to the FastAPI app. So middleware, exception
handlers and dependencies added to the FastAPI app never see a webhook: the hook path
reads the ASGI scope itself and answers its own errors as problem+json. Why: the fast
path (docs/performance.md, "Register").
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.datastructures import State
from starlette.types import Receive, Scope, Send

from app.ingest.endpoints import is_hook_path, receive_webhook


class HookDispatcher:
    """An ASGI app: webhooks to the ingest handler, the rest to ``fastapi``.

    ``state`` is the FastAPI app's own (the lifespan fills it; the hook handler reads
    the ingest service, metrics and settings from it).
    """

    def __init__(self, fastapi: FastAPI) -> None:
        self.fastapi = fastapi
        self.state: State = fastapi.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if is_hook_path(scope):
            await receive_webhook(self.state, scope, receive, send)
        else:
            await self.fastapi(scope, receive, send)
