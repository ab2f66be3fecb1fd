"""Write the results: ``results.json`` (everything, request log included) and
``results.md`` (the short tables and the machine). A run of one benchmark keeps the other
benchmark's last results, each with the command, machine and date it came from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import capacity

JSON_NAME = "results.json"
MARKDOWN_NAME = "results.md"
PLOT_NAME = "delivery.png"
FLASH_PLOT_NAME = "flash_sale.png"
OAUTH_PLOT_NAME = "oauth_scale.png"


def merge_results(out: Path, new: dict[str, Any]) -> dict[str, Any]:
    previous: dict[str, Any] = {}
    path = out / JSON_NAME
    if path.exists():
        try:
            previous = json.loads(path.read_text())
        except (OSError, ValueError):
            previous = {}
    return {**previous, **new}


def write_results(out: Path, results: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / JSON_NAME).write_text(json.dumps(results, indent=1) + "\n")
    (out / MARKDOWN_NAME).write_text(render_markdown(results, out))


def render_markdown(results: dict[str, Any], out: Path) -> str:
    lines = ["# Benchmark results", ""]
    lines += ["Produced by `python -m bench` (see docs/performance.md for how to read them).", ""]
    if "ingest" in results:
        lines += _ingest_section(results["ingest"])
    if "beside" in results:
        lines += _beside_section(results["beside"])
    if "delivery" in results:
        lines += _delivery_section(results["delivery"], (out / PLOT_NAME).exists())
    if "flash_sale" in results:
        lines += _flash_sale_section(results["flash_sale"], (out / FLASH_PLOT_NAME).exists())
    if "oauth_scale" in results:
        lines += _oauth_scale_section(results["oauth_scale"], (out / OAUTH_PLOT_NAME).exists())
    return "\n".join(lines) + "\n"


def _machine_lines(run: dict[str, Any]) -> list[str]:
    m = run["machine"]
    return [
        f"Command: `{run['command']}` — {m['date']}",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; {m['kernel']}; "
        f"Python {m['python']}; SQLite {m['sqlite']}; "
        f"PostgreSQL {m['postgresql'] or 'not used'}; {m['wrk'] or 'no wrk'}",
        "",
    ]


def _ingest_section(ingest: dict[str, Any]) -> list[str]:
    plan = ingest["plan"]
    lines = ["## Ingest", "", *_machine_lines(ingest)]
    lines += [
        f"{plan['rounds']} rounds x {plan['seconds_per_round']:g} s per target, alternating, "
        f"after a {plan['warmup_seconds']:g} s warm-up; `{plan['wrk']}`; medians over rounds.",
        "",
        "| target | accepted/s | p50 ms | p99 ms | non-2xx | socket errors | every 202 stored |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, t in ingest["targets"].items():
        durable = t.get("every_202_durable")
        stored = (
            "n/a (stores nothing)"
            if durable is None
            else (
                f"{'yes' if durable else 'NO'} ({t['accepted_total']} 202s, "
                f"{t['stored_total']} rows, {t.get('ids_checked_total', 0)} ids checked)"
            )
        )
        lines.append(
            f"| {name} | {t['accepted_per_second']:.0f} | {t['p50_ms']:.1f} | "
            f"{t['p99_ms']:.1f} | {t['non_2xx_3xx_total']} | {t['socket_errors_total']} "
            f"| {stored} |"
        )
    lines += ["", *_cpu_lines(ingest["targets"])]
    paired = ingest.get("paired_ratios", {})
    for name, ratio in ingest["ratios"].items():
        line = f"- {name.replace('_over_', ' / ')}: **{ratio:.2f}** (ratio of the medians)"
        if name in paired:
            line += f"; {paired[name]:.2f} (median of the per-round ratios)"
        lines.append(line)
    target = ingest["target"]
    verdict = "met" if target["met"] else "not met"
    lines += [
        f"- target relay-sqlite / bare ≥ {target['relay_sqlite_over_bare']} with every 202 "
        f"stored: **{verdict}**",
    ]
    if target.get("postgres_met") is not None:
        verdict = "met" if target["postgres_met"] else "not met"
        lines.append(
            f"- target relay-postgres / bare ≥ {target['relay_postgres_over_bare']} with every "
            f"202 stored: **{verdict}**"
        )
    for name, settings in ingest.get("durability", {}).items():
        described = "; ".join(f"{key} {value}" for key, value in settings.items())
        lines.append(f"- durability of {name}: {described}")
    if load := ingest.get("load_average"):
        lines.append(
            f"- machine load (1-minute average) before / after: {load['before']} / "
            f"{load['after']} on {ingest['machine']['cores']} cores (other work on them "
            "lowers the ratios)"
        )
    if cores := ingest.get("capacity"):
        lines.append(capacity.describe(cores))
    lines += [f"- note: {note}" for note in ingest.get("notes", [])]
    return [*lines, ""]


def _beside_section(run: dict[str, Any]) -> list[str]:
    plan = run["plan"]
    lines = ["## Ingest beside delivery", "", *_machine_lines(run)]
    lines += [
        f"{plan['relays']}; `{plan['fake']}`. {plan['rounds']} rounds x "
        f"{plan['seconds_per_round']:g} s per relay, alternating; `{plan['wrk']}`; medians "
        "over rounds.",
        "",
        "| relay | accepted/s | p50 ms | p90 ms | p99 ms | delivered/s | non-2xx |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, t in run["targets"].items():
        lines.append(
            f"| {name} | {t['accepted_per_second']:.0f} | {t['p50_ms']:.1f} | "
            f"{t['p90_ms']:.1f} | {t['p99_ms']:.1f} | {t['delivered_per_second']:.1f} | "
            f"{t['non_2xx_3xx_total']} |"
        )
    ratios = run["ratios"]
    stored = "yes" if run["every_202_stored"] else "NO"
    lines += [
        "",
        f"- accepted/s beside delivery / alone: **{ratios['accepted_beside_over_alone']:.2f}**",
        f"- p99 beside delivery / alone: **{ratios['p99_beside_over_alone']:.2f}**",
        f"- every 202 a stored row (each id checked): **{stored}**",
    ]
    return [*lines, ""]


def _cpu_lines(targets: dict[str, dict[str, Any]]) -> list[str]:
    """Where each target's CPU went, per accepted webhook (bench/cpu.py): the relay's
    event loop against the bare one, and the work beside it on the same cores."""
    if not any("cpu_event_loop_us" in t for t in targets.values()):
        return []
    lines = [
        "CPU per accepted webhook, µs (medians over rounds; from /proc):",
        "",
        "| target | event loop | other threads | child processes | PostgreSQL | wrk "
        "| machine busy |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, t in targets.items():

        def cell(key: str, t: dict[str, Any] = t) -> str:
            return f"{t[key]:.0f}" if key in t else "n/a"

        busy = f"{t['machine_busy_percent']:.0f}%" if "machine_busy_percent" in t else "n/a"
        lines.append(
            f"| {name} | {cell('cpu_event_loop_us')} | {cell('cpu_other_threads_us')} | "
            f"{cell('cpu_child_processes_us')} | {cell('cpu_postgres_us')} | "
            f"{cell('cpu_wrk_us')} | {busy} |"
        )
    return [*lines, ""]


def _delivery_section(delivery: dict[str, Any], has_plot: bool) -> list[str]:
    f = delivery["figures"]
    c = delivery["ceilings"]
    plan = delivery["plan"]
    lines = ["## Delivery", "", *_machine_lines(delivery)]
    minutes = ", ".join(
        f"{n} ({u:.0%})" for n, u in zip(f["full_minutes"], f["full_minute_use"], strict=True)
    )
    lines += [
        f"{plan['events']} stored events drained by `relay worker` against `{plan['fake']}`; "
        f"route: {plan['route']}.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| calls per full minute (ceiling {c['per_minute']}) | {minutes or 'no full minute'} |",
        f"| 429s (after the first second) | {f['throttled_429']} "
        f"({f['throttled_429_after_first_second']}) |",
        f"| calls per event | {f['calls_per_event']} ({f['calls']} calls: "
        f"{_operations(f['by_operation'])}) |",
        f"| drain time (first call to last answer) | {f['drain_seconds']:.1f} s |",
        f"| fastest the ceilings allow | {f['minimum_drain_seconds']:.1f} s "
        f"(drain / fastest = {f['drain_over_minimum']:.3f}) |",
        f"| busiest 1 s / 60 s window | {f['busiest_second']} / {f['busiest_minute']} calls |",
        f"| worker start to all delivered | {f['wall_seconds_worker_start_to_all_delivered']:.1f}"
        f" s |",
        f"| final statuses | {_operations(f['final_statuses'])} |",
        "",
    ]
    target = delivery["target"]
    verdict = "met" if target["met"] else "not met"
    lines.append(
        f"- target: every full minute ≥ {target['full_minute_use_at_least']:.0%} of the ceiling, "
        f"no 429 after the first second, all delivered: **{verdict}**"
    )
    if has_plot:
        lines += ["", f"![calls per second during the drain]({PLOT_NAME})"]
    return [*lines, ""]


def _applied_line(audit: dict[str, Any] | None) -> str:
    """The audit of the relay's records (bench/delivery_audit.py) as one table cell."""
    if not audit:
        return "not audited"
    return (
        f"{audit['steps_applied_once']} of {audit['steps_audited']} tag/sequence/action-set "
        f"steps applied exactly once ({audit['steps_applied_more_than_once']} more than once, "
        f"{audit['steps_never_applied']} never); {audit['contacts_out_of_order']} of "
        f"{audit['contacts']} contacts out of order"
    )


