"""The signature schemes of SPEC §2, each written once: what a sender signs
(``SIGNED_CONTENT``), with which key and how the digest is written (``digest``,
``ENCODING``), and the headers it sends (``sign_request``).

``app.ingest.signatures`` verifies with these same definitions, so what `relay sign`
(and every test sender) produces and what the relay accepts cannot drift apart. The header
layouts are written here and parsed there: the two sides of one format, checked against
each other and against each sender's documented algorithm in tests/ingest/test_signatures.py.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from app.config.models import VerifySpec
from app.errors import Unauthorized

SHOPIFY_HEADER = "X-Shopify-Hmac-SHA256"
WOOCOMMERCE_HEADER = "X-WC-Webhook-Signature"
STRIPE_HEADER = "Stripe-Signature"
PADDLE_HEADER = "Paddle-Signature"
CLICKFUNNELS_SIGNATURE_HEADER = "X-Webhook-ClickFunnels-Signature"
CLICKFUNNELS_TIMESTAMP_HEADER = "X-Webhook-ClickFunnels-Timestamp"
STANDARD_ID_HEADER = "webhook-id"
STANDARD_TIMESTAMP_HEADER = "webhook-timestamp"
STANDARD_SIGNATURE_HEADER = "webhook-signature"


class SignatureError(Unauthorized):
    """str(e) is a reason safe to show the sender: never includes the secret or the expected
    signature. Answers 401 through the RelayError handler."""


@dataclass(frozen=True, slots=True)
class Signed:
    """What a sender signs: the body and, for the schemes that sign them, the timestamp
    (exactly as sent) and the message id."""

    body: bytes
    timestamp: str = ""
    message_id: str = ""


def _body_only(signed: Signed) -> bytes:
    return signed.body


def _timestamp_dot_body(signed: Signed) -> bytes:
    return text_bytes(signed.timestamp) + b"." + signed.body


def _timestamp_colon_body(signed: Signed) -> bytes:
    return text_bytes(signed.timestamp) + b":" + signed.body


def _id_timestamp_body(signed: Signed) -> bytes:
    return text_bytes(f"{signed.message_id}.{signed.timestamp}.") + signed.body


# The bytes each scheme's HMAC is taken over. A timestamp is signed exactly as sent
# (ClickFunnels' may be ISO-8601 as well as Unix seconds).
SIGNED_CONTENT: dict[str, Callable[[Signed], bytes]] = {
    "shopify": _body_only,
    "woocommerce": _body_only,
    "hmac": _body_only,
    "stripe": _timestamp_dot_body,
    "clickfunnels": _timestamp_dot_body,
    "paddle": _timestamp_colon_body,
    "standard": _id_timestamp_body,
}
# How each scheme writes its digest ("hmac": the source's `encoding`).
ENCODING = {
    "shopify": "base64",
    "woocommerce": "base64",
    "standard": "base64",
    "stripe": "hex",
    "clickfunnels": "hex",
    "paddle": "hex",
}


def digest(spec: VerifySpec, signed: Signed) -> bytes:
    """The HMAC-SHA256 of the scheme's signed content, keyed by the source's secret (for
    Standard Webhooks, the key its ``whsec_`` secret encodes)."""
    key = standard_key(spec) if spec.scheme == "standard" else secret_bytes(spec)
    return hmac.new(key, SIGNED_CONTENT[spec.scheme](signed), hashlib.sha256).digest()


def encoding(spec: VerifySpec) -> str:
    """How the scheme writes its digest in the header: "hex" or "base64"."""
    return ENCODING.get(spec.scheme, spec.encoding)


def encoded_digest(spec: VerifySpec, signed: Signed) -> str:
    mac = digest(spec, signed)
    return base64.b64encode(mac).decode("ascii") if encoding(spec) == "base64" else mac.hex()


def sign_request(
    spec: VerifySpec, raw_body: bytes, *, now: float | None = None, message_id: str | None = None
) -> dict[str, str]:
    """The signature headers a sender would attach, under their usual names.

    Empty for "token" and "none": those carry no signature header.
    """
    if spec.scheme not in SIGNED_CONTENT:
        return {}
    timestamp = str(int(time.time() if now is None else now))
    if spec.scheme == "standard":
        message_id = message_id or f"msg_{secrets.token_hex(12)}"
    signed = Signed(raw_body, timestamp, message_id or "")
    return _SIGNATURE_HEADERS[spec.scheme](spec, signed, encoded_digest(spec, signed))


def _shopify_headers(spec: VerifySpec, signed: Signed, mac: str) -> dict[str, str]:
    return {SHOPIFY_HEADER: mac}


def _woocommerce_headers(spec: VerifySpec, signed: Signed, mac: str) -> dict[str, str]:
    return {WOOCOMMERCE_HEADER: mac}


def _hmac_headers(spec: VerifySpec, signed: Signed, mac: str) -> dict[str, str]:
    return {spec.header or "": spec.prefix + mac}


def _stripe_headers(spec: VerifySpec, signed: Signed, mac: str) -> dict[str, str]:
    return {STRIPE_HEADER: f"t={signed.timestamp},v1={mac}"}


def _paddle_headers(spec: VerifySpec, signed: Signed, mac: str) -> dict[str, str]:
    return {PADDLE_HEADER: f"ts={signed.timestamp};h1={mac}"}


def _clickfunnels_headers(spec: VerifySpec, signed: Signed, mac: str) -> dict[str, str]:
    return {CLICKFUNNELS_TIMESTAMP_HEADER: signed.timestamp, CLICKFUNNELS_SIGNATURE_HEADER: mac}


def _standard_headers(spec: VerifySpec, signed: Signed, mac: str) -> dict[str, str]:
    return {
        STANDARD_ID_HEADER: signed.message_id,
        STANDARD_TIMESTAMP_HEADER: signed.timestamp,
        STANDARD_SIGNATURE_HEADER: f"v1,{mac}",
    }


# Each scheme's header layout, as a sender writes it (app.ingest.signatures reads it back).
_SIGNATURE_HEADERS: dict[str, Callable[[VerifySpec, Signed, str], dict[str, str]]] = {
    "shopify": _shopify_headers,
    "woocommerce": _woocommerce_headers,
    "hmac": _hmac_headers,
    "stripe": _stripe_headers,
    "paddle": _paddle_headers,
    "clickfunnels": _clickfunnels_headers,
    "standard": _standard_headers,
}


def text_bytes(value: str) -> bytes:
    # surrogatepass: a str from anywhere encodes without raising; real headers are ASCII.
    return value.encode("utf-8", "surrogatepass")


def secret_bytes(spec: VerifySpec) -> bytes:
    if not spec.secret:  # VerifySpec refuses this; kept so a hand-built spec cannot pass open
        raise SignatureError("this source has no secret configured")
    return text_bytes(spec.secret)


def standard_key(spec: VerifySpec) -> bytes:
    """The HMAC key of a Standard Webhooks secret: base64 of what follows ``whsec_``."""
    encoded = (spec.secret or "").removeprefix("whsec_").strip().rstrip("=")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("this source's whsec_ secret is not valid base64") from None
    if not key:
        raise SignatureError("this source has no secret configured")
    return key


def decode_digest(spec: VerifySpec, value: str) -> bytes | None:
    """A signature written in the scheme's encoding, as bytes (None: not decodable)."""
    try:
        if encoding(spec) == "base64":
            return base64.b64decode(value.strip(), validate=True)
        return binascii.unhexlify(value.strip())  # either case; no inner whitespace
    except (binascii.Error, ValueError):
        return None
