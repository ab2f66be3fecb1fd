"""The delivery plots, one per scenario: calls per second over each drain against the
ceilings, and the cumulative calls against the fastest schedule the ceilings allow.
Needs matplotlib (``[bench]``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.drain import Call, minimum_schedule, per_second_counts

COLOURS = ["#3b7dd8", "#2a9d55", "#b26bd8"]


def plot_delivery(delivery: dict[str, Any], path: Path) -> None:
    """The key-auth backlog (``run_delivery``'s result)."""
    figures = delivery["figures"]
    drain, fastest = figures["drain_seconds"], figures["minimum_drain_seconds"]
    title = (
        f"Draining {figures['events']} events ({figures['calls']} calls) at key-auth ceilings: "
        f"{drain:.0f} s, fastest possible {fastest:.0f} s"
    )
    plot_drains([("one worker", delivery["series"], figures)], delivery["ceilings"], title, path)


def plot_flash_sale(flash: dict[str, Any], path: Path) -> None:
    f = flash["figures"]
    title = (
        f"Flash sale: {f['events']} events, {f['calls']} calls ({f['calls_per_event']} per event): "
        f"{f['events_per_minute']} events/min, {f['over_naive']}x the naive bound"
    )
    plot_drains([("one worker", flash["series"], f)], flash["ceilings"], title, path)


def plot_oauth_scale(scale: dict[str, Any], path: Path) -> None:
    runs = [(name.replace("_", " "), run["series"], run) for name, run in scale["runs"].items()]
    uses = "; ".join(
        f"{label}: {', '.join(f'{u:.1%}' for u in f.get('full_minute_use') or [])}"
        for label, _, f in runs
    )
    title = f"OAuth ceilings, PostgreSQL — quota used per full minute: {uses}"
    plot_drains(runs, scale["ceilings"], title, path)


def plot_drains(
    runs: list[tuple[str, dict[str, Any], dict[str, Any]]],
    ceilings: dict[str, Any],
    title: str,
    path: Path,
) -> None:
    """One calls-per-second panel per run, then every run's cumulative calls."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    per_second, per_minute = ceilings["per_second"], ceilings["per_minute"]
    fig, axes = plt.subplots(len(runs) + 1, 1, figsize=(11, 3.5 * (len(runs) + 1)), sharex=True)
    total = axes[-1]
    longest = 0
    for n, ((label, series, _figures), rate) in enumerate(zip(runs, axes, strict=False)):
        colour = COLOURS[n % len(COLOURS)]
        calls = [Call(at, status, op) for at, status, op in series["calls"]]
        used, throttled = per_second_counts(calls, 0.0)
        seconds = list(range(len(used)))
        rate.bar(seconds, used, width=1.0, align="edge", color=colour, label=f"{label}: answered")
        if any(throttled):
            rate.bar(
                seconds,
                throttled,
                width=1.0,
                align="edge",
                bottom=used,
                color="#d8453b",
                label="429 Too Many Requests",
            )
        rate.axhline(
            per_second, color="#d8453b", linestyle="--", linewidth=1, label=f"{per_second}/s"
        )
        rate.axhline(
            per_minute / 60,
            color="#444444",
            linestyle=":",
            linewidth=1,
            label=f"{per_minute}/min = {per_minute / 60:g}/s on average",
        )
        rate.set_ylabel("calls per second")
        rate.set_ylim(0, per_second + 3)
        rate.legend(loc="lower right", fontsize=8)
        used_times = [c.at for c in calls if c.used]
        longest = max(longest, len(used_times))
        total.step(
            used_times,
            range(1, len(used_times) + 1),
            where="post",
            color=colour,
            label=f"{label}: calls answered (cumulative)",
        )
    axes[0].set_title(title, fontsize=9)
    best = minimum_schedule(longest, per_second, per_minute)
    total.step(
        best,
        range(1, len(best) + 1),
        where="post",
        color="#444444",
        linestyle=":",
        label="fastest schedule the ceilings allow",
    )
    total.set_xlabel("seconds since the first call")
    total.set_ylabel("calls")
    total.legend(loc="upper left", fontsize=8)
    total.grid(alpha=0.3)

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
