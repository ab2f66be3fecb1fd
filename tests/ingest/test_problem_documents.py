"""One problem document for every path: the hook fast path's bytes, FastAPI's answers
and the server's own refusals are built by ``app.api.problems`` alone."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import FastAPI

from app.api.problems import (
    UNEXPECTED_DETAIL,
    Problem,
    error_headers,
    install_problem_handlers,
    problem_body,
    problem_for,
)
from app.errors import (
    MethodNotAllowed,
    NotFound,
    RelayError,
    RequestTimeout,
    TooManyRequests,
    Unauthorized,
)

ERRORS = [
    NotFound("no source named 'x' is configured"),
    MethodNotAllowed("source 'x' accepts POST, HEAD, not PUT", allow="POST, HEAD"),
    RequestTimeout("the body took over 30 s"),
    TooManyRequests("slow down", retry_after=7),
    Unauthorized("webhook not verified: signature does not match — «ü»"),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_the_hook_path_and_fastapi_answer_the_same_document(error: RelayError) -> None:
    fast = json.loads(problem_body(error))
    answer = problem_for(error)
    assert fast == json.loads(bytes(answer.body))
    assert Problem.model_validate(fast).status == error.status_code == answer.status_code
    assert fast["type"] == f"https://relay.invalid/problems/{error.slug}"
    assert answer.headers["content-type"] == "application/problem+json"


def test_each_error_carries_its_headers_on_every_path() -> None:
    assert error_headers(MethodNotAllowed("no", allow="POST, HEAD")) == {"Allow": "POST, HEAD"}
    assert error_headers(RequestTimeout("slow")) == {"Connection": "close"}
    assert error_headers(TooManyRequests("later", retry_after=7)) == {"Retry-After": "7"}
    assert error_headers(NotFound("gone")) == {}
    challenge = {"WWW-Authenticate": "Bearer"}
    answer = problem_for(MethodNotAllowed("no", allow="GET, POST, HEAD"), challenge)
    assert answer.headers["allow"] == "GET, POST, HEAD"
    assert answer.headers["www-authenticate"] == "Bearer"


async def test_fastapis_own_answers_use_the_same_type_uris_as_the_hook_path() -> None:
    """A failure nobody expected, an unknown path, a wrong method and a bad query are
    typed as the hook path types them (``/problems/internal``, not ``/problems/500``)."""
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("unexpected")

    @app.get("/count")
    async def count(n: int) -> int:
        return n

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://relay") as client:
        hook_500 = json.loads(problem_body(RelayError(UNEXPECTED_DETAIL)))
        assert (await client.get("/boom")).json() == hook_500
        not_found = json.loads(problem_body(NotFound("x")))["type"]
        assert (await client.get("/nowhere")).json()["type"] == not_found
        wrong_method = await client.post("/boom")
        assert wrong_method.json()["type"].endswith("/problems/method-not-allowed")
        assert wrong_method.headers["allow"] == "GET"  # RFC 9110: a 405 names what is allowed
        bad_query = (await client.get("/count?n=x")).json()["type"]
        assert bad_query.endswith("/problems/unprocessable-content")
