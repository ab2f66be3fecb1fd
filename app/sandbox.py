"""``relay sandbox``: the relay with your relay.yaml, delivering to the fake Infusionsoft
(the top-level ``fake_keap`` package of a source checkout) on this machine — to watch an
order go through, fail and be replayed before any real account is involved.

The fake is a development tool, not part of the relay: it is not in the wheel or the image,
and nothing in ``app`` imports it but :func:`load_fake_keap`, lazily, for this command.

The sandbox keeps its events in its own database (``./data/sandbox.db`` by default), so
trying things never touches the real one, and it serves on 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import argparse
import importlib
import json
import secrets
import shlex
import sys
from pathlib import Path
from types import ModuleType

from pydantic import SecretStr

from app.settings import Settings

SANDBOX_DATABASE = "sqlite:///./data/sandbox.db"
SANDBOX_KEY = "sandbox-api-key"  # the only key the fake accepts; not a real credential
# What to post to the fake's POST /_fake/config to make calls fail (python -m fake_keap
# --help lists every control).
FAILURES = (
    (
        "the next call answers 400: its event goes dead with the reason",
        {"fail_next": {"status": 400}},
    ),
    (
        "the next 3 calls answer 503: the relay retries them with backoff",
        {"fail_next": {"status": 503, "count": 3}},
    ),
    ("every call answers 503 for 60 s (an outage)", {"outage": {"status": 503, "seconds": 60}}),
)


NEEDS_CHECKOUT = (
    "relay sandbox needs a source checkout: the fake Infusionsoft it runs (fake_keap/) is "
    "not part of the installed package. Clone the repository and run `pip install -e .` "
    "there (docs/sandbox.md)."
)


def source_checkout() -> Path:
    """Where a source checkout would hold fake_keap/: the folder above the app package (an
    editable install imports app/ from the checkout; a wheel from site-packages)."""
    return Path(__file__).resolve().parent.parent


def load_fake_keap() -> ModuleType | None:
    """The fake Infusionsoft package, or None when this is no source checkout.

    ``python -m app.cli`` from the checkout imports it from the working directory; the
    ``relay`` script of an editable install does not have the checkout on sys.path, so the
    checkout beside app/ is added (at the end: it shadows nothing installed)."""
    try:
        return importlib.import_module("fake_keap")
    except ModuleNotFoundError as exc:
        if exc.name != "fake_keap":
            raise  # the fake is there but something it needs is not: say so, as it is
    checkout = source_checkout()
    if not (checkout / "fake_keap" / "__init__.py").is_file():
        return None
    sys.path.append(str(checkout))
    return importlib.import_module("fake_keap")


def sandbox_settings(settings: Settings, args: argparse.Namespace, base_url: str) -> Settings:
    """The user's settings, pointed at the fake: live (not dry-run) with the fake's key,
    the sandbox database, and an admin token for the dashboard."""
    admin = settings.admin_token or SecretStr(secrets.token_urlsafe(18))
    return settings.model_copy(
        update={
            "keap_base_url": base_url,
            "keap_api_key": SecretStr(SANDBOX_KEY),
            "keap_client_id": None,
            "keap_client_secret": None,
            "keap_refresh_token": None,
            "dry_run": False,
            "database_url": args.database or SANDBOX_DATABASE,
            "admin_token": admin,
            "host": args.host,
            "port": settings.port if args.port is None else args.port,
        }
    )


def run_sandbox(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from app.bootstrap import setup_logging
    from app.config.placeholders import find_placeholders
    from app.config.startup import log_startup
    from app.main import create_app, load_relay_config, log
    from app.server import server_config

    fake_keap = load_fake_keap()
    if fake_keap is None:
        print(NEEDS_CHECKOUT, file=sys.stderr)
        return 2
    config, detail = load_relay_config(settings)  # a bad file stops here, with its problems
    try:
        fake_server = fake_keap.FakeKeapServer(
            host="127.0.0.1", port=args.fake_port, valid_keys=frozenset([SANDBOX_KEY])
        )
    except OSError as exc:
        print(
            f"relay sandbox: the fake Infusionsoft cannot listen on 127.0.0.1:{args.fake_port} "
            f"({exc.strerror or exc}): choose another port with --fake-port (0: any free one)",
            file=sys.stderr,
        )
        return 2
    with fake_server as fake:
        # After the fake's uvicorn.Config: building one resets the logging configuration.
        setup_logging(settings)
        sandbox = sandbox_settings(settings, args, fake.base_url)
        app = create_app(sandbox, config=config, run_worker=True)
        path = Path(settings.config)
        placeholders = (
            find_placeholders(config, path.read_text(encoding="utf-8")) if path.exists() else []
        )
        _print_banner(sandbox, settings, list(config.sources), fake.control_url, len(placeholders))
        log_startup(log, sandbox, config, detail, worker="runs in this process (sandbox)")
        server = uvicorn.Server(server_config(app, sandbox, sandbox.host, sandbox.port))
        server.run()
    return 0


def _print_banner(
    sandbox: Settings,
    user: Settings,
    sources: list[str],
    control_url: str,
    placeholder_count: int,
) -> None:
    relay = f"http://{_shown_host(sandbox.host)}:{sandbox.port}"
    say = print
    say(f"relay sandbox: the relay on {relay}, delivering to a fake Infusionsoft at")
    say(f"  {sandbox.keap_base_url} (nothing leaves this machine; events are kept in")
    say(f"  {sandbox.database_url}, not in your RELAY_DATABASE_URL).")
    say("")
    if sources:
        say("Post webhooks to (`relay sign SOURCE FILE` prints the headers to send):")
        for name in sources:
            say(f"  {relay}/hooks/{name}")
    else:
        say("No sources yet: write relay.yaml with `relay init SENDER...`, then start again.")
    if placeholder_count:
        say(
            f"  ({placeholder_count} placeholder ids remain in {user.config}: the fake accepts "
            "any id; `relay check` names them)"
        )
    say("")
    say(f"Dashboard: {relay}/admin/")
    if user.admin_token is None:
        assert sandbox.admin_token is not None
        say(f"  admin token (made for this run): {sandbox.admin_token.get_secret_value()}")
    else:
        say("  admin token: your RELAY_ADMIN_TOKEN")
    say("")
    say(f"What the fake Infusionsoft now holds (contacts, tags, every call): {control_url}/state")
    say("Make calls fail, to see retries and dead events (then replay from the dashboard):")
    for effect, body in FAILURES:
        say(f"  {effect}:")
        say(
            f"    curl -X POST {control_url}/config -H 'Content-Type: application/json' "
            f"-d {shlex.quote(json.dumps(body))}"
        )
    say("Walk-through: docs/sandbox.md.  Ctrl+C stops the relay and the fake.")
    sys.stdout.flush()


def _shown_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else host
