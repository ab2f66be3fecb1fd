"""Keap's answers read as Keap writes them, end to end through the fake over HTTP: failures
inside a 200, a company by reference, email templates on REST v2, and XML-RPC for the
action set only."""

from __future__ import annotations

from app.admin.service import ReplayOptions, replay_event
from fake_keap.server import FakeKeapServer
from tests.conftest import make_config
from tests.delivery.conftest import DELIVERY_YAML, running_relay

# The spec example's routes (every action type), with the company mapped both ways.
EVERY_ACTION_YAML = DELIVERY_YAML.replace(
    "      family_name: body.last_name\n",
    "      family_name: body.last_name\n"
    "      company: body.company\n"
    "      company_id: body.company_id\n",
)
CONFIG = make_config(EVERY_ACTION_YAML)
assert "company_id" in EVERY_ACTION_YAML


def order(n: int = 1, **fields: object) -> dict[str, object]:
    return {"event": "order.paid", "id": f"o-{n}", "email": f"buyer{n}@example.com", **fields}


def step(event: object, action: str) -> object:
    return next(s for s in event.steps if s.action == action)  # type: ignore[attr-defined]


async def test_every_action_type_sends_nothing_but_the_action_set_over_xmlrpc(
    database_url: str, fake_keap: FakeKeapServer
) -> None:
    async with running_relay(database_url, fake_keap, CONFIG) as relay:
        await relay.wait_for(await relay.post(order(company="Acme")), "delivered")
        cancel = {"event": "member.cancelled", "id": "c-1", "email": "buyer1@example.com"}
        await relay.wait_for(await relay.post(cancel), "delivered")
    requests = fake_keap.state.requests
    operations = {r.operation for r in requests}
    assert {"company.create", "email_template.send", "goal.achieve", "tags.remove"} <= operations
    assert {r.operation for r in requests if "/xmlrpc/" in r.path} == {"action_set.run"}
    assert len(fake_keap.state.emails_sent) == 1


async def test_an_action_set_reporting_is_error_true_kills_the_event(
    database_url: str, fake_keap: FakeKeapServer
) -> None:
    fake_keap.state.configure(action_sets_reporting_errors={42})
    async with running_relay(database_url, fake_keap, CONFIG) as relay:
        event = await relay.wait_for(await relay.post(order()), "dead")
    assert "Send email: Template not found" in (event.last_error or "")
    [attempt] = [a for a in event.history if a.operation == "action_set.run"]
    assert attempt.outcome == "permanent"
    assert "Template not found" in (attempt.error or "")
    assert fake_keap.state.request_count("tags.add") == 0  # the steps after it waited


async def test_a_tag_refused_inside_a_200_fails_the_step(
    database_url: str, fake_keap: FakeKeapServer
) -> None:
    fake_keap.state.configure(known_tag_ids={101})
    async with running_relay(database_url, fake_keap, CONFIG) as relay:
        event = await relay.wait_for(await relay.post(order()), "dead")
    tags = step(event, "tags")
    assert tags.status == "failed"  # type: ignore[attr-defined]
    assert "tag 102: TAG_ID_NOT_FOUND" in (event.last_error or "")
    [attempt] = [a for a in event.history if a.operation == "tags.add"]
    assert (attempt.status_code, attempt.outcome) == (200, "permanent")
    assert "tag 102" in (attempt.error or "")


async def test_a_goal_that_fires_no_campaign_is_reported_and_safe_to_replay(
    database_url: str, fake_keap: FakeKeapServer
) -> None:
    fake_keap.state.configure(known_goals={("shop", "checkout")})
    async with running_relay(database_url, fake_keap, CONFIG) as relay:
        event = await relay.wait_for(await relay.post(order()), "dead")
        expected = "goal shop/purchase fired no campaign"
        assert expected in (event.last_error or "")
        assert "campaign builder" in (event.last_error or "")
        [attempt] = [a for a in event.history if a.operation == "goal.achieve"]
        assert attempt.status_code == 200
        assert expected in (attempt.error or "")
        assert fake_keap.state.goals_achieved == []

        # The user fixes the goal in Keap; nothing ran, so replaying the event is safe.
        fake_keap.state.configure(known_goals={("shop", "purchase")})
        await replay_event(relay.store, event.id, ReplayOptions())
        await relay.wait_for(event.id, "delivered")
    assert len(fake_keap.state.goals_achieved) == 1
    assert len(fake_keap.state.emails_sent) == 1  # the email before it went once


