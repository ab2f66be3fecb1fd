"""Requests built the way each sender builds them: method, URL (with the token a user
puts in it), content type, signature headers, from a sample body under ``samples/``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.senders import signature_headers

SAMPLES = Path(__file__).parent / "samples"

# The secrets of tests/recipes: what a user would put in .env.
TEST_ENV = {
    "THRIVECART_SECRET": "tc-secret-word",
    "SAMCART_TOKEN": "sc-token-5f1e",
    "KAJABI_TOKEN": "kj-token-77aa",
    "TEACHABLE_TOKEN": "tch-token-0b9c",
    "CLICKFUNNELS_SECRET": "cf-signing-secret",
    "MEMBERPRESS_TOKEN": "mp-token-1d2e",
    "WISHLISTMEMBER_TOKEN": "wlm-token-3f4a",
    "MEMBERMOUSE_TOKEN": "mm-token-5b6c",
    "PMPRO_TOKEN": "pmpro-token-7d8e",
    "GUMROAD_TOKEN": "gr-token-9f0a",
    "SHOPIFY_SECRET": "shpss_0123456789abcdef",
    "WOOCOMMERCE_SECRET": "woo-secret-2b3c",
    "STRIPE_SECRET": "whsec_test_4d5e6f",
    "PADDLE_SECRET": "pdl_ntfset_01hv_secret",
    "LEMONSQUEEZY_SECRET": "ls-secret-8a9b",
    "THINKIFIC_SECRET": "thinkific-api-key-c0d1",
}

# Unsigned senders: the user appends ?token=<value> to the URL pasted in the sender.
QUERY_TOKEN = {
    "samcart": "SAMCART_TOKEN",
    "kajabi": "KAJABI_TOKEN",
    "teachable": "TEACHABLE_TOKEN",
    "memberpress": "MEMBERPRESS_TOKEN",
    "wishlistmember": "WISHLISTMEMBER_TOKEN",
    "membermouse": "MEMBERMOUSE_TOKEN",
    "pmpro": "PMPRO_TOKEN",
    "gumroad": "GUMROAD_TOKEN",
}

_CONTENT_TYPES = {
    ".json": "application/json",
    ".form": "application/x-www-form-urlencoded",
}


@dataclass(frozen=True)
class Delivery:
    method: str
    url: str
    content: bytes
    headers: dict[str, str] = field(default_factory=dict)


def sample_body(sender: str, sample: str) -> bytes:
    raw = (SAMPLES / sender / sample).read_bytes()
    # Form and query samples end with an editor's newline that no sender sends.
    return raw if sample.endswith(".json") else raw.rstrip(b"\n")


def as_sender_sends(
    sender: str,
    sample: str,
    event_type: str,
    extra_headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> Delivery:
    """The request ``sender`` makes for ``sample`` (an ``event_type`` event), or for
    ``body`` in the sample's format, signed as the sender signs it."""
    body = sample_body(sender, sample) if body is None else body
    url = f"/hooks/{sender}"
    if sender in QUERY_TOKEN:
        url += f"?token={TEST_ENV[QUERY_TOKEN[sender]]}"
    if sample.endswith(".query"):  # MemberMouse: a GET, its fields after the URL's token
        return Delivery("GET", f"{url}&{body.decode()}", b"", dict(extra_headers or {}))
    headers = {"Content-Type": _CONTENT_TYPES[Path(sample).suffix]}
    headers.update(_SIGNERS.get(sender, _unsigned)(body, event_type))
    headers.update(extra_headers or {})
    return Delivery("POST", url, body, headers)


def _unsigned(body: bytes, event_type: str) -> dict[str, str]:
    return {}


def _pmpro(body: bytes, event_type: str) -> dict[str, str]:
    # The Zapier add-on sets the header 'Content-Type:' (colon included): the line on the
    # wire is "Content-Type:: application/json", read as the value ": application/json".
    return {
        "Content-Type": ": application/json",
        "User-Agent": "WordPress/6.7; https://example.org",
    }


def _signature(scheme: str, secret: str, body: bytes, **spec: str) -> dict[str, str]:
    return signature_headers(scheme, TEST_ENV[secret], body, **spec)


def _shopify(body: bytes, event_type: str) -> dict[str, str]:
    return {
        "X-Shopify-Topic": event_type,
        **_signature("shopify", "SHOPIFY_SECRET", body),
        "X-Shopify-Shop-Domain": "acme-store.myshopify.com",
        "X-Shopify-API-Version": "2025-01",
        "X-Shopify-Triggered-At": "2026-03-02T15:15:00.000Z",
    }


def _woocommerce(body: bytes, event_type: str) -> dict[str, str]:
    resource, _, action = event_type.partition(".")
    return {
        "User-Agent": "WooCommerce/9.6.0 Hookshot (WordPress/6.7.2)",
        "X-WC-Webhook-Source": "https://shop.example.org/",
        "X-WC-Webhook-Topic": event_type,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": action,
        **_signature("woocommerce", "WOOCOMMERCE_SECRET", body),
        "X-WC-Webhook-ID": "12",
        "X-WC-Webhook-Delivery-ID": uuid.uuid4().hex,  # new on every retry
    }


def _stripe(body: bytes, event_type: str) -> dict[str, str]:
    return {**_signature("stripe", "STRIPE_SECRET", body), "User-Agent": "Stripe/1.0"}


def _paddle(body: bytes, event_type: str) -> dict[str, str]:
    return _signature("paddle", "PADDLE_SECRET", body)


def _clickfunnels(body: bytes, event_type: str) -> dict[str, str]:
    return {
        **_signature("clickfunnels", "CLICKFUNNELS_SECRET", body),
        "X-Webhook-ClickFunnels-Event": event_type,
    }


def _lemonsqueezy(body: bytes, event_type: str) -> dict[str, str]:
    return {
        "X-Event-Name": event_type,
        **_signature("hmac", "LEMONSQUEEZY_SECRET", body, header="X-Signature"),
    }


def _thinkific(body: bytes, event_type: str) -> dict[str, str]:
    return {
        "X-Thinkific-Topic": event_type,
        **_signature("hmac", "THINKIFIC_SECRET", body, header="X-Thinkific-Hmac-Sha256"),
    }


_SIGNERS = {
    "pmpro": _pmpro,
    "shopify": _shopify,
    "woocommerce": _woocommerce,
    "stripe": _stripe,
    "paddle": _paddle,
    "clickfunnels": _clickfunnels,
    "lemonsqueezy": _lemonsqueezy,
    "thinkific": _thinkific,
}
