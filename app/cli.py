"""The ``relay`` command: serve, worker, check, sign, replay."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError
from pydantic_settings import SettingsError

from app.admin.cli import terminal_text
from app.domain.events import EVENT_STATUSES
from app.errors import ConfigError
from app.interpreter import tune_for_serving
from app.sandbox import SANDBOX_DATABASE
from app.settings import Settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except SettingsError as exc:
        print(f"environment: {terminal_text(str(exc))}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        for error in exc.errors(include_input=False, include_url=False):
            name = "RELAY_" + "_".join(str(p) for p in error["loc"]).upper()
            message = terminal_text(error["msg"].removeprefix("Value error, "))
            print(
                f"environment: {name}: {message}" if error["loc"] else f"environment: {message}",
                file=sys.stderr,
            )
        return 2
    try:
        result: int = args.run(settings, args)
    except ConfigError as exc:
        print("relay.yaml is not valid:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {terminal_text(problem)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relay",
        description="Infusionsoft (Keap) webhook relay: receive webhooks from carts and member "
        "sites, store them durably, deliver them to Infusionsoft.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the HTTP API (and, by default, the delivery worker)",
        description="Run the webhook API on RELAY_HOST:RELAY_PORT, with the delivery worker "
        "in the same process. With --api-only the worker does not run (scale delivery "
        "apart with `relay worker`).",
    )
    serve.add_argument("--host", help="listen address (default RELAY_HOST)")
    serve.add_argument("--port", type=int, help="listen port (default RELAY_PORT)")
    serve.add_argument(
        "--api-only",
        action="store_true",
        help="serve the API without the delivery worker (run `relay worker` elsewhere)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        choices=[0, 1],
        help="deprecated: --workers 0 is --api-only; --workers 1 is the default",
    )
    serve.set_defaults(run=_serve)

    sandbox = commands.add_parser(
        "sandbox",
        help="run the relay against a bundled fake Infusionsoft, to try relay.yaml safely",
        description="Run the relay with your relay.yaml and its worker, delivering to the "
        "fake Infusionsoft of a source checkout (fake_keap/) on this machine (its own "
        "database: ./data/sandbox.db). "
        "Prints the URLs to post to, the dashboard login and how to make calls fail. "
        "See docs/sandbox.md.",
    )
    sandbox.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    sandbox.add_argument("--port", type=int, help="the relay's port (default RELAY_PORT)")
    sandbox.add_argument(
        "--fake-port", type=int, default=9000, help="the fake Infusionsoft's port (default 9000)"
    )
    sandbox.add_argument(
        "--database", help=f"where the sandbox keeps events (default {SANDBOX_DATABASE})"
    )
    sandbox.set_defaults(run=_sandbox)

    worker = commands.add_parser(
        "worker",
        help="run only the delivery worker",
        description="Deliver stored events to Infusionsoft, without the webhook API. With "
        "--port it also serves this worker's /healthz, /readyz and /metrics (its deliveries "
        "and Keap calls, which no other process counts) on --host:--port.",
    )
    worker.add_argument(
        "--port",
        type=int,
        help="serve /healthz, /readyz and /metrics on this port (default: no HTTP at all)",
    )
    worker.add_argument("--host", help="listen address with --port (default RELAY_HOST)")
    worker.set_defaults(run=_worker)

    check = commands.add_parser(
        "check",
        help="validate relay.yaml and the environment and print every route's plan",
        description="Validate RELAY_CONFIG and the RELAY_ environment; print each source and "
        "route with the Infusionsoft calls it makes. Exits 2 on any problem.",
    )
    check.set_defaults(run=_check)

    sign = commands.add_parser(
        "sign",
        help="print the headers a sender would attach to FILE",
        description="Print every header the sender would attach when posting FILE to "
        "/hooks/SOURCE — the signature and, for senders that name the event in headers "
        "(Shopify, WooCommerce), its topic, a fresh delivery id and the time — one "
        "'Name: value' per line: each line is one curl -H argument (see the README). "
        "On stderr: which routes would take the event, or why it would be ignored.",
    )
    sign.add_argument("source", help="a source name from relay.yaml")
    sign.add_argument("file", type=Path, help="the body to sign, byte for byte")
    sign.add_argument(
        "--event",
        metavar="TYPE",
        help="the event type, for a sender that sends it in a header (e.g. orders/paid); "
        "default: the event of the source's first route",
    )
    sign.set_defaults(run=_sign)

    replay = commands.add_parser(
        "replay",
        help="re-queue events (by default the dead ones)",
        description="Re-queue matching events for delivery; each runs only its unfinished steps.",
    )
    replay.add_argument(
        "--status",
        choices=EVENT_STATUSES,
        help="default: dead (with --dry-run-steps: any status); ignored needs --replan",
    )
    replay.add_argument("--source", help="only events from this source")
    replay.add_argument(
        "--since",
        help="only events received at or after this ISO-8601 time (UTC when it has no offset)",
    )
    how = replay.add_mutually_exclusive_group()
    how.add_argument(
        "--from-start",
        action="store_true",
        help="run every step again, not only the unfinished ones",
    )
    replay.add_argument(
        "--replan",
        action="store_true",
        help="first plan each event again with the current relay.yaml (e.g. after replacing "
        "an action set); steps that already succeeded and are still planned are not repeated",
    )
    how.add_argument(
        "--dry-run-steps",
        action="store_true",
        help="send for real the steps that were only recorded in dry-run (after setting a "
        "key), never a step that already ran for real",
    )
    replay.set_defaults(run=_replay)

    events = commands.add_parser(
        "events",
        help="show recent events as a table",
        description="List recent events, newest first, with their status, contact, steps "
        "and last error.",
    )
    events.add_argument(
        "--status",
        choices=EVENT_STATUSES,
        help="only events in this status",
    )
    events.add_argument("--source", help="only events from this source")
    events.add_argument("--email", help="only events of this contact email")
    events.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    events.set_defaults(run=_events)

    recipes = commands.add_parser(
        "recipes",
        help="list the ready-made sender recipes",
        description="List the recipes shipped with the relay (one per cart or member site) "
        "and the events each handles.",
    )
    recipes.set_defaults(run=_recipes)

    init = commands.add_parser(
        "init",
        help="write a relay.yaml from recipes, or add senders to yours",
        description="Write relay.yaml from the named senders' recipes or, when it exists, "
        "add their sources and routes to it (its lines and comments are kept; a sender "
        "already there is left out), and print the .env lines for their secrets.",
    )
    init.add_argument("senders", nargs="+", metavar="SENDER", help="e.g. thrivecart shopify")
    init.add_argument("--output", type=Path, help="where to write (default RELAY_CONFIG)")
    init.set_defaults(run=_init)

    keap = commands.add_parser(
        "keap",
        help="Infusionsoft credentials (`relay keap login`)",
        description="Manage the relay's Infusionsoft credentials.",
    )
    keap_commands = keap.add_subparsers(dest="keap_command", required=True, metavar="COMMAND")
    login = keap_commands.add_parser(
        "login",
        help="authorise the relay with OAuth2 and store its tokens in the database",
        description="Print Keap's authorize URL, take the code Keap sends back (pasted, or "
        "caught on 127.0.0.1 with --listen) and store the tokens in RELAY_DATABASE_URL. "
        "Needs RELAY_KEAP_CLIENT_ID and RELAY_KEAP_CLIENT_SECRET; the redirect URI must be "
        "registered on your Keap developer app.",
    )
    login.add_argument(
        "--listen",
        type=int,
        metavar="PORT",
        help="catch the redirect on http://127.0.0.1:PORT/callback",
    )
    login.add_argument(
        "--redirect-uri", help="the registered redirect URI (to paste what arrives there)"
    )
    login.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait with --listen (300)"
    )
    login.set_defaults(run=_keap_login)
    return parser


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from app.bootstrap import setup_logging
    from app.config.startup import log_startup
    from app.main import create_app, log
    from app.server import server_config

    if args.workers is not None:
        replacement = "--api-only" if args.workers == 0 else "nothing (the default)"
        print(
            f"relay serve: --workers {args.workers} is deprecated; use {replacement}",
            file=sys.stderr,
        )
    run_worker = not args.api_only and args.workers != 0
    setup_logging(settings)
    app = create_app(settings, run_worker=run_worker)
    if not _database_answers(settings):
        return 2
    worker = (
        "runs in this process"
        if run_worker
        else "off (--api-only): events are stored, and delivered by `relay worker`"
    )
    log_startup(log, settings, app.state.config, app.state.config_detail, worker=worker)
    config = server_config(
        app, settings, args.host or settings.host, settings.port if args.port is None else args.port
    )
    tune_for_serving(settings.tune_interpreter)  # GIL switch and collector (app/interpreter.py)
    uvicorn.Server(config).run()
    return 0


def _sandbox(settings: Settings, args: argparse.Namespace) -> int:
    from app.sandbox import run_sandbox

    database = args.database or SANDBOX_DATABASE
    if not _database_answers(settings.model_copy(update={"database_url": database}), "--database"):
        return 2
    return run_sandbox(settings, args)


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from app.bootstrap import setup_logging
    from app.config.startup import log_startup
    from app.delivery.runner import run_worker_forever
    from app.main import load_relay_config, log

    setup_logging(settings)
    config, detail = load_relay_config(settings)
    if not _database_answers(settings):
        return 2
    if args.port is None:
        log_startup(log, settings, config, detail, worker="this process delivers only (no API)")
        asyncio.run(run_worker_forever(settings, config))
        return 0
    import uvicorn

    from app.main import create_worker_app
    from app.server import server_config

    host = args.host or settings.host
    worker = f"this process delivers only; /healthz, /readyz and /metrics on {host}:{args.port}"
    log_startup(log, settings, config, detail, worker=worker)
    app = create_worker_app(settings, config)
    uvicorn.Server(server_config(app, settings, host, args.port)).run()
    return 0


def _database_answers(settings: Settings, named: str = "RELAY_DATABASE_URL") -> bool:
    """Open (and migrate) the database once before serving: a clear line, not a traceback."""
    from app.bootstrap import DatabaseUnavailable, bootstrap

    async def probe() -> None:
        async with bootstrap(settings, pool_size=1):
            pass

    try:
        asyncio.run(probe())
    except DatabaseUnavailable as exc:
        print(f"cannot open the database ({named}): {exc.cause}", file=sys.stderr)
        return False
    return True


def _check(settings: Settings, args: argparse.Namespace) -> int:
    from app.config.describe import describe_config
    from app.config.oauth_check import oauth_token_warning
    from app.config.placeholders import find_placeholders
    from app.config.sunset import sunset_warnings
    from app.main import load_relay_config

    path = Path(settings.config)
    if not path.exists():
        print(f"no config file at {path}: every hook would answer 404.")
        print(
            "Write one from the sender recipes with `relay init SENDER...` (see `relay "
            "recipes`), or copy relay.example.yaml to relay.yaml; then run relay check."
        )
        return 2
    config, _ = load_relay_config(settings)
    print(describe_config(config, settings))
    warnings = sunset_warnings(config, settings.keap_xmlrpc_sunset)
    if (oauth_warning := oauth_token_warning(settings)) is not None:
        warnings = [*warnings, oauth_warning]
    if warnings:  # a warning, not an error: action sets run until Keap switches XML-RPC off
        print("")
        print("\n".join(warnings))
    placeholders = find_placeholders(config, path.read_text(encoding="utf-8"))
    if placeholders:
        print(
            f"{path} still holds {len(placeholders)} placeholder id"
            f"{'s' if len(placeholders) != 1 else ''} from the recipes; replace each with "
            "your own Infusionsoft id:",
            file=sys.stderr,
        )
        for placeholder in placeholders:
            print(f"  {placeholder.describe(str(path))}", file=sys.stderr)
        return 2
    return 0


def _sign(settings: Settings, args: argparse.Namespace) -> int:
    from app.ingest.cli import print_signed_headers

    return print_signed_headers(settings, args)


def _replay(settings: Settings, args: argparse.Namespace) -> int:
    from app.admin.cli import replay_events

    return replay_events(settings, args)


def _events(settings: Settings, args: argparse.Namespace) -> int:
    from app.admin.cli import print_events

    return print_events(settings, args)


def _recipes(settings: Settings, args: argparse.Namespace) -> int:
    from app.recipes.cli import print_recipes

    return print_recipes(settings, args)


def _keap_login(settings: Settings, args: argparse.Namespace) -> int:
    from app.keap.login import run_login

    return run_login(settings, args)


def _init(settings: Settings, args: argparse.Namespace) -> int:
    from app.recipes.cli import write_config

    return write_config(settings, args)


if __name__ == "__main__":
    raise SystemExit(main())
