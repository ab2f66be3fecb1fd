"""XML-RPC through its sunset: the same answer is a brownout before RELAY_KEAP_XMLRPC_SUNSET
and the retired API after it (the client's "today" is injected)."""

from __future__ import annotations

from datetime import date

import httpx
import pytest
import respx

from app.keap.client import KeapClient
from app.keap.errors import (
    KeapAuthError,
    KeapError,
    KeapPermanentError,
    KeapRetiredError,
    KeapThrottledError,
    KeapTransientError,
)
from app.keap.transport import KeapTransport

from .keap_fakes import (
    BASE_URL,
    KEY_CREDENTIALS,
    TOKEN_URL,
    XMLRPC_URL,
    xmlrpc_answer,
    xmlrpc_fault,
)

SUNSET = date(2026, 12, 31)
BEFORE = date(2026, 12, 31)  # the day itself still counts as before
AFTER = date(2027, 1, 1)

APIGEE_404 = {
    "fault": {
        "faultstring": "Unable to identify proxy for host: default and url: /crm/xmlrpc/v1",
        "detail": {"errorcode": "messaging.adaptors.http.flow.ApplicationNotFound"},
    }
}
HTML_PAGE = b"<html><body><h1>Service Unavailable</h1></body></html>"


def client_on(http: httpx.AsyncClient, today: date) -> KeapClient:
    return KeapClient(
        KeapTransport(
            http,
            base_url=BASE_URL,
            token_url=TOKEN_URL,
            credentials=KEY_CREDENTIALS,
            xmlrpc_sunset=SUNSET,
            today=lambda: today,
        )
    )


async def run_action_set(http: httpx.AsyncClient, today: date) -> KeapError | None:
    try:
        await client_on(http, today).run_action_set(7, 42)
    except KeapError as exc:
        return exc
    return None


RETIRED_ANSWERS = [
    pytest.param(httpx.Response(404, json=APIGEE_404), id="404-apigee-json"),
    pytest.param(httpx.Response(410, text="Gone"), id="410"),
    pytest.param(httpx.Response(503, content=HTML_PAGE), id="503-html"),
    pytest.param(httpx.Response(503), id="503-empty"),
    pytest.param(httpx.Response(500, json={"message": "XML-RPC is retired"}), id="500-json"),
    pytest.param(httpx.Response(200, content=HTML_PAGE), id="200-html"),
]


@pytest.mark.parametrize("answer", RETIRED_ANSWERS)
async def test_after_the_sunset_a_non_xmlrpc_answer_is_the_retired_api(
    http: httpx.AsyncClient, keap: respx.MockRouter, answer: httpx.Response
) -> None:
    keap.post(XMLRPC_URL).mock(return_value=answer)
    error = await run_action_set(http, AFTER)
    assert isinstance(error, KeapRetiredError)
    assert isinstance(error, KeapPermanentError)  # no retry, no 72 h wait
    assert "retired XML-RPC" in error.detail
    assert "docs/action-sets.md" in error.detail
    assert f"HTTP {answer.status_code}" in error.detail


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (httpx.Response(503, content=HTML_PAGE), KeapTransientError),
        (httpx.Response(200, content=HTML_PAGE), KeapTransientError),
        # A brownout rehearses the retirement: it answers as the retired API would.
        (httpx.Response(404, json=APIGEE_404), KeapTransientError),
        (httpx.Response(410, text="Gone"), KeapTransientError),
        (httpx.Response(400, content=HTML_PAGE), KeapTransientError),
        # …but the gateway's own answers and real XML-RPC faults keep their meaning.
        (httpx.Response(429, json={"message": "Quota Exceeded"}), KeapThrottledError),
        (httpx.Response(401, json={"fault": {"faultstring": "Invalid ApiKey"}}), KeapAuthError),
        (xmlrpc_fault(5, "[RecordNotFound]Action set 42"), KeapPermanentError),
    ],
)
async def test_before_the_sunset_a_brownout_is_retried_and_the_rest_classified_as_always(
    http: httpx.AsyncClient, keap: respx.MockRouter, answer: httpx.Response, kind: type
) -> None:
    keap.post(XMLRPC_URL).mock(return_value=answer)
    error = await run_action_set(http, BEFORE)
    assert type(error) is kind


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (httpx.Response(429, json={"message": "Quota Exceeded"}), KeapThrottledError),
        (httpx.Response(401, json={"fault": {"faultstring": "Invalid ApiKey"}}), KeapAuthError),
        (httpx.Response(403, text="<h1>Developer Inactive</h1>"), KeapAuthError),
    ],
)
async def test_after_the_sunset_the_gateways_own_answers_keep_their_meaning(
    http: httpx.AsyncClient, keap: respx.MockRouter, answer: httpx.Response, kind: type
) -> None:
    keap.post(XMLRPC_URL).mock(return_value=answer)
    error = await run_action_set(http, AFTER)
    assert type(error) is kind


async def test_after_the_sunset_a_working_xmlrpc_api_still_runs_action_sets(
    http: httpx.AsyncClient, keap: respx.MockRouter
) -> None:
    route = keap.post(XMLRPC_URL).mock(
        return_value=xmlrpc_answer([{"Action": "Apply tag", "Message": "ok", "isError": False}])
    )
    assert await run_action_set(http, AFTER) is None
    assert route.call_count == 1


async def test_after_the_sunset_an_xmlrpc_fault_is_still_read_as_a_fault(
    http: httpx.AsyncClient, keap: respx.MockRouter
) -> None:
    keap.post(XMLRPC_URL).mock(return_value=xmlrpc_fault(5, "[RecordNotFound]Action set 42"))
    error = await run_action_set(http, AFTER)
    assert type(error) is KeapPermanentError
    assert "RecordNotFound" in error.detail
