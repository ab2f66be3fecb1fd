"""Hypothesis on the ingest path past the signature: any correctly signed body, JSON or
not, gets a sound answer (never 5xx, errors as problem+json), and what a 202 stored is
exactly what was sent."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.ingest.signatures import sign_request
from app.main import create_app
from tests.conftest import make_config, make_settings
from tests.fuzz.conftest import DERANDOMIZE

ADMIN_TOKEN = "fuzz-admin-token-7e6d5c4b3a291807"
PROBLEM_FIELDS = {"type", "title", "status", "detail"}
CONFIG = make_config()
# Sources a sender signs (token and none carry no signature header).
SIGNED_SOURCES = sorted(
    name for name, s in CONFIG.sources.items() if s.verify.scheme not in ("token", "none")
)
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=DERANDOMIZE,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)
# Bodies shaped like the configured routes expect, so planning gets exercised too.
orders = st.fixed_dictionaries(
    {"event": st.sampled_from(["sale", "orders/paid", "member.created", "x"]),
     "email": st.emails() | st.text(max_size=20) | st.integers() | st.none()},
    optional={"data": json_values, "customer": json_values, "type": json_values},
)  # fmt: skip


class SyncRelay:
    """The relay app in-process, called from hypothesis's synchronous tests: its event
    loop runs in a thread (an anyio portal) for the whole module."""

    def __init__(self, portal: BlockingPortal, client: httpx.AsyncClient) -> None:
        self.portal = portal
        self.client = client

    def post(self, path: str, raw: bytes, headers: dict[str, str]) -> httpx.Response:
        return self.portal.call(
            functools.partial(self.client.post, path, content=raw, headers=headers)
        )

    def get(self, path: str, headers: dict[str, str]) -> httpx.Response:
        return self.portal.call(functools.partial(self.client.get, path, headers=headers))


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncRelay]:
    db: Path = tmp_path_factory.mktemp("ingest-fuzz") / "relay.db"
    settings_ = make_settings(f"sqlite:///{db}", admin_token=ADMIN_TOKEN)
    app = create_app(settings_, config=CONFIG, run_worker=False)
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 50000))
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app.router.lifespan_context(app)),
    ):
        client = httpx.AsyncClient(transport=transport, base_url="http://relay")
        try:
            yield SyncRelay(portal, client)
        finally:
            portal.call(client.aclose)


def _post_signed(client: SyncRelay, source: str, raw: bytes, content_type: str) -> Any:
    headers = sign_request(CONFIG.sources[source].verify, raw)
    headers["content-type"] = content_type
    return client.post(f"/hooks/{source}", raw, headers)


def _assert_sound(response: Any) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")
        assert set(response.json()) >= PROBLEM_FIELDS


def _stored_payload(client: SyncRelay, event_id: str) -> Any:
    answer = client.get(f"/admin/events/{event_id}", {"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert answer.status_code == 200, answer.text
    return answer.json()["payload"]


@FUZZ
@given(source=st.sampled_from(SIGNED_SOURCES), body=json_values | orders)
def test_a_signed_json_body_is_stored_exactly_or_refused_soundly(
    client: SyncRelay, source: str, body: Any
) -> None:
    response = _post_signed(client, source, json.dumps(body).encode(), "application/json")
    _assert_sound(response)
    if response.status_code != 202:
        return
    answer = response.json()
    if "event_ids" in answer:  # a JSON array: one event per element
        assert isinstance(body, list)
        stored = [_stored_payload(client, event_id) for event_id in answer["event_ids"]]
        assert stored == body
    else:
        assert _stored_payload(client, answer["event_id"]) == body


@FUZZ
@given(
    source=st.sampled_from(SIGNED_SOURCES),
    raw=st.binary(max_size=300) | st.text(max_size=300).map(str.encode),
    content_type=st.sampled_from(
        ["application/json", "application/x-www-form-urlencoded", "text/plain",
         "application/json; charset=latin-1", "multipart/form-data", ""]
    ),
)  # fmt: skip
def test_any_signed_bytes_get_a_sound_answer(
    client: SyncRelay, source: str, raw: bytes, content_type: str
) -> None:
    _assert_sound(_post_signed(client, source, raw, content_type))


def test_every_element_of_an_array_with_a_header_event_id_is_stored(client: SyncRelay) -> None:
    body = [
        {"type": "member.created", "data": {"email": "first@example.com"}},
        {"type": "member.created", "data": {"email": "second@example.com"}},
    ]
    response = _post_signed(client, "members", json.dumps(body).encode(), "application/json")
    assert response.status_code == 202
    ids = response.json()["event_ids"]
    assert [_stored_payload(client, event_id) for event_id in ids] == body