def _flash_sale_section(run: dict[str, Any], has_plot: bool) -> list[str]:
    f, c, plan = run["figures"], run["ceilings"], run["plan"]
    lines = ["## Delivery: a flash sale (contact reuse and batching)", "", *_machine_lines(run)]
    lines += [
        f"{plan['events']} events from {plan['contacts']} contacts (order + item each); route: "
        f"{plan['route']}; {plan['worker']}; ceilings {c['per_second']}/s, "
        f"{c['per_minute']}/min, {c['latency_ms']:g} ms latency.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| events per minute | {f['events_per_minute']} (naive bound "
        f"{f['naive_events_per_minute']:g}: **{f['over_naive']}x**) |",
        f"| calls per event | {f['calls_per_event']} ({f['calls']} calls: "
        f"{_operations(f['by_operation'])}) |",
        f"| 429s (after the first second) | {f['throttled_429']} "
        f"({f['throttled_429_after_first_second']}) |",
        f"| drain time (first call to last answer) | {f['drain_seconds']:.1f} s |",
        f"| contacts with their tag and sequence | {f['contacts_with_tag_and_sequence']} |",
        f"| each step once, per-contact order | {_applied_line(f.get('applied_and_order'))} |",
        f"| final statuses | {_operations(f['final_statuses'])} |",
        "",
    ]
    target = run["target"]
    verdict = "met" if target["met"] else "not met"
    lines.append(
        f"- target: ≥ {target['over_naive_at_least']}x the naive bound, no 429 after the first "
        f"second, all delivered, every contact served, each step applied once, per-contact "
        f"order kept: **{verdict}**"
    )
    if has_plot:
        lines += ["", f"![the flash-sale drain]({FLASH_PLOT_NAME})"]
    return [*lines, ""]


