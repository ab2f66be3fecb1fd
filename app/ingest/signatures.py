"""Verify (and, for `relay sign` and tests, produce) inbound webhook signatures.

One small function per scheme of SPEC §2, dispatched from a dict. Every failure is a
SignatureError whose message is safe to show the sender: it names what was wrong, never
the secret or the signature we expected. Signatures are decoded to bytes and compared
with ``hmac.compare_digest``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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

DEFAULT_TOLERANCE_SECONDS = {"stripe": 300, "standard": 300, "clickfunnels": 600, "paddle": 300}

# Unix seconds as digits only: no sign, no exponent, and short enough for int().
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


class SignatureError(Unauthorized):
    """str(e) is a reason safe to show the sender: never includes the secret or the expected
    signature. Answers 401 through the RelayError handler."""


@dataclass(frozen=True)
class SignedRequest:
    """What a verifier looks at; header names are lower-case."""

    raw_body: bytes
    headers: Mapping[str, str]
    token_value: Any
    now: float

    def header(self, name: str) -> str:
        value = self.headers.get(name.lower())
        if value is None or value == "":
            raise SignatureError(f"missing header {name}")
        if not isinstance(value, str):
            raise SignatureError(f"malformed {name} header")
        return value


def verify_signature(
    spec: VerifySpec,
    *,
    raw_body: bytes,
    headers: Mapping[str, str],
    token_value: Any = None,
    now: float | None = None,
) -> None:
    """Return when the request is authentic under ``spec``; raise SignatureError otherwise.

    ``token_value`` is, for scheme "token", the value the ingest path found at ``spec.at``.
    Scheme "none" always returns: the caller enforces ``allow_ips``.
    """
    request = SignedRequest(raw_body, headers, token_value, time.time() if now is None else now)
    _VERIFIERS[spec.scheme](spec, request)


def verify_shopify(spec: VerifySpec, request: SignedRequest) -> None:
    _verify_base64_body_hmac(spec, request, SHOPIFY_HEADER)


def verify_woocommerce(spec: VerifySpec, request: SignedRequest) -> None:
    _verify_base64_body_hmac(spec, request, WOOCOMMERCE_HEADER)


def verify_stripe(spec: VerifySpec, request: SignedRequest) -> None:
    fields = _split_pairs(request.header(STRIPE_HEADER), ",", STRIPE_HEADER)
    timestamp = _single(fields, "t", STRIPE_HEADER)
    seconds = _parse_unix_seconds(timestamp, STRIPE_HEADER)
    candidates = _decoded_candidates(fields.get("v1", []), _decode_hex, STRIPE_HEADER)
    expected = _hmac_sha256(_secret(spec), f"{timestamp}.".encode() + request.raw_body)
    _require_match(expected, candidates)
    _require_within_window(seconds, request.now, _tolerance(spec))


def verify_standard(spec: VerifySpec, request: SignedRequest) -> None:
    message_id = request.header(STANDARD_ID_HEADER)
    timestamp = request.header(STANDARD_TIMESTAMP_HEADER)
    seconds = _parse_unix_seconds(timestamp, STANDARD_TIMESTAMP_HEADER)
    versioned = request.header(STANDARD_SIGNATURE_HEADER).split()
    # Other versions (e.g. v1a, asymmetric) may sit beside v1: ignore them, as the spec says.
    v1 = [entry[3:] for entry in versioned if entry.startswith("v1,")]
    candidates = _decoded_candidates(v1, _decode_base64, STANDARD_SIGNATURE_HEADER)
    signed = _text_bytes(message_id) + f".{timestamp}.".encode() + request.raw_body
    _require_match(_hmac_sha256(_standard_key(spec), signed), candidates)
    _require_within_window(seconds, request.now, _tolerance(spec))


def verify_hmac(spec: VerifySpec, request: SignedRequest) -> None:
    header = spec.header or ""
    value = request.header(header)
    if spec.prefix:
        if not value.lower().startswith(spec.prefix.lower()):
            raise SignatureError(f"{header} header does not start with {spec.prefix!r}")
        value = value[len(spec.prefix) :]
    decode = _decode_base64 if spec.encoding == "base64" else _decode_hex
    signature = decode(value)
    if signature is None:
        raise SignatureError(f"malformed {header} header (expected {spec.encoding})")
    _require_match(_hmac_sha256(_secret(spec), request.raw_body), [signature])


def verify_clickfunnels(spec: VerifySpec, request: SignedRequest) -> None:
    timestamp = request.header(CLICKFUNNELS_TIMESTAMP_HEADER)
    seconds = _parse_clickfunnels_time(timestamp)
    signature = _decode_hex(request.header(CLICKFUNNELS_SIGNATURE_HEADER))
    if signature is None:
        raise SignatureError(f"malformed {CLICKFUNNELS_SIGNATURE_HEADER} header")
    # The timestamp is signed exactly as sent, whichever format it is in.
    signed = timestamp.encode("ascii") + b"." + request.raw_body
    _require_match(_hmac_sha256(_secret(spec), signed), [signature])
    _require_within_window(seconds, request.now, _tolerance(spec))


def verify_paddle(spec: VerifySpec, request: SignedRequest) -> None:
    fields = _split_pairs(request.header(PADDLE_HEADER), ";", PADDLE_HEADER)
    timestamp = _single(fields, "ts", PADDLE_HEADER)
    seconds = _parse_unix_seconds(timestamp, PADDLE_HEADER)
    candidates = _decoded_candidates(fields.get("h1", []), _decode_hex, PADDLE_HEADER)
    expected = _hmac_sha256(_secret(spec), f"{timestamp}:".encode() + request.raw_body)
    _require_match(expected, candidates)
    _require_within_window(seconds, request.now, _tolerance(spec))


def verify_token(spec: VerifySpec, request: SignedRequest) -> None:
    if request.token_value is None or request.token_value == "":
        raise SignatureError("missing token")
    if not hmac.compare_digest(_text_bytes(str(request.token_value)), _secret(spec)):
        raise SignatureError("token does not match")


def verify_none(spec: VerifySpec, request: SignedRequest) -> None:
    """Nothing to check here: scheme "none" relies on allow_ips, enforced by the caller."""


_VERIFIERS: dict[str, Callable[[VerifySpec, SignedRequest], None]] = {
    "shopify": verify_shopify,
    "woocommerce": verify_woocommerce,
    "stripe": verify_stripe,
    "standard": verify_standard,
    "hmac": verify_hmac,
    "clickfunnels": verify_clickfunnels,
    "paddle": verify_paddle,
    "token": verify_token,
    "none": verify_none,
}


def sign_request(
    spec: VerifySpec, raw_body: bytes, *, now: float | None = None, message_id: str | None = None
) -> dict[str, str]:
    """The signature headers a sender would attach, under their usual names.

    Empty for "token" and "none": those carry no signature header.
    """
    timestamp = int(time.time() if now is None else now)
    secret = b"" if spec.scheme in ("token", "none") else _secret(spec)
    scheme = spec.scheme
    if scheme == "shopify":
        return {SHOPIFY_HEADER: _b64(_hmac_sha256(secret, raw_body))}
    if scheme == "woocommerce":
        return {WOOCOMMERCE_HEADER: _b64(_hmac_sha256(secret, raw_body))}
    if scheme == "stripe":
        digest = _hmac_sha256(secret, f"{timestamp}.".encode() + raw_body).hex()
        return {STRIPE_HEADER: f"t={timestamp},v1={digest}"}
    if scheme == "paddle":
        digest = _hmac_sha256(secret, f"{timestamp}:".encode() + raw_body).hex()
        return {PADDLE_HEADER: f"ts={timestamp};h1={digest}"}
    if scheme == "clickfunnels":
        digest = _hmac_sha256(secret, f"{timestamp}.".encode() + raw_body).hex()
        return {
            CLICKFUNNELS_TIMESTAMP_HEADER: str(timestamp),
            CLICKFUNNELS_SIGNATURE_HEADER: digest,
        }
    if scheme == "hmac":
        digest_bytes = _hmac_sha256(secret, raw_body)
        encoded = _b64(digest_bytes) if spec.encoding == "base64" else digest_bytes.hex()
        return {spec.header or "": spec.prefix + encoded}
    if scheme == "standard":
        message_id = message_id or f"msg_{secrets.token_hex(12)}"
        signed = _text_bytes(message_id) + f".{timestamp}.".encode() + raw_body
        return {
            STANDARD_ID_HEADER: message_id,
            STANDARD_TIMESTAMP_HEADER: str(timestamp),
            STANDARD_SIGNATURE_HEADER: "v1," + _b64(_hmac_sha256(_standard_key(spec), signed)),
        }
    return {}


# --- helpers -----------------------------------------------------------------------------


def _verify_base64_body_hmac(spec: VerifySpec, request: SignedRequest, header: str) -> None:
    signature = _decode_base64(request.header(header))
    if signature is None:
        raise SignatureError(f"malformed {header} header (expected base64)")
    _require_match(_hmac_sha256(_secret(spec), request.raw_body), [signature])


def _hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def _text_bytes(value: str) -> bytes:
    # surrogatepass: a str from anywhere encodes without raising; real headers are ASCII.
    return value.encode("utf-8", "surrogatepass")


def _secret(spec: VerifySpec) -> bytes:
    if not spec.secret:  # VerifySpec refuses this; kept so a hand-built spec cannot pass open
        raise SignatureError("this source has no secret configured")
    return _text_bytes(spec.secret)


def _standard_key(spec: VerifySpec) -> bytes:
    """The HMAC key of a Standard Webhooks secret: base64 of what follows ``whsec_``."""
    encoded = (spec.secret or "").removeprefix("whsec_").strip().rstrip("=")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("this source's whsec_ secret is not valid base64") from None
    if not key:
        raise SignatureError("this source has no secret configured")
    return key


def _decode_hex(value: str) -> bytes | None:
    try:
        return binascii.unhexlify(value.strip())  # either case; no inner whitespace
    except (binascii.Error, ValueError):
        return None


def _decode_base64(value: str) -> bytes | None:
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


def _decoded_candidates(
    encoded: list[str], decode: Callable[[str], bytes | None], header: str
) -> list[bytes]:
    """Every decodable signature; one undecodable entry among good ones is just not a match."""
    candidates = [sig for sig in map(decode, encoded) if sig is not None]
    if not candidates:
        raise SignatureError(f"malformed {header} header (no signature in it)")
    return candidates


def _require_match(expected: bytes, candidates: list[bytes]) -> None:
    # Compare every candidate so the time taken does not tell which one matched.
    matches = [hmac.compare_digest(expected, candidate) for candidate in candidates]
    if not any(matches):
        raise SignatureError("signature does not match")


def _split_pairs(value: str, separator: str, header: str) -> dict[str, list[str]]:
    """``k=v<sep>k=v…`` into {k: [v, …]}; a part without ``=`` makes the header malformed."""
    fields: dict[str, list[str]] = {}
    for part in value.split(separator):
        key, equals, item = part.strip().partition("=")
        if not equals or not key:
            raise SignatureError(f"malformed {header} header")
        fields.setdefault(key, []).append(item)
    return fields


def _single(fields: dict[str, list[str]], key: str, header: str) -> str:
    values = fields.get(key, [])
    if len(values) != 1:
        raise SignatureError(f"malformed {header} header (needs exactly one {key}=)")
    return values[0]


def _parse_unix_seconds(value: str, header: str) -> int:
    if not _UNIX_SECONDS.fullmatch(value):
        raise SignatureError(f"malformed {header} header (timestamp is not Unix seconds)")
    return int(value)


def _parse_clickfunnels_time(value: str) -> float:
    """Unix seconds or ISO-8601 (a time without a zone is UTC)."""
    if _UNIX_SECONDS.fullmatch(value):
        return int(value)
    if not value.isascii():
        raise SignatureError(f"malformed {CLICKFUNNELS_TIMESTAMP_HEADER} header")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise SignatureError(
            f"malformed {CLICKFUNNELS_TIMESTAMP_HEADER} header (not Unix seconds or ISO-8601)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _tolerance(spec: VerifySpec) -> int:
    return spec.tolerance_seconds or DEFAULT_TOLERANCE_SECONDS[spec.scheme]


def _require_within_window(timestamp: float, now: float, tolerance: int) -> None:
    if abs(now - timestamp) > tolerance:
        raise SignatureError(f"timestamp outside the ±{tolerance} s tolerance")
