"""The OpenAPI description of ``/hooks/{source}``, added to FastAPI's own document.

The hook path is served in front of FastAPI (``app.api.hook_dispatch``), so FastAPI has
no route to describe it from; its operations are built here from FastAPI's OpenAPI
models (``fastapi.openapi.models``) and its errors refer to the ``Problem`` model.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.models import (
    MediaType,
    Operation,
    Parameter,
    ParameterInType,
    PathItem,
    Reference,
    RequestBody,
    Response,
    Schema,
)

from app.api.problems import PROBLEM_JSON, Problem

HOOK_PATH = "/hooks/{source}"

# Status -> what it means for a webhook (4xx and 5xx answers are problem+json).
RESPONSES: dict[int, str] = {
    200: "A duplicate of a stored event, or a WooCommerce ping",
    202: "Stored durably; delivery follows",
    400: "Unparsable body, or a value no database can store as sent",
    401: "Not verified",
    403: "Address not allowed",
    404: "Unknown source",
    405: "Method not allowed",
    413: "Too large",
    415: "Unsupported content type",
    503: "Could not be stored",
}
BODY_TYPES = ("application/json", "application/x-www-form-urlencoded")
STRING = Schema(type="string")


def _response(status: int, description: str) -> Response:
    if status < 400:
        return Response(description=description)
    ref = Reference.model_validate({"$ref": f"#/components/schemas/{Problem.__name__}"})
    return Response(description=description, content={PROBLEM_JSON: MediaType(schema=ref)})


def hook_path_item() -> PathItem:
    """``/hooks/{source}``: POST with a body, GET with a query string."""
    source = Parameter.model_validate(
        {"name": "source", "in": ParameterInType.path, "required": True, "schema": STRING}
    )
    responses: dict[str, Response | Any] = {
        str(status): _response(status, text) for status, text in RESPONSES.items()
    }
    body = RequestBody(
        required=False,
        content={kind: MediaType(schema=Schema(type="object")) for kind in BODY_TYPES},
    )
    return PathItem(
        post=Operation(
            operationId="receive_webhook",
            summary="Receive a webhook",
            parameters=[source],
            requestBody=body,
            responses=responses,
        ),
        get=Operation(
            operationId="receive_webhook_query",
            summary="Receive a webhook as a query string (sources with methods: [GET])",
            parameters=[source],
            responses=responses,
        ),
    )


def document_hooks(app: FastAPI) -> None:
    """Add ``/hooks/{source}`` to ``app``'s OpenAPI document (built once, then cached
    by FastAPI as its own is)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            item = hook_path_item().model_dump(mode="json", by_alias=True, exclude_none=True)
            schema["paths"] = {HOOK_PATH: item, **schema.get("paths", {})}
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.setdefault(Problem.__name__, Problem.model_json_schema())
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