def _oauth_scale_section(run: dict[str, Any], has_plot: bool) -> list[str]:
    c, plan = run["ceilings"], run["plan"]
    lines = ["## Delivery: OAuth scale (share of the quota used)", "", *_machine_lines(run)]
    lines += [
        f"{plan['events']} events; route: {plan['route']}; {plan['worker']}; ceilings "
        f"{c['per_second']}/s, {c['per_minute']}/min, {c['latency_ms']:g} ms latency.",
        "",
        "| workers | calls per full minute (share of the quota) | busiest 60 s window | "
        "429s (after 1 s) | calls per event | drain | statuses |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, f in run["runs"].items():
        minutes = ", ".join(
            f"{n} ({u:.1%})" for n, u in zip(f["full_minutes"], f["full_minute_use"], strict=True)
        )
        lines.append(
            f"| {name.replace('_', ' ')} | {minutes or 'no full minute'} | "
            f"{f['busiest_minute']} ({f['busiest_minute'] / c['per_minute']:.1%}) | "
            f"{f['throttled_429']} ({f['throttled_429_after_first_second']}) | "
            f"{f['calls_per_event']} | {f['drain_seconds']:.1f} s | "
            f"{_operations(f['final_statuses'])} |"
        )
    lines.append("")
    for name, f in run["runs"].items():
        lines.append(f"- {name.replace('_', ' ')}: {_applied_line(f.get('applied_and_order'))}")
    verdict = "met" if run["target"]["met"] else "not met"
    lines += [
        "",
        f"- target: every full minute ≥ {run['target']['full_minute_use_at_least']:.0%} of "
        f"the quota, on each, no 429 after the first second, all delivered, each step "
        f"applied once: **{verdict}**",
    ]
    lines += [f"- note: {note}" for note in run.get("notes", [])]
    if has_plot:
        lines += ["", f"![the OAuth-scale drains]({OAUTH_PLOT_NAME})"]
    return [*lines, ""]


def _operations(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items())
