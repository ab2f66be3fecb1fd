"""``relay check``, ``sign``, ``replay`` and ``events``: what each prints, and its exit code."""

from __future__ import annotations

import base64
import contextlib
import gc
import hashlib
import hmac
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import uvicorn

from app.delivery.worker import Worker
from tests.admin.conftest import new_event
from tests.cli.conftest import Cli, database_url, seed, statuses
from tests.conftest import SECRETS
from tests.support.interpreter import interpreter_restored

NOW = time.time()


# --help ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("command", "explains"),
    [
        ("check", "print each source and route"),
        ("replay", "Re-queue matching events"),
        ("sign", "Print every header the sender would attach"),
        ("events", "List recent events"),
        ("serve", "Run the webhook API"),
    ],
)
def test_every_command_explains_itself(cli: Cli, command: str, explains: str) -> None:
    result = cli(command, "--help")
    assert result.code == 0
    assert f"usage: relay {command}" in result.out
    assert explains in " ".join(result.out.split())


def test_the_top_level_help_lists_the_operator_commands(cli: Cli) -> None:
    result = cli("--help")
    assert result.code == 0
    for command in ("serve", "worker", "check", "sign", "replay", "events"):
        assert f"    {command} " in result.out


def test_an_unknown_option_is_a_usage_error(cli: Cli) -> None:
    result = cli("events", "--colour")
    assert result.code == 2
    assert "unrecognized arguments: --colour" in result.err


# check -------------------------------------------------------------------------------
def test_check_prints_every_route_plan(cli: Cli) -> None:
    result = cli("check")
    assert result.code == 0, result.err
    assert "sources (8):" in result.out
    assert "routes (8)" in result.out
    assert "paid-order: shop / orders/paid" in result.out
    assert "run action set 42" in result.out
    assert "dry-run" in result.out  # no credentials in this environment
    assert SECRETS["SHOP_SECRET"] not in result.out


