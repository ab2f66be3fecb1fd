"""Hypothesis on the ingest path, on SQLite and on PostgreSQL: any correctly signed body,
JSON or not — lone surrogates, control characters and NULs included — gets a sound answer
(never 5xx, errors as problem+json), what a 202 stored is exactly what was sent, and the
relay still takes the next webhook; a signature that is right but for one byte of the
body, its timestamp or its id is refused, never accepted."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.ingest.schemes import sign_request
from app.main import create_app
from tests.conftest import make_config, make_settings

ADMIN_TOKEN = "fuzz-admin-token-7e6d5c4b3a291807"
ANSWER_WITHIN = 10.0  # seconds; the relay answers these in milliseconds
PROBLEM_FIELDS = {"type", "title", "status", "detail"}
CONFIG = make_config()
# Sources a sender signs (token and none carry no signature header).
SIGNED_SOURCES = sorted(
    name for name, s in CONFIG.sources.items() if s.verify.scheme not in ("token", "none")
)
# derandomize comes from the "ci" profile under CI (tests/conftest.py).
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))

# st.text() never draws a surrogate: these strings do (a lone one is what a sender that cuts
# a name mid-emoji sends, as a \udXXX escape), and control characters, NUL, BOM and line
# separators more often than chance would.
AWKWARD = ["\x00", "\x1f", "\x7f", "\u2028", "\ufeff", "\ud83d", "\ude00", "\udfff", "\U0001f600"]
strings = st.text(
    st.sampled_from(AWKWARD) | st.characters(codec=None, exclude_categories=()), max_size=30
)


def json_of(text: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.recursive(
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**63), max_value=2**63)
        | st.floats(allow_nan=False, allow_infinity=False)
        | text,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=5)
        ),
        max_leaves=25,
    )


json_values = json_of(strings)
# For the signature tests: webhook-shaped objects a relay reads before it checks the
# signature, so only the signature can be wrong.
webhook_objects = st.dictionaries(st.text(max_size=12), json_of(st.text(max_size=30)), max_size=5)
# Bodies shaped like the configured routes expect, so planning gets exercised too.
orders = st.fixed_dictionaries(
    {"event": st.sampled_from(["sale", "orders/paid", "member.created", "x"]),
     "email": st.emails() | strings | st.integers() | st.none()},
    optional={"data": json_values, "customer": json_values, "type": json_values},
)  # fmt: skip


class SyncRelay:
    """The relay app in-process, called from hypothesis's synchronous tests: its event
    loop runs in a thread (an anyio portal) for the whole module."""

    def __init__(self, portal: BlockingPortal, client: httpx.AsyncClient) -> None:
        self.portal = portal
        self.client = client

    def post(self, path: str, raw: bytes, headers: dict[str, str]) -> httpx.Response:
        return self._call(functools.partial(self.client.post, path, content=raw, headers=headers))

    def get(self, path: str, headers: dict[str, str]) -> httpx.Response:
        return self._call(functools.partial(self.client.get, path, headers=headers))

    def _call(self, request: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
        async def answered_in_time() -> httpx.Response:
            # A request left hanging (a dead writer) fails this example at once, instead
            # of hypothesis replaying it until the suite's timeout.
            with anyio.fail_after(ANSWER_WITHIN):
                return await request()

        return self.portal.call(answered_in_time)


@pytest.fixture(scope="module")
def client(fuzz_database_url: str) -> Iterator[SyncRelay]:
    """One relay for the module's examples (on SQLite, then on PostgreSQL)."""
    yield from _serve(fuzz_database_url)


def _serve(database_url: str) -> Iterator[SyncRelay]:
    settings_ = make_settings(database_url, admin_token=ADMIN_TOKEN)
    app = create_app(settings_, config=CONFIG, run_worker=False)
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 50000))
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app.fastapi.router.lifespan_context(app.fastapi)),
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
@example(source="shop", body={"event": "sale", "email": "ada@example.com", "name": "Ada \ud83d"})
@example(source="members", body={"type": "member.created", "data": {"name": "\udc00\x00"}})
def test_a_signed_json_body_is_stored_exactly_or_refused_soundly(
    client: SyncRelay, source: str, body: Any
) -> None:
    # json.dumps writes a lone surrogate as its \udXXX escape, as senders do.
    response = _post_signed(client, source, json.dumps(body).encode(), "application/json")
    _assert_sound(response)
    if response.status_code == 202:
        answer = response.json()
        if "event_ids" in answer:  # a JSON array: one event per element
            assert isinstance(body, list)
            stored = [_stored_payload(client, event_id) for event_id in answer["event_ids"]]
            assert stored == body
        else:
            assert _stored_payload(client, answer["event_id"]) == body
    _assert_still_accepting(client)


