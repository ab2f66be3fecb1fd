"""A call that must not run twice (action set, email template, goal) is not repeated after
an answer that says Keap may have carried it out: the step is ``outcome_unknown`` in the
event JSON and the dashboard, and counted in /metrics. Answers that say it was not carried
out are retried. End to end: HTTP in, the fake Infusionsoft out (docs/delivery-guarantees.md).
"""

from __future__ import annotations

from typing import Any

import pytest

from app.config.models import RelayConfig
from fake_keap.server import FakeKeapServer
from fake_keap.state import FakeKeapState
from tests.delivery.conftest import Relay, running_relay
from tests.delivery.test_delivery_e2e import ORDER

ADMIN_TOKEN = "admin-token-for-maybe-applied-3f9c2a71"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# The step's action → the operation the fake names its call.
NOT_REPEATABLE = {
    "action_set": "action_set.run",
    "email_template": "email_template.send",
    "goal": "goal.achieve",
}


def runs(state: FakeKeapState, action: str) -> int:
    """How often Infusionsoft carried the action out."""
    done = {
        "action_set": state.action_set_runs,
        "email_template": state.emails_sent,
        "goal": state.goals_achieved,
    }
    return len(done[action])


async def shown(relay: Relay, event_id: str) -> tuple[dict[str, Any], str]:
    """The event as the admin API answers it, and its page in the dashboard."""
    event = await relay.client.get(f"/admin/events/{event_id}", headers=AUTH)
    assert event.status_code == 200, event.text
    page = await relay.client.get(f"/admin/events/{event_id}/view", headers=AUTH)
    assert page.status_code == 200, page.text
    return event.json(), page.text


async def deliver_order(
    database_url: str, fake: FakeKeapServer, config: RelayConfig
) -> tuple[dict[str, Any], str, str]:
    """Post ORDER, wait until it is delivered: its JSON, its page and the /metrics text."""
    async with running_relay(database_url, fake, config, admin_token=ADMIN_TOKEN) as relay:
        event_id = await relay.post(ORDER)
        await relay.wait_for(event_id, "delivered")
        event, page = await shown(relay, event_id)
        metrics = (await relay.client.get("/metrics")).text
    return event, page, metrics


def metric(text: str, action: str) -> float:
    prefix = f'relay_steps_outcome_unknown_total{{action="{action}"}} '
    values = [float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix)]
    assert values, f"no {prefix.strip()} in /metrics"
    return values[0]


@pytest.mark.parametrize("status", [502, 504, 500])
@pytest.mark.parametrize("action", list(NOT_REPEATABLE))
async def test_a_gateway_failure_after_keap_carried_the_call_out_is_not_repeated(
    database_url: str,
    fake_keap: FakeKeapServer,
    delivery_config: RelayConfig,
    action: str,
    status: int,
) -> None:
    # Keap carries the call out; its gateway then answers the failure instead of the result.
    fake_keap.state.fail_next(status, operation=NOT_REPEATABLE[action], after_handling=True)
    event, page, metrics = await deliver_order(database_url, fake_keap, delivery_config)
    state = fake_keap.state
    assert runs(state, action) == 1
    assert state.request_count(NOT_REPEATABLE[action]) == 1  # sent once, never again
    statuses = {step["action"]: step["status"] for step in event["steps"]}
    assert statuses.pop(action) == "outcome_unknown"
    assert set(statuses.values()) == {"done"}  # the steps after it still ran
    step = next(s for s in event["steps"] if s["action"] == action)
    assert f"HTTP {status}" in step["outcome_unknown"]
    assert "replay the event from the start" in step["outcome_unknown"]
    assert page.count('data-testid="step-status" data-status="outcome_unknown"') == 1
    assert metric(metrics, action) == 1
    assert {metric(metrics, other) for other in NOT_REPEATABLE if other != action} == {0}


@pytest.mark.parametrize("retry_after", [None, 1.0])
@pytest.mark.parametrize("action", list(NOT_REPEATABLE))
async def test_a_503_before_keap_carried_the_call_out_is_retried_and_runs_once(
    database_url: str,
    fake_keap: FakeKeapServer,
    delivery_config: RelayConfig,
    action: str,
    retry_after: float | None,
) -> None:
    fake_keap.state.fail_next(503, operation=NOT_REPEATABLE[action], retry_after=retry_after)
    event, _, metrics = await deliver_order(database_url, fake_keap, delivery_config)
    assert runs(fake_keap.state, action) == 1
    assert fake_keap.state.request_count(NOT_REPEATABLE[action]) == 2  # the 503, the retry
    assert {step["status"] for step in event["steps"]} == {"done"}
    assert all(step["outcome_unknown"] is None for step in event["steps"])
    assert metric(metrics, action) == 0


async def test_a_gateway_failure_on_a_call_that_may_run_twice_is_retried(
    database_url: str, fake_keap: FakeKeapServer, delivery_config: RelayConfig
) -> None:
    fake_keap.state.fail_next(502, operation="tags.add", after_handling=True)
    async with running_relay(database_url, fake_keap, delivery_config) as relay:
        event = await relay.wait_for(await relay.post(ORDER), "delivered")
    state = fake_keap.state
    assert state.request_count("tags.add") == 2  # tagging again is harmless
    assert all(
        step.status == "done" and "outcome_unknown" not in step.result for step in event.steps
    )
    assert (len(state.action_set_runs), len(state.emails_sent), len(state.goals_achieved)) == (
        1,
        1,
        1,
    )


async def test_only_a_replay_from_the_start_runs_an_outcome_unknown_call_again(
    database_url: str, fake_keap: FakeKeapServer, delivery_config: RelayConfig
) -> None:
    fake_keap.state.fail_next(504, operation="action_set.run", after_handling=True)
    async with running_relay(
        database_url, fake_keap, delivery_config, admin_token=ADMIN_TOKEN
    ) as relay:
        event_id = await relay.post(ORDER)
        await relay.wait_for(event_id, "delivered")
        replay = await relay.client.post(f"/admin/events/{event_id}/replay", headers=AUTH)
        assert replay.status_code == 202, replay.text
        await relay.wait_for(event_id, "delivered")
        assert len(fake_keap.state.action_set_runs) == 1  # unfinished steps only: not rerun
        event, _ = await shown(relay, event_id)
        assert event["steps"][1]["status"] == "outcome_unknown"

        again = await relay.client.post(
            f"/admin/events/{event_id}/replay?from_start=true", headers=AUTH
        )
        assert again.status_code == 202, again.text
        await relay.wait_for(event_id, "delivered")
        event, _ = await shown(relay, event_id)
    assert len(fake_keap.state.action_set_runs) == 2  # the operator asked for it
    assert {step["status"] for step in event["steps"]} == {"done"}
