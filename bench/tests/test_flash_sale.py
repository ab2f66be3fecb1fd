"""The flash-sale delivery scenario, in small: real processes (relay serve, relay worker,
the fake Infusionsoft) on loopback, as ``python -m bench --only delivery`` runs it."""

from __future__ import annotations

from pathlib import Path

from bench import flash_sale
from bench.report import render_markdown


def test_a_small_flash_sale_drains_in_fewer_calls_than_events(tmp_path: Path) -> None:
    run = flash_sale.run_flash_sale(flash_sale.FlashPlan(contacts=12), tmp_path, lambda _: None)
    figures = run["figures"]
    assert figures["final_statuses"] == {"delivered": 24}
    assert figures["contacts_with_tag_and_sequence"] == 12
    assert figures["throttled_429_after_first_second"] == 0
    # One upsert per contact (the item's reuses the order's), tags and sequences batched.
    assert figures["by_operation"]["contact.upsert"] == 12
    assert figures["calls_per_event"] < 1.5  # naive: 3
    audit = figures["applied_and_order"]  # from the relay's records: each step once, in order
    assert audit["steps_applied_once"] == audit["steps_audited"] == 48
    assert audit["contacts_with_several_events"] == 12
    assert audit["met"]
    machine = dict.fromkeys(("date", "cpu", "cores", "memory_gib", "kernel", "python"), "?")
    machine |= {"sqlite": "?", "postgresql": None, "wrk": None}
    text = render_markdown({"flash_sale": {**run, "command": "test", "machine": machine}}, tmp_path)
    assert "naive bound 80" in text
