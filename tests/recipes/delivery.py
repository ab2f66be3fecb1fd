"""Requests built the way each sender builds them: method, URL (with the token a user
puts in it), content type, signature headers, from a sample body under ``samples/``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

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
    sender: str, sample: str, event_type: str, extra_headers: dict[str, str] | None = None
) -> Delivery:
    """The request ``sender`` makes for ``sample`` (an ``event_type`` event)."""
    body = sample_body(sender, sample)
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


def _hex_hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _shopify(body: bytes, event_type: str) -> dict[str, str]:
    digest = hmac.new(TEST_ENV["SHOPIFY_SECRET"].encode(), body, hashlib.sha256).digest()
    return {
        "X-Shopify-Topic": event_type,
        "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
        "X-Shopify-Shop-Domain": "acme-store.myshopify.com",
        "X-Shopify-API-Version": "2025-01",
        "X-Shopify-Triggered-At": "2026-03-02T15:15:00.000Z",
    }


def _woocommerce(body: bytes, event_type: str) -> dict[str, str]:
    digest = hmac.new(TEST_ENV["WOOCOMMERCE_SECRET"].encode(), body, hashlib.sha256).digest()
    resource, _, action = event_type.partition(".")
    return {
        "User-Agent": "WooCommerce/9.6.0 Hookshot (WordPress/6.7.2)",
        "X-WC-Webhook-Source": "https://shop.example.org/",
        "X-WC-Webhook-Topic": event_type,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": action,
        "X-WC-Webhook-Signature": base64.b64encode(digest).decode(),
        "X-WC-Webhook-ID": "12",
        "X-WC-Webhook-Delivery-ID": uuid.uuid4().hex,  # new on every retry
    }


def _stripe(body: bytes, event_type: str) -> dict[str, str]:
    t = int(time.time())
    signature = _hex_hmac(TEST_ENV["STRIPE_SECRET"], f"{t}.".encode() + body)
    return {"Stripe-Signature": f"t={t},v1={signature}", "User-Agent": "Stripe/1.0"}


def _paddle(body: bytes, event_type: str) -> dict[str, str]:
    ts = int(time.time())
    signature = _hex_hmac(TEST_ENV["PADDLE_SECRET"], f"{ts}:".encode() + body)
    return {"Paddle-Signature": f"ts={ts};h1={signature}"}


def _clickfunnels(body: bytes, event_type: str) -> dict[str, str]:
    timestamp = str(int(time.time()))
    signature = _hex_hmac(TEST_ENV["CLICKFUNNELS_SECRET"], timestamp.encode() + b"." + body)
    return {
        "X-Webhook-ClickFunnels-Timestamp": timestamp,
        "X-Webhook-ClickFunnels-Signature": signature,
        "X-Webhook-ClickFunnels-Event": event_type,
    }


def _lemonsqueezy(body: bytes, event_type: str) -> dict[str, str]:
    return {
        "X-Event-Name": event_type,
        "X-Signature": _hex_hmac(TEST_ENV["LEMONSQUEEZY_SECRET"], body),
    }


def _thinkific(body: bytes, event_type: str) -> dict[str, str]:
    return {
        "X-Thinkific-Topic": event_type,
        "X-Thinkific-Hmac-Sha256": _hex_hmac(TEST_ENV["THINKIFIC_SECRET"], body),
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