def _assert_still_accepting(client: SyncRelay) -> None:
    """Whatever came before, the next ordinary webhook is stored."""
    plain = {"type": "member.created", "data": {"email": f"{time.monotonic_ns()}@example.com"}}
    response = _post_signed(client, "members", json.dumps(plain).encode(), "application/json")
    assert response.status_code == 202, response.text


@FUZZ
@given(
    source=st.sampled_from(SIGNED_SOURCES),
    raw=st.binary(max_size=300)
    | strings.map(lambda text: text.encode("utf-8", "surrogatepass")),
    content_type=st.sampled_from(
        ["application/json", "application/x-www-form-urlencoded", "text/plain",
         "application/json; charset=latin-1", "multipart/form-data", ""]
    ),
)  # fmt: skip
def test_any_signed_bytes_get_a_sound_answer(
    client: SyncRelay, source: str, raw: bytes, content_type: str
) -> None:
    _assert_sound(_post_signed(client, source, raw, content_type))
    _assert_still_accepting(client)


# Schemes whose signature covers a timestamp, and the headers that carry it.
SIGNED_TIMESTAMP = {"stripe", "standard", "paddle", "clickfunnels"}


@FUZZ
@given(
    source=st.sampled_from(SIGNED_SOURCES),
    body=webhook_objects,
    part=st.sampled_from(["body", "timestamp", "id"]),
    data=st.data(),
)
def test_a_signature_right_but_for_one_byte_is_refused(
    client: SyncRelay, source: str, body: Any, part: str, data: st.DataObject
) -> None:
    spec = CONFIG.sources[source].verify
    raw = json.dumps(body).encode()
    now = int(time.time())
    headers = sign_request(spec, raw, now=now)
    headers["content-type"] = "application/json"
    if part == "timestamp" and spec.scheme not in SIGNED_TIMESTAMP:
        part = "body"
    if part == "id" and spec.scheme != "standard":
        part = "body"
    tampered, tampered_headers = raw, dict(headers)
    if part == "body":
        at = data.draw(st.integers(min_value=0, max_value=len(raw) - 1), label="byte")
        new = data.draw(st.integers(0, 255).filter(lambda b: b != raw[at]), label="value")
        tampered = raw[:at] + bytes([new]) + raw[at + 1 :]
    elif part == "timestamp":  # a second off: still within tolerance, but not what was signed
        other = str(now + data.draw(st.sampled_from([-1, 1]), label="delta"))
        tampered_headers = {
            name: value.replace(f"t={now},", f"t={other},").replace(f"ts={now};", f"ts={other};")
            if value != str(now)
            else other
            for name, value in headers.items()
        }
        assert tampered_headers != headers
    else:
        message_id = headers["webhook-id"]
        at = data.draw(st.integers(min_value=0, max_value=len(message_id) - 1), label="char")
        swap = "a" if message_id[at] != "a" else "b"
        tampered_headers["webhook-id"] = message_id[:at] + swap + message_id[at + 1 :]

    refused = client.post(f"/hooks/{source}", tampered, tampered_headers)
    assert refused.status_code not in (200, 202) or _is_empty(tampered), refused.text
    if part != "body" or _is_json_document(tampered):
        # Readable, so only the signature can be wrong. (A body the change made unreadable
        # may be refused as unreadable first: 400.)
        assert refused.status_code == 401, refused.text
    _assert_sound(refused)
    # As signed, the same request passes the signature check (its content may still be
    # refused, e.g. an empty array): the near miss was refused for its one byte.
    as_signed = client.post(f"/hooks/{source}", raw, headers)
    assert as_signed.status_code != 401, as_signed.text
    _assert_sound(as_signed)


def _is_json_document(raw: bytes) -> bool:
    """An object or array of valid text: a body the relay reads before it checks the
    signature (a lone surrogate escape the change made may be refused as unreadable)."""
    try:
        document = json.loads(raw)
        json.dumps(document, ensure_ascii=False).encode()
    except ValueError:  # UnicodeError included
        return False
    return isinstance(document, dict | list)


def _is_empty(raw: bytes) -> bool:
    """A blank POST is a sender probing the URL: answered 200, nothing stored."""
    return not raw.strip()


def test_every_element_of_an_array_with_a_header_event_id_is_stored(client: SyncRelay) -> None:
    body = [
        {"type": "member.created", "data": {"email": "first@example.com"}},
        {"type": "member.created", "data": {"email": "second@example.com"}},
    ]
    response = _post_signed(client, "members", json.dumps(body).encode(), "application/json")
    assert response.status_code == 202
    ids = response.json()["event_ids"]
    assert [_stored_payload(client, event_id) for event_id in ids] == body
