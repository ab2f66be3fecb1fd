"""Signature verification against signatures made by independent code.

Each provider's algorithm is written out here from its documentation (Standard Webhooks
uses the reference ``standardwebhooks`` package), never with ``sign_request``; that
function is tested separately, by verifying what it produces.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from app.config.models import Scheme, VerifySpec
from app.config.selectors import Selector
from app.ingest.schemes import SIGNED_CONTENT, SignatureError, sign_request
from app.ingest.signatures import verify_signature

NOW = 1_700_000_000  # 2023-11-14T22:13:20Z
BODY = b'{"id":"evt_1","type":"order.paid","email":"ann@example.com"}'
STANDARD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_STANDARD_SECRET = "whsec_" + base64.b64encode(b"another-key-of-24-bytes!").decode()

Headers = dict[str, str]
Signer = Callable[[str, bytes, int], Headers]


def _mac(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


# --- each provider's documented algorithm, written out independently ----------------------


def shopify_headers(secret: str, body: bytes, _ts: int) -> Headers:
    return {"x-shopify-hmac-sha256": base64.b64encode(_mac(secret, body)).decode()}


def woocommerce_headers(secret: str, body: bytes, _ts: int) -> Headers:
    return {"x-wc-webhook-signature": base64.b64encode(_mac(secret, body)).decode()}


def stripe_headers(secret: str, body: bytes, ts: int) -> Headers:
    return {"stripe-signature": f"t={ts},v1={_mac(secret, f'{ts}.'.encode() + body).hex()}"}


def standard_headers(secret: str, body: bytes, ts: int) -> Headers:
    moment = datetime.fromtimestamp(ts, tz=UTC)
    signature = Webhook(secret).sign("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", moment, body.decode())
    return {
        "webhook-id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
        "webhook-timestamp": str(ts),
        "webhook-signature": signature,
    }


def hmac_hex_headers(secret: str, body: bytes, _ts: int) -> Headers:
    return {"x-signature": _mac(secret, body).hex()}


def clickfunnels_headers(secret: str, body: bytes, ts: int) -> Headers:
    return {
        "x-webhook-clickfunnels-timestamp": str(ts),
        "x-webhook-clickfunnels-signature": _mac(secret, f"{ts}.".encode() + body).hex(),
    }


def paddle_headers(secret: str, body: bytes, ts: int) -> Headers:
    return {"paddle-signature": f"ts={ts};h1={_mac(secret, f'{ts}:'.encode() + body).hex()}"}


@dataclass(frozen=True)
class SchemeCase:
    spec: VerifySpec
    sign: Signer
    wrong_secret: str
    tolerance: int | None  # None: the scheme signs no timestamp
    malformed: list[Headers] = field(default_factory=list)  # headers to overlay on a valid set

    @property
    def secret(self) -> str:
        assert self.spec.secret is not None
        return self.spec.secret

    def __str__(self) -> str:
        return self.spec.scheme


VALID_HEX = "ab" * 32
CASES = [
    SchemeCase(
        VerifySpec(scheme="shopify", secret="shpss_top_secret"),
        shopify_headers,
        "shpss_wrong",
        None,
        [{"x-shopify-hmac-sha256": "not base64!"}, {"x-shopify-hmac-sha256": "abc"}],
    ),
    SchemeCase(
        VerifySpec(scheme="woocommerce", secret="wc-secret"),
        woocommerce_headers,
        "wc-wrong",
        None,
        [{"x-wc-webhook-signature": "%%%"}],
    ),
    SchemeCase(
        VerifySpec(scheme="stripe", secret="whsec_stripe_test_secret"),
        stripe_headers,
        "whsec_wrong",
        300,
        [
            {"stripe-signature": "garbage"},
            {"stripe-signature": f"v1={VALID_HEX}"},
            {"stripe-signature": f"t={NOW}"},
            {"stripe-signature": f"t=soon,v1={VALID_HEX}"},
            {"stripe-signature": f"t=-{NOW},v1={VALID_HEX}"},
            {"stripe-signature": f"t={NOW},t={NOW},v1={VALID_HEX}"},
            {"stripe-signature": f"t={NOW},v1=not-hex"},
            {"stripe-signature": f"t={NOW},,v1={VALID_HEX}"},
        ],
    ),
    SchemeCase(
        VerifySpec(scheme="standard", secret=STANDARD_SECRET),
        standard_headers,
        OTHER_STANDARD_SECRET,
        300,
        [
            {"webhook-timestamp": "yesterday"},
            {"webhook-timestamp": "1.7e9"},
            {"webhook-signature": "v1"},
            {"webhook-signature": "v2,abcd"},
            {"webhook-signature": "v1,***"},
        ],
    ),
    SchemeCase(
        VerifySpec(scheme="hmac", secret="legacy-secret", header="X-Signature"),
        hmac_hex_headers,
        "legacy-wrong",
        None,
        [{"x-signature": "zz" * 32}, {"x-signature": "abc"}],
    ),
    SchemeCase(
        VerifySpec(scheme="clickfunnels", secret="cf-secret"),
        clickfunnels_headers,
        "cf-wrong",
        600,
        [
            {"x-webhook-clickfunnels-timestamp": "not a time"},
            {"x-webhook-clickfunnels-timestamp": "2023-13-45T99:00:00Z"},
            {"x-webhook-clickfunnels-signature": "xyz"},
        ],
    ),
    SchemeCase(
        VerifySpec(scheme="paddle", secret="pdl_ntfset_secret"),
        paddle_headers,
        "pdl_ntfset_wrong",
        300,
        [
            {"paddle-signature": "nonsense"},
            {"paddle-signature": f"h1={VALID_HEX}"},
            {"paddle-signature": f"ts={NOW}"},
            {"paddle-signature": f"ts=abc;h1={VALID_HEX}"},
            {"paddle-signature": f"ts={NOW};h1=qq"},
        ],
    ),
]
BY_SCHEME = {case.spec.scheme: case for case in CASES}
TIMESTAMPED = [case for case in CASES if case.tolerance is not None]


def _verify(spec: VerifySpec, body: bytes, headers: Headers, now: float = NOW) -> None:
    verify_signature(spec, raw_body=body, headers=headers, now=now)


def _rejected(case: SchemeCase, body: bytes, headers: Headers, now: float = NOW) -> str:
    """The reason given, after checking it leaks neither the secret nor the right signature."""
    with pytest.raises(SignatureError) as caught:
        _verify(case.spec, body, headers, now)
    reason = str(caught.value)
    assert case.secret not in reason
    for genuine in case.sign(case.secret, body, int(now)).values():
        if len(genuine) > 20:
            assert genuine not in reason
    assert caught.value.status_code == 401
    return reason


# --- every signed scheme ------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_valid_signature_is_accepted(case: SchemeCase) -> None:
    _verify(case.spec, BODY, case.sign(case.secret, BODY, NOW))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_tampered_body_is_rejected(case: SchemeCase) -> None:
    headers = case.sign(case.secret, BODY, NOW)
    tampered = BODY.replace(b"ann@", b"eve@")
    assert _rejected(case, tampered, headers) == "signature does not match"


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_signature_made_with_another_secret_is_rejected(case: SchemeCase) -> None:
    headers = case.sign(case.wrong_secret, BODY, NOW)
    assert _rejected(case, BODY, headers) == "signature does not match"


@pytest.mark.parametrize("case", CASES, ids=str)
def test_each_missing_header_is_named(case: SchemeCase) -> None:
    signed = case.sign(case.secret, BODY, NOW)
    for name in signed:
        headers = {k: v for k, v in signed.items() if k != name}
        reason = _rejected(case, BODY, headers)
        assert reason.lower() == f"missing header {name}"
        assert _rejected(case, BODY, {**headers, name: ""}).lower() == f"missing header {name}"


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_malformed_header_is_a_signature_error(case: SchemeCase) -> None:
    for overlay in case.malformed:
        headers = {**case.sign(case.secret, BODY, NOW), **overlay}
        reason = _rejected(case, BODY, headers)
        assert reason.startswith("malformed "), (overlay, reason)


@pytest.mark.parametrize("case", TIMESTAMPED, ids=str)
@pytest.mark.parametrize("direction", [-1, 1], ids=["stale", "future"])
def test_a_timestamp_beyond_the_tolerance_is_rejected(case: SchemeCase, direction: int) -> None:
    assert case.tolerance is not None
    signed_at = NOW + direction * (case.tolerance + 1)
    headers = case.sign(case.secret, BODY, signed_at)
    reason = _rejected(case, BODY, headers)
    assert reason == f"timestamp outside the ±{case.tolerance} s tolerance"


@pytest.mark.parametrize("case", TIMESTAMPED, ids=str)
@pytest.mark.parametrize("offset_from_edge", [0, 1, 60])
def test_a_timestamp_within_the_tolerance_is_accepted(
    case: SchemeCase, offset_from_edge: int
) -> None:
    assert case.tolerance is not None
    for direction in (-1, 1):
        signed_at = NOW + direction * (case.tolerance - offset_from_edge)
        _verify(case.spec, BODY, case.sign(case.secret, BODY, signed_at))


@pytest.mark.parametrize("case", TIMESTAMPED, ids=str)
def test_tolerance_seconds_overrides_the_default_window(case: SchemeCase) -> None:
    spec = case.spec.model_copy(update={"tolerance_seconds": 30})
    _verify(spec, BODY, case.sign(case.secret, BODY, NOW - 30))
    with pytest.raises(SignatureError, match="±30 s"):
        _verify(spec, BODY, case.sign(case.secret, BODY, NOW - 31))


# --- scheme by scheme ---------------------------------------------------------------------


def test_stripe_accepts_when_any_of_several_v1_signatures_matches() -> None:
    secret = "whsec_stripe_test_secret"
    good = _mac(secret, f"{NOW}.".encode() + BODY).hex()
    old = _mac("whsec_rotated_out", f"{NOW}.".encode() + BODY).hex()
    spec = VerifySpec(scheme="stripe", secret=secret)
    header = f"t={NOW}, v1={old}, v1={good}, v0={VALID_HEX}"
    _verify(spec, BODY, {"stripe-signature": header})
    with pytest.raises(SignatureError, match="does not match"):
        _verify(spec, BODY, {"stripe-signature": f"t={NOW},v1={old},v1=zz,v0={good}"})


def test_stripe_signs_the_timestamp_so_changing_it_breaks_the_signature() -> None:
    spec = VerifySpec(scheme="stripe", secret="whsec_stripe_test_secret")
    header = stripe_headers("whsec_stripe_test_secret", BODY, NOW)["stripe-signature"]
    moved = header.replace(f"t={NOW}", f"t={NOW + 5}")
    with pytest.raises(SignatureError, match="does not match"):
        _verify(spec, BODY, {"stripe-signature": moved})


def test_paddle_accepts_when_any_of_several_h1_signatures_matches() -> None:
    secret = "pdl_ntfset_secret"
    good = _mac(secret, f"{NOW}:".encode() + BODY).hex()
    old = _mac("pdl_ntfset_old", f"{NOW}:".encode() + BODY).hex()
    spec = VerifySpec(scheme="paddle", secret=secret)
    _verify(spec, BODY, {"paddle-signature": f"ts={NOW};h1={old};h1={good}"})
    with pytest.raises(SignatureError, match="does not match"):
        _verify(spec, BODY, {"paddle-signature": f"ts={NOW};h1={old}"})


def test_standard_accepts_any_matching_entry_and_ignores_other_versions() -> None:
    spec = VerifySpec(scheme="standard", secret=STANDARD_SECRET)
    headers = standard_headers(STANDARD_SECRET, BODY, NOW)
    stale_key = standard_headers(OTHER_STANDARD_SECRET, BODY, NOW)["webhook-signature"]
    headers["webhook-signature"] = f"v1a,AAAA {stale_key} {headers['webhook-signature']}"
    _verify(spec, BODY, headers)


def test_standard_signs_the_message_id() -> None:
    spec = VerifySpec(scheme="standard", secret=STANDARD_SECRET)
    headers = {**standard_headers(STANDARD_SECRET, BODY, NOW), "webhook-id": "msg_other"}
    with pytest.raises(SignatureError, match="does not match"):
        _verify(spec, BODY, headers)


def test_standard_secret_without_base64_padding_still_works() -> None:
    key = base64.b64encode(b"twenty-five bytes of key!").decode()
    assert key.endswith("=")
    padded, unpadded = "whsec_" + key, "whsec_" + key.rstrip("=")
    spec = VerifySpec(scheme="standard", secret=unpadded)
    _verify(spec, BODY, standard_headers(padded, BODY, NOW))


def test_clickfunnels_iso_timestamp_is_signed_exactly_as_sent() -> None:
    secret = "cf-secret"
    spec = VerifySpec(scheme="clickfunnels", secret=secret)
    for sent in (
        "2023-11-14T22:13:20Z",
        "2023-11-14T22:13:20.000+00:00",
        "2023-11-14T17:13:20-05:00",
    ):
        signature = _mac(secret, f"{sent}.".encode() + BODY).hex()
        headers = {
            "x-webhook-clickfunnels-timestamp": sent,
            "x-webhook-clickfunnels-signature": signature,
        }
        _verify(spec, BODY, headers)
        # The same instant signed in its Unix spelling is not what was sent.
        unix_spelling = clickfunnels_headers(secret, BODY, NOW)
        headers["x-webhook-clickfunnels-signature"] = unix_spelling[
            "x-webhook-clickfunnels-signature"
        ]
        with pytest.raises(SignatureError, match="does not match"):
            _verify(spec, BODY, headers)


def test_clickfunnels_iso_timestamp_outside_600_seconds_is_rejected() -> None:
    secret = "cf-secret"
    spec = VerifySpec(scheme="clickfunnels", secret=secret)
    sent = "2023-11-14T22:23:21Z"  # NOW + 601 s
    headers = {
        "x-webhook-clickfunnels-timestamp": sent,
        "x-webhook-clickfunnels-signature": _mac(secret, f"{sent}.".encode() + BODY).hex(),
    }
    with pytest.raises(SignatureError, match="±600 s"):
        _verify(spec, BODY, headers)
    _verify(spec, BODY, headers, now=NOW + 2)


def test_hmac_with_a_prefix_and_either_case_of_hex() -> None:
    spec = VerifySpec(
        scheme="hmac", secret="gh-secret", header="X-Hub-Signature-256", prefix="sha256="
    )
    digest = _mac("gh-secret", BODY).hex()
    _verify(spec, BODY, {"x-hub-signature-256": f"sha256={digest}"})
    _verify(spec, BODY, {"x-hub-signature-256": f"sha256={digest.upper()}"})
    _verify(spec, BODY, {"x-hub-signature-256": f"SHA256={digest}"})
    with pytest.raises(SignatureError, match="does not start with 'sha256='"):
        _verify(spec, BODY, {"x-hub-signature-256": digest})


def test_hmac_with_base64_encoding() -> None:
    spec = VerifySpec(scheme="hmac", secret="b64-secret", header="x-sig", encoding="base64")
    digest = _mac("b64-secret", BODY)
    _verify(spec, BODY, {"x-sig": base64.b64encode(digest).decode()})
    with pytest.raises(SignatureError, match="malformed x-sig header"):
        _verify(spec, BODY, {"x-sig": digest.hex() + "!"})
    with pytest.raises(SignatureError, match="does not match"):
        _verify(spec, BODY, {"x-sig": base64.b64encode(_mac("other", BODY)).decode()})


def test_token_is_compared_with_the_secret() -> None:
    spec = VerifySpec(scheme="token", secret="s3cret-word", at=Selector("body.thrivecart_secret"))
    verify_signature(spec, raw_body=BODY, headers={}, token_value="s3cret-word")
    for wrong in ("s3cret-wor", "S3CRET-WORD", "s3cret-word "):
        with pytest.raises(SignatureError, match=r"^token does not match$"):
            verify_signature(spec, raw_body=BODY, headers={}, token_value=wrong)
    for missing in (None, ""):
        with pytest.raises(SignatureError, match=r"^missing token$"):
            verify_signature(spec, raw_body=BODY, headers={}, token_value=missing)


def test_a_numeric_token_found_in_json_matches_its_string_secret() -> None:
    spec = VerifySpec(scheme="token", secret="12345", at=Selector("query.token"))
    verify_signature(spec, raw_body=b"", headers={}, token_value=12345)


def test_scheme_none_accepts_anything_leaving_ip_checks_to_the_caller() -> None:
    verify_signature(VerifySpec(scheme="none"), raw_body=b"anything", headers={})


# --- sign_request -------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=str)
def test_sign_request_output_verifies(case: SchemeCase) -> None:
    headers = sign_request(case.spec, BODY, now=NOW)
    _verify(case.spec, BODY, {name.lower(): value for name, value in headers.items()})
    assert set(map(str.lower, headers)) == set(case.sign(case.secret, BODY, NOW))


def test_sign_request_uses_each_senders_header_names() -> None:
    assert list(sign_request(BY_SCHEME["shopify"].spec, BODY)) == ["X-Shopify-Hmac-SHA256"]
    assert list(sign_request(BY_SCHEME["stripe"].spec, BODY)) == ["Stripe-Signature"]
    assert list(sign_request(BY_SCHEME["paddle"].spec, BODY)) == ["Paddle-Signature"]


def test_sign_request_standard_is_accepted_by_the_reference_library() -> None:
    spec = VerifySpec(scheme="standard", secret=STANDARD_SECRET)
    headers = sign_request(spec, BODY)  # the reference checks against the real clock
    assert headers["webhook-id"].startswith("msg_")
    assert Webhook(STANDARD_SECRET).verify(BODY, headers) == {
        "id": "evt_1",
        "type": "order.paid",
        "email": "ann@example.com",
    }
    assert sign_request(spec, BODY, message_id="msg_fixed")["webhook-id"] == "msg_fixed"


def test_sign_request_matches_the_independent_algorithms() -> None:
    for case in CASES:
        produced = sign_request(
            case.spec, BODY, now=NOW, message_id="msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
        )
        lowered = {name.lower(): value for name, value in produced.items()}
        assert lowered == case.sign(case.secret, BODY, NOW), case.spec.scheme


def test_every_signed_scheme_is_checked_against_its_independent_algorithm() -> None:
    # A new scheme gets its signed content once in app/ingest/schemes.py, and a case here.
    signed = set(get_args(Scheme)) - {"token", "none"}
    assert signed == set(SIGNED_CONTENT) == {case.spec.scheme for case in CASES}


def test_sign_request_has_no_headers_for_token_and_none() -> None:
    token = VerifySpec(scheme="token", secret="t", at=Selector("query.token"))
    assert sign_request(token, BODY) == {}
    assert sign_request(VerifySpec(scheme="none"), BODY) == {}


# --- properties ---------------------------------------------------------------------------

HEADER_SHAPES = {
    "x-shopify-hmac-sha256": r"[A-Za-z0-9+/]{43}=",
    "x-wc-webhook-signature": r"[A-Za-z0-9+/]{43}=",
    "stripe-signature": rf"t={NOW},v1=[0-9a-f]{{64}}(,v1=[0-9a-fA-F]{{64}})?",
    "webhook-id": r"msg_[A-Za-z0-9]{10}",
    "webhook-timestamp": str(NOW),
    "webhook-signature": r"v1,[A-Za-z0-9+/]{43}=( v1,[A-Za-z0-9+/=]{0,44})?",
    "x-signature": r"[0-9a-fA-F]{64}",
    "x-webhook-clickfunnels-timestamp": rf"{NOW}|2023-11-14T22:1[0-9]:[0-5][0-9]Z",
    "x-webhook-clickfunnels-signature": r"[0-9a-f]{64}",
    "paddle-signature": rf"ts={NOW};h1=[0-9a-f]{{64}}(;h1=[0-9a-f]{{0,64}})?",
}


def _header_value(name: str) -> st.SearchStrategy[str]:
    shaped = st.from_regex(HEADER_SHAPES[name], fullmatch=True)
    return st.one_of(shaped, st.text(max_size=120), st.just(""))


@st.composite
def forged_requests(draw: st.DrawFn) -> tuple[SchemeCase, bytes, Headers]:
    case = draw(st.sampled_from(CASES))
    body = draw(st.binary(max_size=300))
    names = case.sign(case.secret, b"", NOW)
    present = st.sampled_from([True, True, True, False])  # now and then a header is missing
    headers = {name: draw(_header_value(name)) for name in names if draw(present)}
    return case, body, headers


@settings(max_examples=600, deadline=None)
@given(forged_requests())
def test_random_signature_headers_are_never_accepted(
    forged: tuple[SchemeCase, bytes, Headers],
) -> None:
    case, body, headers = forged
    with pytest.raises(SignatureError):
        _verify(case.spec, body, headers)


@settings(max_examples=300, deadline=None)
@given(
    case=st.sampled_from(CASES),
    body=st.text(max_size=300).map(str.encode),  # text: the reference signer takes str
    other_key=st.binary(min_size=1, max_size=40),
)
def test_signatures_made_without_the_secret_are_never_accepted(
    case: SchemeCase, body: bytes, other_key: bytes
) -> None:
    if case.spec.scheme == "standard":
        other_secret = "whsec_" + base64.b64encode(other_key).decode()
    else:
        other_secret = other_key.hex()
    if other_secret == case.secret:
        return
    headers = case.sign(other_secret, body, NOW)
    with pytest.raises(SignatureError):
        _verify(case.spec, body, headers)
