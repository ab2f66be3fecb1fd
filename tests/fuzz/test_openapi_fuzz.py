"""Schemathesis against the relay's own OpenAPI schema, in-process over ASGI: no request
it can generate makes the relay answer 5xx, and every 4xx is a complete problem+json.

The admin token is configured (and sent) so /admin is exercised past authentication;
path parameters named ``source`` are mostly mapped onto configured sources so the ingest
path gets past "unknown source". Unauthenticated /admin answers are tested in tests/admin.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.main import create_app
from tests.conftest import make_config, make_settings

schemathesis = pytest.importorskip("schemathesis", reason="pip install -e '.[test]'")
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.python import asgi  # noqa: E402

ADMIN_TOKEN = "fuzz-admin-token-7e6d5c4b3a291807"
PROBLEM_FIELDS = {"type", "title", "status", "detail"}
SOURCES = sorted(make_config().sources)
EXAMPLES_PER_OPERATION = 40  # about 10 operations: well under a minute in-process


@pytest.fixture(scope="module")
def relay_schema(fuzz_database_url: str) -> Iterator[Any]:
    """The relay's schema, served in-process (on SQLite, then on PostgreSQL)."""
    app = create_app(
        make_settings(fuzz_database_url, admin_token=ADMIN_TOKEN),
        config=make_config(),
        run_worker=False,
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    yield schema
    asgi.shutdown_lifespans()  # close the store schemathesis's lifespan opened


def test_no_request_makes_the_relay_fail_or_answer_without_a_problem(relay_schema: Any) -> None:
    operations = [result.ok() for result in relay_schema.get_all_operations()]
    assert len(operations) >= 8
    for operation in operations:
        _fuzz(operation)


def _fuzz(operation: Any) -> None:
    # schemathesis's own pytest loader (from_fixture) does not run on pytest 9, so each
    # operation gets its own bounded hypothesis run here.
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(case=_cases(operation))
    def run(case: Any) -> None:
        _assert_answer_is_sound(case)

    run()


def _cases(operation: Any) -> st.SearchStrategy[Any]:
    """Requests the schema allows and, where it has parameters to break, requests it does
    not (wrong types, missing required values): both must get a sound answer."""
    return st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )


def _assert_answer_is_sound(case: Any) -> None:
    source = (case.path_parameters or {}).get("source")
    if isinstance(source, str):
        # Random names only ever meet "unknown source"; most cases use a real one instead.
        pick = zlib.crc32(source.encode())
        if pick % 5:
            case.path_parameters["source"] = SOURCES[pick % len(SOURCES)]
    response = case.call(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    where = f"{case.method} {case.formatted_path}"
    assert response.status_code < 500, f"{where} answered {response.status_code}: {response.text}"
    if 400 <= response.status_code < 500 and case.method != "HEAD":
        content_type = response.headers.get("content-type", [""])[0]  # lists of values
        assert content_type.startswith("application/problem+json"), (
            f"{where} answered {response.status_code} as {content_type!r}: {response.text}"
        )
        problem = json.loads(response.content)
        assert set(problem) >= PROBLEM_FIELDS, f"{where}: {problem}"
        assert problem["status"] == response.status_code


def test_the_schema_has_the_operations_the_fuzzer_covers(relay_schema: Any) -> None:
    """The fuzz test above is only as wide as the schema: fail loudly if it shrinks."""
    paths = set(relay_schema.raw_schema["paths"])
    assert {"/hooks/{source}", "/healthz", "/readyz", "/admin/events"} <= paths
