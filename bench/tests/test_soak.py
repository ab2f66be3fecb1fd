"""The soak's machinery (``python -m bench soak``), run for 30 s so CI tests it: every
fault happens at least once, really reaches the relay, and the audit passes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.soak import FAULTS, SoakPlan, run_soak, write_results
from bench.soak_audit import audit
from devkit.pgcluster import unavailable_reason


@pytest.mark.timeout(100)
def test_a_short_soak_with_every_fault_passes_its_audit(tmp_path: Path) -> None:
    reason = unavailable_reason()
    if reason is not None:
        if os.environ.get("RELAY_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    results = run_soak(SoakPlan(seconds=30, drain_seconds=40), tmp_path, lambda _: None)

    assert {fault: results["faults"].get(fault, 0) for fault in FAULTS} == dict.fromkeys(FAULTS, 1)
    assert results["faults"]["postgres_restarts"] == 1
    answers = results["fake_answers"]
    for status in ("429", "503", "502", "dropped"):  # each fault reached the relay's calls
        assert answers.get(status, 0) >= 1, answers
    assert results["webhooks"]["acknowledged"] >= 100
    at_kill = results["in_flight_at_kills"]  # the kill landed mid-work
    assert at_kill["keap_calls_in_flight"] >= 1
    assert at_kill["webhooks_in_flight"] >= 1
    assert sum(results["outcomes"]["outcome_unknown"].values()) >= 3  # 502 after apply, x3
    checks = results["audit"]["checks"]
    assert results["audit"]["passed"], {k: v for k, v in checks.items() if not v["passed"]}

    write_results(tmp_path / "results", results)
    assert "**Audit: passed**" in (tmp_path / "results" / "soak.md").read_text()


def test_the_audit_catches_a_call_run_twice_a_lost_event_and_a_held_claim() -> None:
    steps = [
        {"action": "contact.upsert", "status": "done", "result": {"contact_id": 1}},
        {"action": "action_set", "status": "done", "result": {"contact_id": 1}},
    ]
    events = [
        {"id": "e1", "status": "delivered", "last_error": None, "claimed_by": None,
         "contact_email": "a@example.com", "steps": steps},
        {"id": "e2", "status": "pending", "last_error": None, "claimed_by": "w1",
         "contact_email": "b@example.com", "steps": steps},
    ]  # fmt: skip
    fake = {
        "contacts": [{"id": 1, "email": "a@example.com"}, {"id": 2, "email": "b@example.com"}],
        "action_set_runs": [{"contact_id": 1}, {"contact_id": 1}],
        "emails_sent": [],
        "goals_achieved": [],
    }
    result = audit(events, ["e1", "e2", "e3"], fake)
    failed = {name for name, check in result.checks.items() if not check.passed}
    assert failed == {
        "every_acknowledged_webhook_stored",  # e3
        "every_event_delivered_or_dead_with_reason",  # e2 pending
        "nothing_applied_twice",  # e1's action set ran twice
        "nothing_marked_done_without_running",  # e2's action set done, never ran
        "no_claim_left_held",  # e2 claimed
    }
    # An outcome_unknown step that never ran is allowed.
    steps[1]["result"] = {"contact_id": 1, "outcome_unknown": "answer lost"}
    fake["action_set_runs"] = [{"contact_id": 1}]
    events[1].update(status="delivered", claimed_by=None)
    assert audit(events, ["e1", "e2"], fake).passed
