"""The ``relay`` command: serve, worker, check, sign, replay."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError
from pydantic_settings import SettingsError

from app.admin.cli import terminal_text
from app.errors import ConfigError
from app.interpreter import tune_for_serving
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
        description="Run the webhook API on RELAY_HOST:RELAY_PORT. With --workers 0 only the "
        "API runs (scale delivery apart with `relay worker`).",
    )
    serve.add_argument("--host", help="listen address (default RELAY_HOST)")
    serve.add_argument("--port", type=int, help="listen port (default RELAY_PORT)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        choices=[0, 1],
        help="1: deliver in this process (default); 0: API only",
    )
    serve.set_defaults(run=_serve)

    worker = commands.add_parser(
        "worker",
        help="run only the delivery worker",
        description="Deliver stored events to Infusionsoft, without serving HTTP.",
    )
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
        description="Print the signature headers for posting FILE to /hooks/SOURCE, one "
        "'Name: value' per line: each line is one curl -H argument (see the README).",
    )
    sign.add_argument("source", help="a source name from relay.yaml")
    sign.add_argument("file", type=Path, help="the body to sign, byte for byte")
    sign.set_defaults(run=_sign)

    replay = commands.add_parser(
        "replay",
        help="re-queue events (by default the dead ones)",
        description="Re-queue matching events for delivery; each runs only its unfinished steps.",
    )
    replay.add_argument(
        "--status",
        choices=["dead", "pending", "delivered"],
        help="default: dead (with --dry-run-steps: any status)",
    )
    replay.add_argument("--source", help="only events from this source")
    replay.add_argument("--since", help="only events received at or after this ISO-8601 time")
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
        choices=["pending", "delivered", "dead", "ignored"],
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
        help="write a relay.yaml from recipes",
        description="Write relay.yaml (never over an existing file) from the named senders' "
        "recipes, and print the .env lines for their secrets.",
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

    from app.main import create_app
    from app.observability.logging import configure_logging
    from app.server import server_config

    configure_logging(settings.log_format, pii=settings.log_pii)
    app = create_app(settings, run_worker=args.workers > 0)
    if not _database_answers(settings):
        return 2
    config = server_config(
        app, settings, args.host or settings.host, settings.port if args.port is None else args.port
    )
    tune_for_serving()  # GIL switch interval and garbage collector (app/interpreter.py)
    uvicorn.Server(config).run()
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from app.delivery.runner import run_worker_forever
    from app.main import load_relay_config
    from app.observability.logging import configure_logging

    configure_logging(settings.log_format, pii=settings.log_pii)
    config, _ = load_relay_config(settings)
    if not _database_answers(settings):
        return 2
    asyncio.run(run_worker_forever(settings, config))
    return 0


def _database_answers(settings: Settings) -> bool:
    """Open (and migrate) the database once before serving: a clear line, not a traceback."""
    from app.store.base import StoreUnavailable
    from app.store.factory import open_store

    async def probe() -> None:
        store = open_store(settings.database_url, pool_size=1)
        await store.open()
        await store.close()

    try:
        asyncio.run(probe())
    except (StoreUnavailable, OSError, ValueError) as exc:
        print(f"cannot open the database (RELAY_DATABASE_URL): {exc}", file=sys.stderr)
        return False
    return True


def _check(settings: Settings, args: argparse.Namespace) -> int:
    from app.config.describe import describe_config
    from app.config.sunset import sunset_warnings
    from app.main import load_relay_config

    path = Path(settings.config)
    if not path.exists():
        print(f"no config file at {path}: every hook would answer 404.")
        print("Copy relay.example.yaml to relay.yaml (or set RELAY_CONFIG) and run relay check.")
        return 2
    config, _ = load_relay_config(settings)
    print(describe_config(config, settings))
    warnings = sunset_warnings(config, settings.keap_xmlrpc_sunset)
    if warnings:  # a warning, not an error: action sets run until Keap switches XML-RPC off
        print("")
        print("\n".join(warnings))
    return 0


def _sign(settings: Settings, args: argparse.Namespace) -> int:
    from app.ingest.signatures import sign_request
    from app.main import load_relay_config

    config, _ = load_relay_config(settings)
    source = config.sources.get(args.source)
    if source is None:
        known = ", ".join(sorted(config.sources)) or "none"
        print(f"no source named {args.source!r} (sources: {known})", file=sys.stderr)
        return 2
    try:
        body = args.file.read_bytes()
    except OSError as exc:
        print(f"{args.file}: cannot read: {exc.strerror}", file=sys.stderr)
        return 2
    headers = sign_request(source.verify, body)
    scheme = source.verify.scheme
    if scheme == "token" and source.verify.at is not None:
        print(
            f"# scheme token: put the shared secret at {source.verify.at.expression}",
            file=sys.stderr,
        )
    elif scheme == "none":
        print(
            "# scheme none: nothing to sign; the sender's address must be allowed", file=sys.stderr
        )
    for name, value in headers.items():
        print(f"{name}: {value}")
    return 0


def _replay(settings: Settings, args: argparse.Namespace) -> int:
    from app.admin.cli import missing_database
    from app.admin.service import ReplayOptions, replay_matching
    from app.main import load_relay_config
    from app.store.factory import open_store

    since = None
    if args.since:
        try:
            since = datetime.fromisoformat(args.since).timestamp()
        except ValueError:
            print(f"--since: {args.since!r} is not an ISO-8601 time", file=sys.stderr)
            return 2
    if (problem := missing_database(settings.database_url)) is not None:
        print(problem, file=sys.stderr)
        return 2
    status = args.status or (None if args.dry_run_steps else "dead")
    options = ReplayOptions(
        from_start=args.from_start,
        dry_run_steps=args.dry_run_steps,
        replan=load_relay_config(settings)[0] if args.replan else None,
    )
    if args.dry_run_steps and settings.is_dry_run:
        print(
            "warning: the relay is still in dry-run (no credentials, or RELAY_DRY_RUN=true): "
            "these steps will only be recorded again",
            file=sys.stderr,
        )

    async def run() -> int:
        store = open_store(settings.database_url)
        await store.open()
        try:
            return await replay_matching(store, status, args.source, since, options)
        finally:
            await store.close()

    count = asyncio.run(run())
    print(f"requeued {count} event{'s' if count != 1 else ''}")
    return 0


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
