"""The ASGI app of the fake Infusionsoft: /crm, /token and the /_fake control endpoints."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Route

from fake_keap.authorize import authorize_endpoint
from fake_keap.connections import ConnectionRegistry
from fake_keap.control import (
    config_endpoint,
    in_flight_endpoint,
    reset_endpoint,
    state_endpoint,
)
from fake_keap.crm_endpoint import crm_endpoint
from fake_keap.state import FakeKeapState
from fake_keap.token_endpoint import token_endpoint


def create_app(state: FakeKeapState, connections: ConnectionRegistry | None = None) -> Starlette:
    """``connections`` lets forced "drop" failures abort sockets (see ``connections.py``)."""
    app = Starlette(
        routes=[
            Route(
                "/crm/{path:path}",
                crm_endpoint,
                methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            ),
            Route("/token", token_endpoint, methods=["POST"]),
            Route("/app/oauth/authorize", authorize_endpoint, methods=["GET"]),
            Route("/_fake/state", state_endpoint, methods=["GET"]),
            Route("/_fake/in_flight", in_flight_endpoint, methods=["GET"]),
            Route("/_fake/config", config_endpoint, methods=["POST"]),
            Route("/_fake/reset", reset_endpoint, methods=["POST"]),
        ]
    )
    app.state.fake = state
    app.state.connections = connections
    return app
