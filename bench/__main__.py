"""``python -m bench [--quick] [--only ingest|beside|delivery] [--out bench/results]``, and
``python -m bench soak [--minutes 10]`` (bench/soak.py)

Runs the ingest, ingest-beside-delivery (bench/beside.py) and delivery benchmarks on
loopback, then writes ``results.json``,
``results.md`` and a plot per delivery scenario (``delivery.png``, ``flash_sale.png``,
``oauth_scale.png``) to the output folder. Exit status: 0 when every
benchmark ran (targets met or not: the results say), 1 when a 202 was not stored or the
backlog did not drain, 2 when a tool is missing.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import beside, delivery, flash_sale, ingest, oauth_scale
from bench.databases import DEFAULT_POSTGRES_URL
from bench.machine import describe_machine
from bench.report import (
    FLASH_PLOT_NAME,
    OAUTH_PLOT_NAME,
    PLOT_NAME,
    merge_results,
    write_results,
)
from bench.wrk import wrk_path, wrk_version

DEFAULT_OUT = Path("bench/results")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["soak"]:  # python -m bench soak: see bench/soak.py
        from bench import soak

        return soak.main(argv[1:])
    args = _parser().parse_args(argv)
    command = "python -m bench" + "".join(f" {shlex.quote(a)}" for a in (argv or sys.argv[1:]))
    wrk = wrk_path()
    run_ingest = args.only in (None, "ingest")
    run_beside = args.only in (None, "beside")
    if (run_ingest or run_beside) and wrk is None:
        print(
            "wrk is not installed (Debian: apt-get install wrk); the ingest benchmarks need "
            "it. Run `python -m bench --only delivery` without it.",
            file=sys.stderr,
        )
        return 2
    if args.only in (None, "delivery") and not _has_matplotlib():
        print("matplotlib is not installed: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    postgres_url = None if args.no_postgres else args.postgres_url
    machine = describe_machine(postgres_url, wrk_version(wrk) if wrk else None)
    new: dict[str, Any] = {}
    failed = False
    with tempfile.TemporaryDirectory(prefix="relay-bench-") as tmp:
        workdir = Path(tmp)
        if run_ingest:
            assert wrk is not None
            plan = ingest.QUICK if args.quick else ingest.FULL
            result = ingest.run_ingest(plan, wrk, postgres_url, workdir, _log)
            new["ingest"] = {"command": command, "machine": machine, **result}
            failed |= not ingest.all_durable(result)
        if run_beside:
            assert wrk is not None
            plan_beside = beside.QUICK if args.quick else beside.FULL
            result = beside.run_beside(plan_beside, wrk, workdir, _log)
            new["beside"] = {"command": command, "machine": machine, **result}
            failed |= not result["every_202_stored"]
        if args.only in (None, "delivery"):
            scenarios = _run_delivery_scenarios(args, postgres_url, workdir)
            if scenarios is None:
                return 1
            for name, result in scenarios.items():
                new[name] = {"command": command, "machine": machine, **result}
    out: Path = args.out
    if "delivery" in new:
        from bench.plot import plot_delivery, plot_flash_sale, plot_oauth_scale

        plot_delivery(new["delivery"], out / PLOT_NAME)
        plot_flash_sale(new["flash_sale"], out / FLASH_PLOT_NAME)
        if "oauth_scale" in new:
            plot_oauth_scale(new["oauth_scale"], out / OAUTH_PLOT_NAME)
    write_results(out, merge_results(out, new))
    print((out / "results.md").read_text())
    return 1 if failed else 0


def _run_delivery_scenarios(
    args: argparse.Namespace, postgres_url: str | None, workdir: Path
) -> dict[str, dict[str, Any]] | None:
    """The delivery benchmark's scenarios, by name; None (said why) when one failed."""
    results: dict[str, dict[str, Any]] = {}
    flash = flash_sale.QUICK if args.quick else flash_sale.FULL
    if args.flash_contacts is not None:
        flash = flash_sale.FlashPlan(contacts=args.flash_contacts)
    runs: list[tuple[str, str, Any]] = [
        (
            "delivery",
            "delivery",
            lambda: delivery.run_delivery(
                delivery.QUICK if args.quick else delivery.FULL, workdir, _log
            ),
        ),
        ("flash_sale", "flash-sale", lambda: flash_sale.run_flash_sale(flash, workdir, _log)),
    ]
    if postgres_url is not None:
        scale = oauth_scale.QUICK if args.quick else oauth_scale.FULL
        if args.oauth_events is not None:
            scale = oauth_scale.OAuthPlan(events=args.oauth_events)
        runs.append(
            (
                "oauth_scale",
                "OAuth-scale",
                lambda: oauth_scale.run_oauth_scale(scale, postgres_url, workdir, _log),
            )
        )
    for name, label, run in runs:
        try:
            results[name] = run()
        except RuntimeError as exc:
            print(f"{label} benchmark failed: {exc}", file=sys.stderr)
            return None
    return results


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark the relay's ingest (against a bare FastAPI endpoint) and its "
        "delivery (against the fake Infusionsoft's rate ceilings).",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="3 rounds x 3 s of ingest, 2 x 3 s beside delivery, 100 events of delivery",
    )
    parser.add_argument(
        "--only", choices=["ingest", "beside", "delivery"], help="run one benchmark"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"where to write the results (default {DEFAULT_OUT})",
    )
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES_URL,
        help="server for relay-postgres; a fresh schema is made and dropped "
        f"(default {DEFAULT_POSTGRES_URL})",
    )
    parser.add_argument("--no-postgres", action="store_true", help="skip relay-postgres")
    parser.add_argument(
        "--flash-contacts",
        type=int,
        help="contacts in the flash-sale delivery scenario, two events each "
        f"(default {flash_sale.FULL.contacts}; --quick {flash_sale.QUICK.contacts})",
    )
    parser.add_argument(
        "--oauth-events",
        type=int,
        help="events in the OAuth-scale delivery scenario, run on one worker and on two "
        f"replicas over PostgreSQL (default {oauth_scale.FULL.events}; --quick "
        f"{oauth_scale.QUICK.events}; skipped with --no-postgres)",
    )
    return parser


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