async def test_a_company_name_lands_as_a_reference_created_once_across_a_retry(
    database_url: str, fake_keap: FakeKeapServer
) -> None:
    # Keap creates the company, then the answer is lost: the step retries.
    fake_keap.state.fail_next("drop", operation="company.create", after_handling=True)
    async with running_relay(database_url, fake_keap, CONFIG) as relay:
        first = await relay.wait_for(await relay.post(order(1, company="Acme Ltd")), "delivered")
        await relay.wait_for(await relay.post(order(2, company="Acme Ltd")), "delivered")
    state = fake_keap.state
    assert len(state.companies) == 1
    [(company_id, name)] = state.companies.items()
    assert name == "Acme Ltd"
    for n in (1, 2):
        contact = state.contact_by_email(f"buyer{n}@example.com")
        assert contact is not None
        assert contact.company_id == company_id
    assert state.request_count("company.create") == 1
    # The create's answer was lost; the retry looked the company up again and found it.
    assert [a.operation for a in first.history if a.operation.startswith("company.")] == [
        "company.find",
        "company.create",
        "company.find",
    ]


async def test_a_company_name_with_a_semicolon_is_found_again_not_duplicated(
    database_url: str, fake_keap: FakeKeapServer
) -> None:
    async with running_relay(database_url, fake_keap, CONFIG) as relay:
        for n in (1, 2):
            event_id = await relay.post(order(n, company="Smith; Jones"))
            await relay.wait_for(event_id, "delivered")
    state = fake_keap.state
    assert list(state.companies.values()) == ["Smith; Jones"]
    assert state.request_count("company.create") == 1


async def test_a_company_id_from_the_webhook_is_used_as_it_is(
    database_url: str, fake_keap: FakeKeapServer
) -> None:
    async with running_relay(database_url, fake_keap, CONFIG) as relay:
        await relay.wait_for(await relay.post(order(1, company="Acme")), "delivered")
        [company_id] = fake_keap.state.companies
        by_id = order(2, company="ignored", company_id=str(company_id))
        await relay.wait_for(await relay.post(by_id), "delivered")
        bad = await relay.wait_for(await relay.post(order(3, company_id="Acme")), "dead")
    contact = fake_keap.state.contact_by_email("buyer2@example.com")
    assert contact is not None
    assert contact.company_id == company_id
    assert fake_keap.state.request_count("company.find") == 1
    assert "company_id must be a Keap company id" in (bad.last_error or "")


async def test_an_email_template_goes_through_rest_v2_as_the_configured_user(
    database_url: str, fake_keap: FakeKeapServer
) -> None:
    async with running_relay(database_url, fake_keap, CONFIG, keap_user_id=7) as relay:
        await relay.wait_for(await relay.post(order()), "delivered")
    [email] = fake_keap.state.emails_sent
    assert (email.template_id, email.user_id) == (55, 7)
    assert fake_keap.state.request_count("user.discover") == 0
    assert fake_keap.state.request_count("email_template.send_xmlrpc") == 0


async def test_without_a_configured_user_the_keys_own_user_is_discovered_once(
    database_url: str, fake_keap: FakeKeapServer
) -> None:
    fake_keap.state.configure(credential_user_id=5)
    async with running_relay(database_url, fake_keap, CONFIG) as relay:
        await relay.wait_for(await relay.post(order(1)), "delivered")
        await relay.wait_for(await relay.post(order(2)), "delivered")
    assert [e.user_id for e in fake_keap.state.emails_sent] == [5, 5]
    assert fake_keap.state.request_count("user.discover") == 1


async def test_a_key_of_no_user_without_the_setting_fails_the_email_naming_it(
    database_url: str, fake_keap: FakeKeapServer
) -> None:
    fake_keap.state.configure(credential_user_id=None)
    async with running_relay(database_url, fake_keap, CONFIG) as relay:
        event = await relay.wait_for(await relay.post(order()), "dead")
        ready = (await relay.client.get("/readyz")).json()
    assert ready["checks"]["keap_auth"]["status"] == "ok"  # one email's problem: no pause
    assert step(event, "email_template").status == "failed"  # type: ignore[attr-defined]
    assert "RELAY_KEAP_USER_ID" in (event.last_error or "")
    assert fake_keap.state.emails_sent == []