def test_check_without_a_config_file_says_how_to_add_one(
    cli: Cli, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_CONFIG", str(workdir / "missing.yaml"))
    result = cli("check")
    assert result.code == 2
    assert "no config file at" in result.out
    assert "relay init SENDER" in result.out


def test_check_names_the_file_path_and_reason_of_a_bad_config(
    cli: Cli, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = workdir / "bad.yaml"
    bad.write_text("sources:\n  shop:\n    verify: {scheme: shopfy, secret: x}\nroutes: []\n")
    monkeypatch.setenv("RELAY_CONFIG", str(bad))
    result = cli("check")
    assert result.code == 2
    assert result.out == ""
    assert "relay.yaml is not valid" in result.err
    assert "bad.yaml" in result.err
    assert "sources.shop.verify" in result.err
    assert "Traceback" not in result.err


def test_check_refuses_a_bad_environment(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_LOG_FORMAT", "xml")
    result = cli("check")
    assert result.code == 2
    assert result.err.startswith("environment: RELAY_LOG_FORMAT")


# sign --------------------------------------------------------------------------------
def test_sign_prints_every_header_shopify_sends(cli: Cli, workdir: Path) -> None:
    body = b'{"id": 1, "financial_status": "paid", "customer": {"email": "a@example.com"}}'
    (workdir / "order.json").write_bytes(body)
    result = cli("sign", "shop", "order.json")
    assert result.code == 0, result.err
    headers = dict(line.split(": ", 1) for line in result.out.splitlines())
    expected = base64.b64encode(
        hmac.new(SECRETS["SHOP_SECRET"].encode(), body, hashlib.sha256).digest()
    ).decode()
    assert headers.pop("X-Shopify-Hmac-SHA256") == expected
    assert headers.pop("X-Shopify-Topic") == "orders/paid"  # the source's first route
    sent_at = datetime.fromisoformat(headers.pop("X-Shopify-Triggered-At")).timestamp()
    assert abs(sent_at - time.time()) < 60  # when it was signed, not when the module loaded
    assert len(headers.pop("X-Shopify-Webhook-Id")) == 36
    assert headers == {}
    assert "event 'orders/paid': routed by paid-order" in result.err
    again = dict(line.split(": ", 1) for line in cli("sign", "shop", "order.json").out.splitlines())
    assert again["X-Shopify-Webhook-Id"] != result.out  # each run is a new delivery


def test_sign_says_when_the_event_would_be_ignored(cli: Cli, workdir: Path) -> None:
    (workdir / "order.json").write_text('{"id": 1, "financial_status": "pending"}')
    result = cli("sign", "shop", "order.json", "--event", "orders/create")
    assert result.code == 0, result.err
    assert "X-Shopify-Topic: orders/create\n" in result.out
    assert "stored as ignored: no route for event 'orders/create'" in result.err


def test_sign_names_the_woocommerce_topic_headers(cli: Cli, workdir: Path) -> None:
    (workdir / "order.json").write_text('{"id": 5, "billing": {"email": "b@example.com"}}')
    result = cli("sign", "woo", "order.json", "--event", "order.updated")
    assert result.code == 0, result.err
    headers = dict(line.split(": ", 1) for line in result.out.splitlines())
    assert headers["X-WC-Webhook-Topic"] == "order.updated"
    assert (headers["X-WC-Webhook-Resource"], headers["X-WC-Webhook-Event"]) == (
        "order",
        "updated",
    )
    assert re.fullmatch("[0-9a-f]{32}", headers["X-WC-Webhook-Delivery-ID"])  # a wp_hash
    assert "routed by woo-order" in result.err


SIGNED_BODIES = {
    "shop": b'{"id": 1, "financial_status": "paid", "customer": {"email": "a@example.com"}}',
    "woo": b'{"id": 2, "billing": {"email": "a@example.com"}}',
    "stripe": b'{"id": "evt_1", "type": "checkout.session.completed", "data": {"object": '
    b'{"customer_details": {"email": "a@example.com"}}}}',
    "members": b'{"type": "member.created", "data": {"email": "a@example.com"}}',
    "legacy-cart": b'{"event": "sale", "email": "a@example.com"}',
}


@pytest.mark.parametrize("source", list(SIGNED_BODIES))
async def test_signed_headers_are_accepted_and_routed_by_the_relay(
    cli: Cli, workdir: Path, relay: httpx.AsyncClient, source: str
) -> None:
    body = SIGNED_BODIES[source]
    (workdir / "body.json").write_bytes(body)
    event = ["--event", "order.created"] if source == "woo" else []  # its route: order.*
    result = cli("sign", source, "body.json", *event)
    assert result.code == 0, result.err
    headers = dict(line.split(": ", 1) for line in result.out.splitlines())
    headers["Content-Type"] = "application/json"
    response = await relay.post(f"/hooks/{source}", content=body, headers=headers)
    assert response.status_code == 202, response.text
    store = relay.app.state.store  # type: ignore[attr-defined]
    stored = await store.get_event(response.json()["event_id"])
    assert stored.status == "pending", stored.last_error  # routed, not ignored
    assert f"routed by {', '.join(stored.routes)}" in result.err


def test_sign_asks_for_the_event_when_no_route_names_one(cli: Cli, workdir: Path) -> None:
    (workdir / "order.json").write_text("{}")
    result = cli("sign", "woo", "order.json")  # the woo route matches the pattern order.*
    assert result.code == 2
    assert result.out == ""
    assert "reads the event type from a header: name it with --event" in result.err


def test_sign_explains_a_token_source_on_stderr(cli: Cli, workdir: Path) -> None:
    (workdir / "body.json").write_text("{}")
    result = cli("sign", "thrivecart", "body.json")
    assert result.code == 0
    assert result.out == ""
    assert "put the shared secret at body.thrivecart_secret" in result.err
    assert SECRETS["THRIVECART_SECRET"] not in result.err


def test_sign_names_the_known_sources_for_an_unknown_one(cli: Cli, workdir: Path) -> None:
    (workdir / "body.json").write_text("{}")
    result = cli("sign", "shopp", "body.json")
    assert result.code == 2
    assert "no source named 'shopp'" in result.err
    assert "shop, stripe" in result.err


def test_sign_reports_an_unreadable_file(cli: Cli) -> None:
    result = cli("sign", "shop", "nope.json")
    assert result.code == 2
    assert "nope.json: cannot read" in result.err


# replay ------------------------------------------------------------------------------
def test_replay_requeues_dead_events_of_one_source(cli: Cli, workdir: Path) -> None:
    url = database_url(workdir)
    shop = new_event(received_at=NOW - 30, source="shop", email="a@example.com")
    woo = new_event(received_at=NOW - 20, source="woo", email="b@example.com")
    seed(url, [shop, woo], dead={shop.id: 1, woo.id: 2})

    result = cli("replay", "--status", "dead", "--source", "shop")
    assert (result.code, result.out) == (0, "requeued 1 event\n")
    assert statuses(url) == {shop.id: "pending", woo.id: "dead"}

    result = cli("replay")  # --status dead is the default
    assert (result.code, result.out) == (0, "requeued 1 event\n")
    assert statuses(url)[woo.id] == "pending"


@pytest.fixture
def local_time_ten_hours_behind_utc() -> Iterator[None]:
    """The process's local time zone is UTC-10 (POSIX spells it "+10"), then restored."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "RELAY+10"
    time.tzset()
    try:
        yield
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()


@pytest.mark.usefixtures("local_time_ten_hours_behind_utc")
@pytest.mark.parametrize("offset", ["+00:00", "Z", ""], ids=["offset", "zulu", "naive-is-utc"])
def test_replay_since_leaves_older_events_dead(cli: Cli, workdir: Path, offset: str) -> None:
    """A time without an offset is UTC, as the admin API reads it: the operator's local
    zone (here UTC-10) shifts no cut-off."""
    assert time.localtime(NOW).tm_gmtoff == -10 * 3600
    url = database_url(workdir)
    old = new_event(received_at=NOW - 7200, email="a@example.com")
    recent = new_event(received_at=NOW - 60, email="b@example.com")
    seed(url, [old, recent], dead={old.id: 0, recent.id: 0})
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(NOW - 3600)) + offset
    result = cli("replay", "--since", since)
    assert (result.code, result.out) == (0, "requeued 1 event\n")
    assert statuses(url) == {old.id: "dead", recent.id: "pending"}


def test_replay_from_start_requeues_delivered_events(cli: Cli, workdir: Path) -> None:
    url = database_url(workdir)
    dead = new_event(received_at=NOW - 30, email="a@example.com")
    seed(url, [dead], dead={dead.id: 1})
    result = cli("replay", "--status", "dead", "--from-start")
    assert (result.code, result.out) == (0, "requeued 1 event\n")
    assert statuses(url) == {dead.id: "pending"}


def test_replay_refuses_a_time_that_is_not_iso_8601(cli: Cli) -> None:
    result = cli("replay", "--since", "yesterday")
    assert result.code == 2
    assert "--since: 'yesterday' is not an ISO-8601 time" in result.err


# events ------------------------------------------------------------------------------
def _table(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.strip()]


def test_events_prints_an_aligned_table_newest_first(cli: Cli, workdir: Path) -> None:
    url = database_url(workdir)
    dead = new_event(received_at=NOW - 300, email="ada.lovelace@example.com")
    ignored = new_event(received_at=NOW - 200, source="woo", status="ignored")
    pending = new_event(received_at=NOW - 100, source="stripe", email="bob@shop.io")
    wordy = new_event(received_at=NOW - 50, email="c@example.com")
    long_error = "tags: [InvalidParameter]\n" + "tag 102 does not exist; " * 10
    seed(url, [dead, ignored, pending, wordy], {dead.id: 1, wordy.id: 2}, {wordy.id: long_error})

    result = cli("events")
    assert result.code == 0, result.err
    header, *rows = _table(result.out)
    assert header.split() == [
        "RECEIVED", "(UTC)", "ID", "SOURCE", "TYPE", "CONTACT", "STATUS", "STEPS", "LAST", "ERROR",
    ]  # fmt: skip
    assert [row.split()[2] for row in rows] == [wordy.id, pending.id, ignored.id, dead.id]
    for column in ("ID", "SOURCE", "STATUS", "STEPS", "LAST ERROR"):  # aligned columns
        start = header.index(column)
        cells = [row for row in rows if len(row) > start]  # no error: the row ends early
        assert all(row[start - 2 : start] == "  " and row[start] != " " for row in cells)
    by_id = {row.split()[2]: row for row in rows}
    assert "a***@example.com" in by_id[dead.id]
    assert "ada.lovelace" not in result.out
    assert " dead " in by_id[dead.id]
    assert " 1/4 " in by_id[dead.id]
    assert by_id[dead.id].endswith("[InvalidParameter] tag 102 does not exist")
    assert " ignored " in by_id[ignored.id]
    assert " - " in by_id[ignored.id]
    assert " pending " in by_id[pending.id]
    assert " 0/4" in by_id[pending.id]
    error = by_id[wordy.id][header.index("LAST ERROR") :]
    assert error.startswith("tags: [InvalidParameter] tag 102 does not exist; tag")
    assert len(error) == 60
    assert error.endswith("…")


def test_events_filters_by_status_source_and_email(cli: Cli, workdir: Path) -> None:
    url = database_url(workdir)
    a = new_event(received_at=NOW - 30, source="shop", email="Ada@Example.com")
    b = new_event(received_at=NOW - 20, source="woo", email="bob@example.com")
    c = new_event(received_at=NOW - 10, source="shop", email="carol@example.com")
    seed(url, [a, b, c], dead={a.id: 0, b.id: 0})

    def ids(*args: str) -> list[str]:
        result = cli("events", *args)
        assert result.code == 0, result.err
        return [row.split()[2] for row in _table(result.out)[1:]]

    assert ids("--status", "dead") == [b.id, a.id]
    assert ids("--status", "dead", "--source", "shop") == [a.id]
    assert ids("--email", "ada@example.com") == [a.id]  # any case
    assert ids("--source", "shop") == [c.id, a.id]


def test_events_shows_whole_emails_only_with_pii_logging_on(
    cli: Cli, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(database_url(workdir), [new_event(received_at=NOW, email="ada.lovelace@example.com")])
    assert "a***@example.com" in cli("events").out
    monkeypatch.setenv("RELAY_LOG_PII", "true")
    assert "ada.lovelace@example.com" in cli("events").out


def test_events_says_when_there_are_more_than_the_limit(cli: Cli, workdir: Path) -> None:
    events = [new_event(received_at=NOW - n, email=f"c{n}@example.com") for n in range(3)]
    seed(database_url(workdir), events)
    result = cli("events", "--limit", "2")
    assert result.code == 0
    rows = _table(result.out)
    assert [row.split()[2] for row in rows[1:3]] == [events[2].id, events[1].id]
    assert rows[-1] == "(the 2 newest shown; --limit N shows more)"


def test_events_on_an_empty_database(cli: Cli, workdir: Path) -> None:
    seed(database_url(workdir), [])
    assert (cli("events").code, cli("events").out) == (0, "no events yet\n")
    assert cli("events", "--status", "dead").out == "no events match these filters\n"


def test_events_without_a_database_fails_and_creates_none(
    cli: Cli, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_DATABASE_URL", f"sqlite:///{workdir / 'typo.db'}")
    result = cli("events")
    assert result.code == 2
    assert result.out == ""
    assert "no database at" in result.err
    assert "typo.db" in result.err
    assert not (workdir / "typo.db").exists()


def test_events_refuses_a_limit_below_one(cli: Cli) -> None:
    result = cli("events", "--limit", "0")
    assert (result.code, result.err) == (2, "--limit must be at least 1\n")


def test_events_reports_an_unreachable_database_without_a_traceback(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_DATABASE_URL", "postgresql://nobody:pw-Zz91@127.0.0.1:9/none")
    result = cli("events")
    assert result.code == 2
    assert result.err.startswith("cannot read events from RELAY_DATABASE_URL:")
    assert "Traceback" not in result.err
    assert "pw-Zz91" not in result.err


def test_events_reads_a_postgresql_database(
    cli: Cli, postgres_schema_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = new_event(received_at=NOW, email="ada@example.com")
    seed(postgres_schema_url, [event], dead={event.id: 2})
    monkeypatch.setenv("RELAY_DATABASE_URL", postgres_schema_url)
    result = cli("events", "--status", "dead")
    assert result.code == 0, result.err
    (row,) = _table(result.out)[1:]
    assert row.split()[2:7] == [event.id, "shop", "orders/paid", "a***@example.com", "dead"]
    assert " 2/4 " in row


@contextlib.contextmanager
def _interpreter_and_logging_restored() -> Iterator[None]:
    """Put back what a command's start-up set: the GIL switch interval, the collector's
    thresholds and frozen objects, and the root logger's handlers."""
    root = logging.getLogger()
    handlers = root.handlers[:]
    try:
        with interpreter_restored():
            yield
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:] = handlers


def _serve_and_observe(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> tuple[float, tuple[int, int, int], int]:
    """``relay serve``'s switch interval, GC thresholds and frozen count as it starts
    serving (uvicorn's run is replaced); the interpreter is restored after."""
    seen: list[tuple[float, tuple[int, int, int], int]] = []
    monkeypatch.setattr(
        uvicorn.Server,
        "run",
        lambda self: seen.append(
            (sys.getswitchinterval(), gc.get_threshold(), gc.get_freeze_count())
        ),
    )
    with _interpreter_and_logging_restored():
        assert cli("serve", "--port", "0").code == 0
    [observed] = seen
    return observed


def test_serve_tunes_the_interpreter_before_it_serves(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``relay serve`` shortens Python's GIL switch interval (5 ms: the SQLite writer
    waits for the GIL after every commit), freezes what start-up built and enlarges the
    collector's young generation before it serves (app/interpreter.py)."""
    switch, gc_thresholds, frozen = _serve_and_observe(cli, monkeypatch)
    assert switch == pytest.approx(0.001)
    assert gc_thresholds == (20_000, 20, 20)
    assert frozen > 10_000  # the modules, the app, its routes and models


def test_serve_keeps_python_defaults_with_tuning_off(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``RELAY_TUNE_INTERPRETER=false``: the interpreter is served as Python set it."""
    monkeypatch.setenv("RELAY_TUNE_INTERPRETER", "false")
    before = (sys.getswitchinterval(), gc.get_threshold(), gc.get_freeze_count())
    assert _serve_and_observe(cli, monkeypatch) == before


def _worker_start_observed(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, tuple[int, int, int]]:
    """``relay worker``'s frozen-object count and GC thresholds as its worker starts (the
    start is replaced by a SIGTERM to itself, which the command's own handler turns into
    a clean stop); the collector is restored after."""
    seen: list[tuple[int, tuple[int, int, int]]] = []

    async def start(self: Worker) -> None:
        seen.append((gc.get_freeze_count(), gc.get_threshold()))
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(Worker, "start", start)
    with _interpreter_and_logging_restored():
        assert cli("worker").code == 0
    [observed] = seen
    return observed


def test_worker_freezes_what_start_up_built_before_it_delivers(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``relay worker`` freezes its start-up heap (a full collection walked it for ~40 ms,
    long enough to send a call late into Keap's next window) and keeps Python's young
    generation (app/interpreter.py)."""
    defaults = gc.get_threshold()
    frozen, thresholds = _worker_start_observed(cli, monkeypatch)
    assert frozen > 10_000  # the modules, the settings, the store and the client
    assert thresholds == defaults


def test_worker_freezes_nothing_with_tuning_off(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_TUNE_INTERPRETER", "false")
    before = gc.get_freeze_count()
    assert _worker_start_observed(cli, monkeypatch) == (before, gc.get_threshold())


def test_events_prints_what_webhooks_sent_with_control_characters_escaped(
    cli: Cli, workdir: Path
) -> None:
    url = database_url(workdir)
    hostile = new_event(
        received_at=NOW - 10,
        event_type="order\x1b[2J\x1b]0;pwned\x07\u202etxt.exe\nnext",
        email="x\x1b[31m@example.com",
    )
    seed(url, [hostile], {hostile.id: 0}, {hostile.id: "tag \x1b[1mbold\x1b[0m\r\x9b31m"})
    result = cli("events")
    assert result.code == 0, result.err
    for raw in ("\x1b", "\x07", "\u202e", "\r", "\x9b"):
        assert raw not in result.out
    (row,) = _table(result.out)[1:]  # one line: the newline was escaped too
    assert "order\\x1b[2J\\x1b]0;pwned\\x07\\u202etxt.exe\\x0anext" in row
    assert "tag \\x1b[1mbold\\x1b[0m \\x9b31m" in row
