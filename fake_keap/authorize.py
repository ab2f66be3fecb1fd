"""``GET /app/oauth/authorize``: Keap's authorize page, with the person's "Allow" already
given — it redirects at once to ``redirect_uri`` with a single-use ``code`` (and ``state``).

The parameters are Keap's documented ones (client_id, redirect_uri, response_type=code,
scope=full; infusionsoft/infusionsoft-php ``getAuthorizationUrl``, and the v2 OpenAPI
``securitySchemes`` in infusionsoft/keap-sdk ``sdks/v2/swagger.yml``). The real page also
asks the person to sign in and pick an app, and refuses redirect URIs not registered on
the developer app; the fake does not model that.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from fake_keap.state import FakeKeapState


async def authorize_endpoint(request: Request) -> Response:
    state: FakeKeapState = request.app.state.fake
    query = request.query_params
    redirect_uri = query.get("redirect_uri", "")
    if query.get("response_type") != "code" or not redirect_uri:
        return JSONResponse(
            {
                "error": "invalid_request",
                "error_description": "response_type=code and redirect_uri are required",
            },
            status_code=400,
        )
    code = state.issue_authorization_code(query.get("client_id", ""), redirect_uri)
    if code is None:
        return JSONResponse(
            {"error": "invalid_client", "error_description": "Unknown client_id"}, 400
        )
    params = {"code": code, "scope": query.get("scope", "full")}
    if "state" in query:
        params["state"] = query["state"]
    separator = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(redirect_uri + separator + urlencode(params), status_code=302)
