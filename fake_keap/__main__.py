"""``python -m fake_keap``: a fake Infusionsoft (Keap) API on this machine, for
sandboxes, tests and benchmarks. It prints its base_url, token_url and control_url."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from fake_keap.server import FakeKeapServer
from fake_keap.state import FakeKeapState

CONTROL_API = """\
Defaults: any positive tag, action set, template, sequence and goal id exists (make it
strict with known_tag_ids etc.); no rate ceilings; no latency; no fault. With no
--api-key, every API key is refused; the relay sends RELAY_KEAP_API_KEY, so start the fake
with the same key (`relay sandbox` does all this for you).

Point the relay at it:
  RELAY_KEAP_BASE_URL=<base_url printed on start>   (http://127.0.0.1:9000/crm)
  RELAY_KEAP_API_KEY=<one of the --api-key values>
  OAuth instead: RELAY_KEAP_TOKEN_URL=<token_url> and the --client-id, --client-secret
  and --refresh-token values as RELAY_KEAP_CLIENT_ID, _CLIENT_SECRET, _REFRESH_TOKEN.

Control API (JSON), at <control_url> = http://HOST:PORT/_fake:
  GET  /_fake/state[?log_limit=N]  contacts (with tags and sequences), emails sent, goals
                                   achieved, action set runs, every request, counters
  POST /_fake/reset                forget contacts, calls and faults; {"keep_config": false}
                                   also resets the settings below
  POST /_fake/config               change behaviour; any of:
    {"fail_next": {"status": 400}}              the next call answers 400 (a dead event)
    {"fail_next": {"status": 503, "count": 3, "operation": "tags.add",
                   "retry_after": 5, "after_handling": false}}
                                                status, or "drop" to cut the connection;
                                                after_handling: apply it, lose the answer
    {"outage": {"status": 503, "seconds": 60}}  every call fails (false clears it)
    {"xmlrpc_brownout": true}                   XML-RPC answers as in a brownout
    {"xmlrpc_retired": true}                    XML-RPC is gone, as after Keap's sunset
    {"reject_all_credentials": true}            every credential answers 401
    {"faults": {"method": "ContactService.runActionSequence", "code": 2,
                "string": "[RecordNotFound]"}}  an XML-RPC fault (clear_faults: true)
    {"expire_access_tokens": true}              OAuth access tokens expire now
    {"per_second": 5, "per_minute": 240, "latency_ms": 150, "retry_after": true,
     "known_tag_ids": [101, 102], "valid_keys": ["k1"]}   any setting of FakeBehaviour
Example:
  curl -X POST http://127.0.0.1:9000/_fake/config -H 'Content-Type: application/json' \\
       -d '{"fail_next": {"status": 400}}'
"""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m fake_keap",
        description=__doc__,
        epilog=CONTROL_API,
        formatter_class=_Formatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="listen address")
    parser.add_argument("--port", type=int, default=9000, help="0 picks a free port")
    parser.add_argument(
        "--api-key",
        action="append",
        default=[],
        help="an API key the fake accepts (repeatable; none: every key is refused)",
    )
    parser.add_argument("--client-id", help="OAuth client id (with the next two)")
    parser.add_argument("--client-secret", help="OAuth client secret")
    parser.add_argument("--refresh-token", help="the refresh token the fake accepts first")
    parser.add_argument("--per-second", type=int, help="calls allowed per second (none: no limit)")
    parser.add_argument("--per-minute", type=int, help="calls allowed per minute (none: no limit)")
    parser.add_argument("--per-day", type=int, help="calls allowed per day (none: no limit)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every answer")
    parser.add_argument("--retry-after", action="store_true", help="send Retry-After on 429")
    parser.add_argument(
        "--access-token-lifetime",
        type=float,
        default=86400.0,
        help="seconds an OAuth access token lives",
    )
    parser.add_argument(
        "--xmlrpc-retired",
        action="store_true",
        help="answer every XML-RPC call as the retired endpoint (404, Apigee JSON fault), "
        'as after Keap\'s sunset; POST /_fake/config {"xmlrpc_retired": false} undoes it',
    )
    return parser.parse_args(argv)


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults after each option's help; the epilog's layout kept."""


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
