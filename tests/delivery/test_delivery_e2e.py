"""Stored events become Infusionsoft state: end to end against the fake, over HTTP."""

from __future__ import annotations

import asyncio

from app.config.models import RelayConfig
from fake_keap.server import FakeKeapServer
from tests.delivery.conftest import running_relay

ORDER = {
    "event": "order.paid",
    "id": "o-1",
    "email": "ada@example.com",
    "first_name": "Ada",
    "last_name": "Lovelace",
}


async def test_every_action_of_the_spec_example_lands_in_infusionsoft(
    database_url: str, fake_keap: FakeKeapServer, delivery_config: RelayConfig
) -> None:
    async with running_relay(database_url, fake_keap, delivery_config) as relay:
        event = await relay.wait_for(await relay.post(ORDER), "delivered")
        state = fake_keap.state
        contact = state.contact_by_email("ada@example.com")
        assert contact is not None
        assert (contact.given_name, contact.family_name) == ("Ada", "Lovelace")
        assert contact.opt_in_reason == "Bought from the shop"
        assert event.contact_id == contact.id
        assert [(r.contact_id, r.action_set_id) for r in state.action_set_runs] == [
            (contact.id, 42)
        ]
        assert state.tags_of(contact.id) == {101, 102}
        assert state.sequences_of(contact.id) == {(7, 3)}
        assert [(e.contact_id, e.template_id) for e in state.emails_sent] == [(contact.id, 55)]
        assert [(g.integration, g.call_name, g.contact_id) for g in state.goals_achieved] == [
            ("shop", "purchase", contact.id)
        ]
        assert all(step.status == "done" for step in event.steps)
        assert {a.outcome for a in event.history} == {"ok"}

        cancel = {"event": "member.cancelled", "id": "c-1", "email": "ada@example.com"}
        await relay.wait_for(await relay.post(cancel), "delivered")
        assert state.tags_of(contact.id) == {102}
        assert state.sequences_of(contact.id) == set()
        assert len(state.contacts) == 1  # the upsert found the same contact


async def test_a_503_burst_is_retried_without_repeating_a_step(
    database_url: str, fake_keap: FakeKeapServer, delivery_config: RelayConfig
) -> None:
    async with running_relay(database_url, fake_keap, delivery_config) as relay:
        fake_keap.state.fail_next(503, count=3, operation="tags.add")
        event = await relay.wait_for(await relay.post(ORDER), "delivered")
    state = fake_keap.state
    assert len(state.action_set_runs) == 1
    assert len(state.emails_sent) == 1
    assert state.request_count("contact.upsert") == 1
    assert state.request_count("tags.add") == 4  # three 503s, then the one that worked
    tags_step = next(s for s in event.steps if s.action == "tags")
    assert tags_step.attempts == 4
    assert [a.status_code for a in event.history if a.operation == "tags.add"] == [
        503,
        503,
        503,
        200,
    ]


async def test_a_fault_on_the_action_set_makes_the_event_dead_at_once(
    database_url: str, fake_keap: FakeKeapServer, delivery_config: RelayConfig
) -> None:
    fake_keap.state.set_fault(
        "ContactService.runActionSequence",
        5,
        "[RecordNotFound]Unable to perform update. Record not found for Id:42",
    )
    async with running_relay(database_url, fake_keap, delivery_config) as relay:
        event = await relay.wait_for(await relay.post(ORDER), "dead")
    assert "RecordNotFound" in event.last_error
    assert event.last_error.startswith("action_set")
    state = fake_keap.state
    contact = state.contact_by_email("ada@example.com")
    assert contact is not None  # the upsert before it happened
    assert state.tags_of(contact.id) == set()  # nothing after it ran
    assert state.emails_sent == []
    assert [s.status for s in event.steps] == [
        "done",
        "failed",
        "pending",
        "pending",
        "pending",
        "pending",
    ]


async def test_an_outage_outlasting_several_retries_is_delivered_afterwards(
    database_url: str, fake_keap: FakeKeapServer, delivery_config: RelayConfig
) -> None:
    fake_keap.state.set_outage(503, seconds=2.5)
    async with running_relay(database_url, fake_keap, delivery_config) as relay:
        event = await relay.wait_for(await relay.post(ORDER), "delivered", within=20)
    assert event.attempts >= 3
    assert len(fake_keap.state.action_set_runs) == 1
    assert event.last_error is None


async def test_rejected_credentials_pause_delivery_and_it_resumes_when_fixed(
    database_url: str, fake_keap: FakeKeapServer, delivery_config: RelayConfig
) -> None:
    fake_keap.state.set_reject_all_credentials(True)
    async with running_relay(database_url, fake_keap, delivery_config) as relay:
        ids = [
            await relay.post({**ORDER, "id": f"o-{i}", "email": f"c{i}@example.com"})
            for i in range(3)
        ]
        ready = await relay.readiness("keap_auth", "failing", within=5)
        assert ready["status"] == "ready"  # a failing key does not make the relay unready
        await asyncio.sleep(1.0)  # several probes while the key is still refused
        for event_id in ids:
            event = await relay.event(event_id)
            assert event.status == "pending"
            assert all(step.status != "failed" for step in event.steps)
        fake_keap.state.set_reject_all_credentials(False)
        for event_id in ids:
            await relay.wait_for(event_id, "delivered")
        ready = (await relay.client.get("/readyz")).json()
        assert ready["checks"]["keap_auth"]["status"] == "ok"
        assert ready["checks"]["worker"]["status"] == "ok"
        assert ready["status"] == "ready"
    assert len(fake_keap.state.action_set_runs) == 3


