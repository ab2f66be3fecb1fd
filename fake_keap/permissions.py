"""What a credential's user may not touch: a 403 for one call while the credential works.

A Personal Access Token "operates under the user context of the user creating it, with
that user's visibility and editing permissions" (developer.infusionsoft.com/pat-and-sak),
so one tag can be off limits while every other call, and the auth probe, succeed. Keap's
REST v1 403 body is not published; the fake answers the v2 ``Error`` schema
(``code``, ``message``, ``status``; infusionsoft/keap-sdk ``sdks/v2/swagger.yml``).
"""

from __future__ import annotations

import json

from starlette.responses import Response

from fake_keap.rest_common import v2_error
from fake_keap.routing import RestRoute
from fake_keap.state import FakeKeapState


def forbidden_answer(state: FakeKeapState, route: RestRoute, body: bytes) -> Response | None:
    """A 403 when the call touches a record the user may not, else None."""
    forbidden = state.behaviour.forbidden_tag_ids
    if not forbidden or route.operation not in ("tags.add", "tags.remove"):
        return None
    tags = set(_tag_ids(body)) if route.operation == "tags.add" else set()
    if route.params.get("tag_id"):
        tags.add(int(route.params["tag_id"]))
    barred = sorted(tags & forbidden)
    if not barred:
        return None
    message = f"User does not have permission to apply tag {barred[0]}"
    return v2_error(403, message)


def _tag_ids(body: bytes) -> list[int]:
    try:
        payload = json.loads(body or b"null")
    except ValueError:
        return []
    tags = payload.get("tagIds") if isinstance(payload, dict) else None
    if not isinstance(tags, list):
        return []
    return [t for t in tags if isinstance(t, int) and not isinstance(t, bool)]
