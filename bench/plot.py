"""The delivery plot: calls per second over the drain against the ceilings, and the
cumulative calls against the fastest possible schedule. Needs matplotlib (``[bench]``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.drain import Call, minimum_schedule, per_second_counts


def plot_delivery(delivery: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    calls = [Call(at, status, op) for at, status, op in delivery["series"]["calls"]]
    used, throttled = per_second_counts(calls, 0.0)
    seconds = list(range(len(used)))
    per_second = delivery["ceilings"]["per_second"]
    per_minute = delivery["ceilings"]["per_minute"]
    figures = delivery["figures"]

    fig, (rate, total) = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
    rate.bar(seconds, used, width=1.0, align="edge", color="#3b7dd8", label="calls answered")
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
        per_second, color="#d8453b", linestyle="--", linewidth=1, label=f"ceiling {per_second}/s"
    )
    rate.axhline(
        per_minute / 60,
        color="#444444",
        linestyle=":",
        linewidth=1,
        label=f"ceiling {per_minute}/min = {per_minute / 60:g}/s on average",
    )
    rate.set_ylabel("calls per second")
    rate.set_ylim(0, per_second + 2)
    rate.legend(loc="upper right", fontsize=8)
    drain, fastest = figures["drain_seconds"], figures["minimum_drain_seconds"]
    rate.set_title(
        f"Draining {figures['events']} events ({figures['calls']} calls) at key-auth ceilings: "
        f"{drain:.0f} s, fastest possible {fastest:.0f} s"
    )

    used_times = [c.at for c in calls if c.used]
    total.step(
        used_times,
        range(1, len(used_times) + 1),
        where="post",
        color="#3b7dd8",
        label="calls answered (cumulative)",
    )
    best = minimum_schedule(len(used_times), per_second, per_minute)
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
    fig.savefig(path, dpi=110)
    plt.close(fig)
