"""Verify inbound webhook signatures, with the schemes of ``app.ingest.schemes`` (what is
signed, the key, the digest's encoding: written there once, for `relay sign` too).

One small verifier per scheme, dispatched from a dict. Every failure is a SignatureError
whose message is safe to show the sender: it names what was wrong, never the secret or the
signature we expected. Signatures are decoded to bytes and compared with
``hmac.compare_digest``.
"""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.config.models import VerifySpec
from app.domain.times import as_utc
from app.ingest.schemes import (
    CLICKFUNNELS_SIGNATURE_HEADER,
    CLICKFUNNELS_TIMESTAMP_HEADER,
    PADDLE_HEADER,
    SHOPIFY_HEADER,
    STANDARD_ID_HEADER,
    STANDARD_SIGNATURE_HEADER,
    STANDARD_TIMESTAMP_HEADER,
    STRIPE_HEADER,
    WOOCOMMERCE_HEADER,
    SignatureError,
    Signed,
    decode_digest,
    digest,
    encoding,
    secret_bytes,
    text_bytes,
)

DEFAULT_TOLERANCE_SECONDS = {"stripe": 300, "standard": 300, "clickfunnels": 600, "paddle": 300}

# Unix seconds as digits only: no sign, no exponent, and short enough for int().
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


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
    _verify_body_hmac(spec, request, SHOPIFY_HEADER)


def verify_woocommerce(spec: VerifySpec, request: SignedRequest) -> None:
    _verify_body_hmac(spec, request, WOOCOMMERCE_HEADER)


def verify_hmac(spec: VerifySpec, request: SignedRequest) -> None:
    header = spec.header or ""
    value = request.header(header)
    if spec.prefix:
        if not value.lower().startswith(spec.prefix.lower()):
            raise SignatureError(f"{header} header does not start with {spec.prefix!r}")
        value = value[len(spec.prefix) :]
    _verify_body_hmac(spec, request, header, value)


def verify_stripe(spec: VerifySpec, request: SignedRequest) -> None:
    _verify_timestamped_pairs(spec, request, STRIPE_HEADER, ",", ("t", "v1"))


def verify_paddle(spec: VerifySpec, request: SignedRequest) -> None:
    _verify_timestamped_pairs(spec, request, PADDLE_HEADER, ";", ("ts", "h1"))


def verify_standard(spec: VerifySpec, request: SignedRequest) -> None:
    message_id = request.header(STANDARD_ID_HEADER)
    timestamp = request.header(STANDARD_TIMESTAMP_HEADER)
    seconds = _parse_unix_seconds(timestamp, STANDARD_TIMESTAMP_HEADER)
    versioned = request.header(STANDARD_SIGNATURE_HEADER).split()
    # Other versions (e.g. v1a, asymmetric) may sit beside v1: ignore them, as the spec says.
    v1 = [entry[3:] for entry in versioned if entry.startswith("v1,")]
    candidates = _decoded_candidates(spec, v1, STANDARD_SIGNATURE_HEADER)
    _require_match(digest(spec, Signed(request.raw_body, timestamp, message_id)), candidates)
    _require_within_window(seconds, request.now, _tolerance(spec))


def verify_clickfunnels(spec: VerifySpec, request: SignedRequest) -> None:
    timestamp = request.header(CLICKFUNNELS_TIMESTAMP_HEADER)
    seconds = _parse_clickfunnels_time(timestamp)
    signature = decode_digest(spec, request.header(CLICKFUNNELS_SIGNATURE_HEADER))
    if signature is None:
        raise SignatureError(f"malformed {CLICKFUNNELS_SIGNATURE_HEADER} header")
    _require_match(digest(spec, Signed(request.raw_body, timestamp)), [signature])
    _require_within_window(seconds, request.now, _tolerance(spec))


def verify_token(spec: VerifySpec, request: SignedRequest) -> None:
    if request.token_value is None or request.token_value == "":
        raise SignatureError("missing token")
    if not hmac.compare_digest(text_bytes(str(request.token_value)), secret_bytes(spec)):
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


# --- helpers -----------------------------------------------------------------------------


def _verify_body_hmac(
    spec: VerifySpec, request: SignedRequest, header: str, value: str | None = None
) -> None:
    """The schemes that sign the body alone, with one signature in ``header``."""
    signature = decode_digest(spec, request.header(header) if value is None else value)
    if signature is None:
        raise SignatureError(f"malformed {header} header (expected {encoding(spec)})")
    _require_match(digest(spec, Signed(request.raw_body)), [signature])


def _verify_timestamped_pairs(
    spec: VerifySpec, request: SignedRequest, header: str, separator: str, keys: tuple[str, str]
) -> None:
    """Stripe's and Paddle's ``time=…<sep>signature=…`` header (one time, one or more
    signatures, any of which may match)."""
    time_key, signature_key = keys
    fields = _split_pairs(request.header(header), separator, header)
    timestamp = _single(fields, time_key, header)
    seconds = _parse_unix_seconds(timestamp, header)
    candidates = _decoded_candidates(spec, fields.get(signature_key, []), header)
    _require_match(digest(spec, Signed(request.raw_body, timestamp)), candidates)
    _require_within_window(seconds, request.now, _tolerance(spec))


def _decoded_candidates(spec: VerifySpec, encoded: list[str], header: str) -> list[bytes]:
    """Every decodable signature; one undecodable entry among good ones is just not a match."""
    candidates = [
        sig for sig in (decode_digest(spec, value) for value in encoded) if sig is not None
    ]
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
    return as_utc(moment).timestamp()


def _tolerance(spec: VerifySpec) -> int:
    return spec.tolerance_seconds or DEFAULT_TOLERANCE_SECONDS[spec.scheme]


def _require_within_window(timestamp: float, now: float, tolerance: int) -> None:
    if abs(now - timestamp) > tolerance:
        raise SignatureError(f"timestamp outside the ±{tolerance} s tolerance")