async def test_the_relay_holds_its_ceilings_and_a_429_storm_loses_nothing(
    database_url: str, fake_keap: FakeKeapServer, delivery_config: RelayConfig
) -> None:
    # Keap is stricter than the relay was told: 429s come, and everything still lands.
    fake_keap.state.configure(per_second=4, retry_after=True)
    async with running_relay(
        database_url, fake_keap, delivery_config, keap_rate_per_second=20
    ) as relay:
        ids = [
            await relay.post({"event": "tag", "id": f"t-{i}", "email": f"t{i}@example.com"})
            for i in range(12)
        ]
        for event_id in ids:
            await relay.wait_for(event_id, "delivered", within=30)
    requests = fake_keap.state.requests
    assert any(r.throttled for r in requests)
    assert len(fake_keap.state.contacts) == 12
    assert sum(len(fake_keap.state.tags_of(c.id)) for c in fake_keap.state.contacts) == 12


async def test_the_relay_never_exceeds_its_own_ceiling(
    database_url: str, fake_keap: FakeKeapServer, delivery_config: RelayConfig
) -> None:
    fake_keap.state.configure(per_second=6)  # a hair above: network jitter is not ours
    async with running_relay(  # one call per step (no batching): 20 calls to space out
        database_url, fake_keap, delivery_config, keap_rate_per_second=5, batch_window_seconds=0
    ) as relay:
        ids = [
            await relay.post({"event": "tag", "id": f"t-{i}", "email": f"t{i}@example.com"})
            for i in range(10)
        ]
        for event_id in ids:
            await relay.wait_for(event_id, "delivered", within=30)
    times = sorted(r.at for r in fake_keap.state.requests)
    assert len(times) == 20
    assert not any(r.throttled for r in fake_keap.state.requests)
    # no sliding window of (almost) a second holds more than five calls
    assert max(sum(1 for t in times if start <= t < start + 0.95) for start in times) <= 5


async def test_events_of_one_contact_keep_their_order_and_others_overtake(
    database_url: str, fake_keap: FakeKeapServer, delivery_config: RelayConfig
) -> None:
    # The first event's retry waits 2-4 s (equal jitter on 4 s): the later posts and the
    # other contact's delivery must all happen inside it. At 1 s (0.5-1 s) they did not,
    # once, on a loaded machine: the first event was delivered before it was checked.
    async with running_relay(
        database_url, fake_keap, delivery_config, retry_base_seconds=4.0
    ) as relay:
        # Block delivery while everything is queued, then make the first event stick.
        fake_keap.state.fail_next(503, count=1, operation="contact.upsert")
        first = await relay.post(
            {"event": "tag", "id": "a-0", "email": "a@example.com", "first_name": "A0"}
        )
        await relay.wait_for(first, "pending")
        for _ in range(100):  # the first try failed and the event waits out its backoff
            if (await relay.event(first)).attempts == 1:
                break
            await asyncio.sleep(0.02)
        later = [
            await relay.post(
                {"event": "tag", "id": f"a-{i}", "email": "a@example.com", "first_name": f"A{i}"}
            )
            for i in range(1, 5)
        ]
        other = await relay.post({"event": "tag", "id": "b-0", "email": "b@example.com"})
        await relay.wait_for(other, "delivered")
        assert (await relay.event(first)).status == "pending"
        statuses = [(await relay.event(e)).status for e in later]
        assert statuses == ["pending"] * 4
        finished = []
        for event_id in [first, *later]:
            event = await relay.wait_for(event_id, "delivered")
            finished.append(max(a.started_at for a in event.history))
    assert finished == sorted(finished)
    contact = fake_keap.state.contact_by_email("a@example.com")
    assert contact is not None
    assert contact.given_name == "A4"


async def test_a_lost_answer_is_retried_only_where_a_repeat_is_harmless(
    database_url: str, fake_keap: FakeKeapServer, delivery_config: RelayConfig
) -> None:
    # Keap applies both calls, then the connection drops before the answer arrives.
    fake_keap.state.fail_next("drop", operation="tags.add", after_handling=True)
    fake_keap.state.fail_next("drop", operation="action_set.run", after_handling=True)
    async with running_relay(database_url, fake_keap, delivery_config) as relay:
        event = await relay.wait_for(await relay.post(ORDER), "delivered")
    state = fake_keap.state
    contact = state.contact_by_email("ada@example.com")
    assert contact is not None
    assert state.tags_of(contact.id) == {101, 102}
    assert state.request_count("tags.add") == 2  # tagging again is harmless: retried
    assert len(state.action_set_runs) == 1  # running the action set again is not
    action_set = next(s for s in event.steps if s.action == "action_set")
    assert "may have run it" in action_set.result["outcome_unknown"]
    assert len(state.emails_sent) == 1  # and the steps after it still ran
