"""The dashboard's event-page replays beyond 'unfinished' and 'from the start', end to end
over HTTP against the fake Infusionsoft: re-plan with the current relay.yaml, and send
the steps recorded in dry-run for real — each step reaching Infusionsoft once."""

from __future__ import annotations

import re

import httpx

from app.config.models import RelayConfig
from app.domain.events import is_dry_run_step
from fake_keap.server import FakeKeapServer
from tests.admin.conftest import ADMIN_TOKEN, HTML, csrf_from, login
from tests.delivery.conftest import running_relay
from tests.delivery.test_delivery_e2e import ORDER as DELIVERY_ORDER
from tests.delivery.test_xmlrpc_sunset import (
    NO_ROUTE_FOR_IT,
    WITH_GOAL,
    dead_at_the_sunset,
    relay_after_the_sunset,
)


async def press(client: httpx.AsyncClient, event_id: str, testid: str) -> httpx.Response:
    """Open the event's page signed in and submit the form of the button ``testid``."""
    await login(client)
    view = f"/admin/events/{event_id}/view"
    page = await client.get(view, headers=HTML)
    assert f'data-testid="{testid}"' in page.text, testid
    form = page.text[: page.text.index(f'data-testid="{testid}"')]
    form = form[form.rindex("<form") :]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form))
    assert fields.pop("csrf") == csrf_from(page.text)
    return await client.post(
        f"{view}/replay", data={"csrf": csrf_from(page.text), **fields}, headers=HTML
    )


async def test_the_re_plan_button_delivers_the_rebuilt_route_without_repeats(
    database_url: str, fake_keap: FakeKeapServer
) -> None:
    state = fake_keap.state
    event_id = await dead_at_the_sunset(database_url, fake_keap)  # its email went out

    async with relay_after_the_sunset(database_url, fake_keap, NO_ROUTE_FOR_IT) as relay:
        refused = await press(relay.client, event_id, "replay-replanned")
        assert refused.status_code == 409
        assert "does not deliver" in refused.text  # the error page says why
        assert (await relay.event(event_id)).status == "dead"

    async with relay_after_the_sunset(database_url, fake_keap, WITH_GOAL) as relay:
        pressed = await press(relay.client, event_id, "replay-replanned")
        assert pressed.status_code == 303
        assert pressed.headers["location"].endswith("?flash=requeued-replanned")
        event = await relay.wait_for(event_id, "delivered")
        shown = await relay.client.get(pressed.headers["location"], headers=HTML)
    assert "Planned again with the current relay.yaml" in shown.text
    assert [s.action for s in event.steps] == ["contact.upsert", "email_template", "goal", "tags"]
    assert len(state.emails_sent) == 1  # done before the re-plan, still planned: not again
    assert len(state.goals_achieved) == 1
    assert state.request_count("tags.add") == 1


async def test_the_dry_run_button_sends_the_recorded_steps_once_and_only_when_live(
    database_url: str, fake_keap: FakeKeapServer, delivery_config: RelayConfig
) -> None:
    state = fake_keap.state
    async with running_relay(
        database_url, fake_keap, delivery_config, dry_run=True, admin_token=ADMIN_TOKEN
    ) as relay:
        event_id = await relay.post(DELIVERY_ORDER)
        await relay.wait_for(event_id, "delivered")
        await login(relay.client)
        page = await relay.client.get(f"/admin/events/{event_id}/view", headers=HTML)
    assert 'data-testid="dry-run-step"' in page.text
    assert 'data-testid="replay-dry-run-steps"' not in page.text  # still in dry-run
    assert state.requests == []

    async with running_relay(
        database_url, fake_keap, delivery_config, admin_token=ADMIN_TOKEN
    ) as relay:
        pressed = await press(relay.client, event_id, "replay-dry-run-steps")
        assert pressed.status_code == 303
        assert pressed.headers["location"].endswith("?flash=requeued-dry-run")
        event = await relay.wait_for(event_id, "delivered")
        after = await relay.client.get(f"/admin/events/{event_id}/view", headers=HTML)
    assert 'data-testid="replay-dry-run-steps"' not in after.text  # nothing left to send
    assert not any(is_dry_run_step(step.status, step.result) for step in event.steps)
    ada = state.contact_by_email("ada@example.com")
    assert ada is not None
    assert [r.action_set_id for r in state.action_set_runs] == [42]
    assert [e.template_id for e in state.emails_sent] == [55]
    assert state.request_count("contact.upsert") == 1


async def test_replay_every_dead_event_re_plans_when_its_box_is_ticked(
    database_url: str, fake_keap: FakeKeapServer
) -> None:
    state = fake_keap.state
    event_id = await dead_at_the_sunset(database_url, fake_keap)

    async with relay_after_the_sunset(database_url, fake_keap, WITH_GOAL) as relay:
        await login(relay.client)
        page = await relay.client.get("/admin/?status=dead", headers=HTML)
        assert 'name="replan" value="true" data-testid="replay-all-replan"' in page.text
        pressed = await relay.client.post(
            "/admin/view/replay",
            data={"csrf": csrf_from(page.text), "source": "", "replan": "true"},
            headers=HTML,
        )
        assert pressed.status_code == 303
        assert "n=1" in pressed.headers["location"]
        event = await relay.wait_for(event_id, "delivered")
    assert [s.action for s in event.steps] == ["contact.upsert", "email_template", "goal", "tags"]
    assert len(state.emails_sent) == 1
    assert len(state.goals_achieved) == 1
