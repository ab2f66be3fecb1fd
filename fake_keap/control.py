"""``/_fake/*``: drive the fake over HTTP when it runs as a separate process.

The JSON body of ``POST /_fake/config`` mirrors the Python API of ``FakeKeapState``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fake_keap.behaviour import FakeBehaviour
from fake_keap.crm_data import RecordNotFound
from fake_keap.records import FailureStatus
from fake_keap.state import FakeKeapState


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FailNext(_Strict):
    status: FailureStatus = 503
    count: int = Field(default=1, ge=1)
    operation: str | None = None
    retry_after: float | None = None
    after_handling: bool = False


class OutageRequest(_Strict):
    status: FailureStatus = 503
    seconds: float | None = None


class FaultRequest(_Strict):
    method: str
    code: int
    string: str
    count: int | None = None


class RetireRequest(_Strict):
    status: int = Field(default=404, ge=400, le=599)
    format: Literal["json", "html"] = "json"


class OAuthRequest(_Strict):
    client_id: str
    client_secret: str
    refresh_token: str | None = None


class ControlRequest(_Strict):
    """Actions of ``POST /_fake/config``.

    ``FakeBehaviour`` fields may sit at the top level (``{"per_second": 5}``) or under
    ``settings``; ``fail_next`` and ``faults`` take one object or a list.
    """

    settings: dict[str, Any] = Field(default_factory=dict)
    oauth: OAuthRequest | None = None
    fail_next: list[FailNext] = Field(default_factory=list)
    outage: OutageRequest | Literal[False] | None = None  # false clears it
    xmlrpc_brownout: bool | None = None
    # true: retire XML-RPC (a 404 with Apigee's JSON fault); an object picks status and
    # body format; false switches it back on.
    xmlrpc_retired: RetireRequest | bool | None = None
    reject_all_credentials: bool | None = None
    faults: list[FaultRequest] = Field(default_factory=list)
    clear_faults: bool = False
    expire_access_tokens: bool = False
    # contact ids to delete, as a user deleting them in Keap (later calls answer 404)
    delete_contacts: list[int] = Field(default_factory=list)
    revoke_refresh_token: bool = False
    # Days that pass, unused, for the live refresh token (45 and it has died).
    age_refresh_token_days: float | None = Field(default=None, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _gather_settings(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        settings = dict(data.get("settings") or {})
        for name in FakeBehaviour.model_fields:
            if name in data:
                settings[name] = data.pop(name)
        for name in ("fail_next", "faults"):
            if isinstance(data.get(name), dict):
                data[name] = [data[name]]
        return {**data, "settings": settings}


def apply_control(state: FakeKeapState, request: ControlRequest) -> None:
    """Apply each action the request names, in the order the fields are declared."""
    if request.clear_faults:
        state.clear_faults()
    if request.settings:
        state.configure(**request.settings)
    if request.oauth is not None:
        state.set_oauth(**request.oauth.model_dump())
    for failure in request.fail_next:
        state.fail_next(**failure.model_dump())
    _apply_switches(state, request)
    for fault in request.faults:
        state.set_fault(**fault.model_dump())
    if request.expire_access_tokens:
        state.expire_access_tokens()
    for contact_id in request.delete_contacts:
        state.delete_contact(contact_id)
    if request.revoke_refresh_token:
        state.revoke_refresh_token()
    if request.age_refresh_token_days is not None:
        state.age_refresh_token(request.age_refresh_token_days * 86400)


def _apply_switches(state: FakeKeapState, request: ControlRequest) -> None:
    """The on/off conditions: an outage, the XML-RPC brownout and retirement, refusals."""
    if request.outage is False:
        state.clear_outage()
    elif request.outage is not None:
        state.set_outage(request.outage.status, request.outage.seconds)
    if request.xmlrpc_brownout is not None:
        state.set_xmlrpc_brownout(request.xmlrpc_brownout)
    retire = request.xmlrpc_retired
    if isinstance(retire, RetireRequest):
        state.retire_xmlrpc(True, retire.status, retire.format)
    elif retire is not None:
        state.retire_xmlrpc(retire)
    if request.reject_all_credentials is not None:
        state.set_reject_all_credentials(request.reject_all_credentials)


async def state_endpoint(request: Request) -> Response:
    state: FakeKeapState = request.app.state.fake
    limit = request.query_params.get("log_limit")
    if limit is not None and not limit.isdigit():
        return JSONResponse({"message": "log_limit must be a non-negative integer"}, 400)
    return JSONResponse(state.snapshot(int(limit) if limit is not None else None))


async def in_flight_endpoint(request: Request) -> Response:
    """The /crm requests received and not yet answered, by operation: cheap to poll."""
    state: FakeKeapState = request.app.state.fake
    return JSONResponse({"in_flight": dict(state.in_flight())})


async def config_endpoint(request: Request) -> Response:
    state: FakeKeapState = request.app.state.fake
    try:
        control = ControlRequest.model_validate_json(await request.body() or b"{}")
        FakeBehaviour().with_changes(**control.settings)  # refuse bad settings before any change
        apply_control(state, control)
    except (ValidationError, ValueError) as exc:
        return JSONResponse({"message": str(exc)}, status_code=400)
    except RecordNotFound as exc:
        return JSONResponse({"message": str(exc)}, status_code=404)
    return JSONResponse(state.snapshot(log_limit=0))


async def reset_endpoint(request: Request) -> Response:
    state: FakeKeapState = request.app.state.fake
    body = await request.body()
    keep_config = True
    if body:
        try:
            keep_config = bool(_ResetRequest.model_validate_json(body).keep_config)
        except ValidationError as exc:
            return JSONResponse({"message": str(exc)}, status_code=400)
    state.reset(keep_config=keep_config)
    return JSONResponse({"reset": True, "keep_config": keep_config})


class _ResetRequest(_Strict):
    keep_config: bool = True
