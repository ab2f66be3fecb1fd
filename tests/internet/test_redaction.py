"""A token source's secret is never stored, in any spelling, whichever way it was posted:
searched for in the database's own bytes (the SQLite file and its WAL; every row of the
PostgreSQL schema) and in the log of a real ``relay serve``."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus, urlencode

import httpx
import psycopg
import pytest

from tests.support.processes import serving_api

SECRET = "Sekr1t-Üni/+ x"  # a space, a plus, a slash and non-ASCII: every escape has work
HEADER_SECRET = "hdr-Secret-4f2a9c7e1b80"
ADMIN_TOKEN = "adm-redaction-0b1c2d3e4f5a6b7c8d9e0f"
CONFIG = """
sources:
  cart:
    verify: {scheme: token, secret: "${CART_TOKEN}", at: body.thrivecart_secret}
    event_type: body.event
  members:
    verify: {scheme: token, secret: "${CART_TOKEN}", at: query.token}
    methods: [GET, POST]
    event_type: body.event
  pinged:
    verify: {scheme: token, secret: "${HEADER_TOKEN}", at: 'headers."x-webhook-password"'}
    event_type: body.event
routes: []
"""


def spellings(secret: str) -> list[bytes]:
    """Every way the secret could sit in a file: as text, percent-encoded in either case
    (both URL styles), JSON-escaped, \\u-escaped whole, as HTML references."""
    upper = quote(secret, safe="")
    forms = {
        secret,
        upper,
        _lower_hex(upper),
        quote_plus(secret),
        _lower_hex(quote_plus(secret)),
        json.dumps(secret)[1:-1],
        "".join(f"\\u{ord(c):04x}" for c in secret),
        "".join(f"&#{ord(c)};" for c in secret),
    }
    return sorted({form.encode() for form in forms})


def _lower_hex(encoded: str) -> str:
    return re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), encoded)


@pytest.fixture
def served(tmp_path: Path, database_url: str) -> Iterator[str]:
    extra = {"CART_TOKEN": SECRET, "HEADER_TOKEN": HEADER_SECRET, "RELAY_ADMIN_TOKEN": ADMIN_TOKEN}
    with serving_api(tmp_path, database_url, CONFIG, extra) as (port, _):
        yield f"http://127.0.0.1:{port}"


def post_every_way(base: str) -> list[str]:
    """The secret in every part of verified requests, in every spelling; the event ids."""
    pct, pct_lower = quote(SECRET, safe=""), _lower_hex(quote(SECRET, safe=""))
    unicode_escaped = "".join(f"\\u{ord(c):04x}" for c in SECRET)
    around = {
        "Referer": f"https://shop.example/thanks?token={pct}&x=1",
        "Cookie": f"session=abc; relay={quote_plus(SECRET)}",
        "Authorization": f"Bearer {pct_lower}",
        "X-Forwarded-Note": f"sent by {quote_plus(SECRET)} ok",
    }
    ids = []
    form = {
        "thrivecart_secret": SECRET,
        "event": "order.success",
        "note": f"the token is {SECRET}, keep it",
        f"meta[{SECRET}]": "as a key",
        "url": f"https://x.example/?t={pct_lower}&u={pct}",
        "json": json.dumps({"t": SECRET}),  # JSON in a string: \\u escapes stay escaped
        "json_escaped": '{"t": "' + unicode_escaped + '"}',
        "html": "".join(f"&#{ord(c)};" for c in SECRET),
    }
    answer = httpx.post(f"{base}/hooks/cart?token={quote(SECRET)}", data=form, headers=around)
    assert answer.status_code == 202, answer.text
    ids.append(answer.json()["event_id"])

    raw_json = (
        '{"thrivecart_secret": "' + unicode_escaped + '", "event": "order.success", '
        '"nested": {"deep": ["x' + SECRET + 'y"]}, "url": "https://x/?t=' + pct + '"}'
    ).encode()
    answer = httpx.post(
        f"{base}/hooks/cart",
        content=raw_json,
        headers={**around, "Content-Type": "application/json"},
    )
    assert answer.status_code == 202, answer.text
    ids.append(answer.json()["event_id"])

    query = urlencode({"token": SECRET, "event": "signup", "ref": f"a{SECRET}b"})
    answer = httpx.get(f"{base}/hooks/members?{query}", headers=around)
    assert answer.status_code == 202, answer.text
    ids.append(answer.json()["event_id"])

    answer = httpx.post(
        f"{base}/hooks/pinged",
        json={"event": "ping", "echo": f"pw={HEADER_SECRET}"},
        headers={"X-Webhook-Password": HEADER_SECRET, "Referer": f"https://a/?pw={HEADER_SECRET}"},
    )
    assert answer.status_code == 202, answer.text
    ids.append(answer.json()["event_id"])
    return ids


def database_bytes(database_url: str, tmp_path: Path) -> bytes:
    if database_url.startswith("sqlite"):
        files = [tmp_path / "relay.db", tmp_path / "relay.db-wal"]
        return b"".join(f.read_bytes() for f in files if f.exists())
    with psycopg.connect(database_url, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema()"
            ).fetchall()
        ]
        dump = [
            str(row[0])
            for table in tables
            for row in conn.execute(f'SELECT row_to_json(t)::text FROM "{table}" t').fetchall()
        ]
    return "\n".join(dump).encode()


def test_a_token_posted_every_way_is_stored_in_no_spelling(
    served: str, database_url: str, tmp_path: Path
) -> None:
    ids = post_every_way(served)
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    shown = [httpx.get(f"{served}/admin/events/{eid}", headers=auth).json() for eid in ids]
    # Stored, with what surrounded the secret kept.
    cart = shown[0]["payload"]
    assert cart["note"] == "the token is [redacted], keep it"
    assert cart["meta"] == {"[redacted]": "as a key"}
    assert shown[1]["payload"]["nested"] == {"deep": ["x[redacted]y"]}
    assert shown[2]["payload"]["ref"] == "a[redacted]b"
    assert shown[3]["payload"]["echo"] == "pw=[redacted]"

    time.sleep(0.5)  # the SQLite writer and the log batcher flush
    stored = database_bytes(database_url, tmp_path)
    assert b"[redacted]" in stored
    log = (tmp_path / "relay.log").read_bytes()
    answers = json.dumps(shown).encode()
    for secret in (SECRET, HEADER_SECRET):
        for spelling in spellings(secret):
            assert spelling not in stored, f"{spelling!r} is in the database"
            assert spelling not in log, f"{spelling!r} is in the log"
            assert spelling not in answers, f"{spelling!r} is in an admin answer"
