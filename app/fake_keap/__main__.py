"""``python -m app.fake_keap``: a fake Infusionsoft for sandboxes and benchmarks."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from app.fake_keap.server import FakeKeapServer
from app.fake_keap.state import FakeKeapState


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m app.fake_keap", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000, help="0 picks a free port")
    parser.add_argument("--api-key", action="append", default=[], help="repeatable")
    parser.add_argument("--client-id")
    parser.add_argument("--client-secret")
    parser.add_argument("--refresh-token", help="the refresh token the fake accepts first")
    parser.add_argument("--per-second", type=int)
    parser.add_argument("--per-minute", type=int)
    parser.add_argument("--per-day", type=int)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--retry-after", action="store_true", help="send Retry-After on 429")
    parser.add_argument("--access-token-lifetime", type=float, default=86400.0)
    parser.add_argument(
        "--xmlrpc-retired",
        action="store_true",
        help="answer every XML-RPC call as the retired endpoint (404, Apigee JSON fault), "
        'as after Keap\'s sunset; POST /_fake/config {"xmlrpc_retired": false} undoes it',
    )
    return parser.parse_args(argv)


def build_state(args: argparse.Namespace) -> FakeKeapState:
    state = FakeKeapState(
        valid_keys=frozenset(args.api_key),
        per_second=args.per_second,
        per_minute=args.per_minute,
        per_day=args.per_day,
        latency_ms=args.latency_ms,
        retry_after=args.retry_after,
        access_token_lifetime=args.access_token_lifetime,
    )
    client = (args.client_id, args.client_secret)
    if any(client) or args.refresh_token:
        if not all(client):
            sys.exit(
                "--client-id and --client-secret go together (--refresh-token needs both; "
                "without it, get one through /app/oauth/authorize, e.g. `relay keap login`)"
            )
        state.set_oauth(args.client_id, args.client_secret, args.refresh_token)
    if args.xmlrpc_retired:
        state.retire_xmlrpc()
    return state


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with FakeKeapServer(build_state(args), host=args.host, port=args.port) as server:
        print(f"fake-keap base_url={server.base_url}", flush=True)
        print(f"fake-keap token_url={server.token_url}", flush=True)
        print(f"fake-keap authorize_url={server.authorize_url}", flush=True)
        print(f"fake-keap control_url={server.control_url}", flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
