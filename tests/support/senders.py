"""Signature headers as a sender makes them, for the tests that post webhooks.

The formula of each scheme is the relay's one definition (``app.ingest.schemes``), itself
checked against each sender's documented algorithm in tests/ingest/test_signatures.py;
what a test states here is the sender's own choices: its scheme, secret, header, encoding.
"""

from __future__ import annotations

from typing import Any

from app.config.models import VerifySpec
from app.ingest.schemes import sign_request


def signature_headers(
    scheme: str, secret: str, body: bytes, *, now: float | None = None, **spec: Any
) -> dict[str, str]:
    """The headers carrying the signature of ``body`` (``spec``: header, encoding, prefix)."""
    verify = VerifySpec.model_validate({"scheme": scheme, "secret": secret, **spec})
    return sign_request(verify, body, now=now)


def hex_signature(secret: str, body: bytes) -> str:
    """An ``X-Signature``-style hex HMAC-SHA256 of the body (scheme hmac, encoding hex)."""
    return signature_headers("hmac", secret, body, header="X-Signature")["X-Signature"]
