"""A 403 on one record kills that event only; a 403 for the whole credential pauses."""

from __future__ import annotations

import logging

import pytest

from app.config.models import RelayConfig
from fake_keap.server import FakeKeapServer
from tests.delivery.conftest import running_relay


@pytest.mark.parametrize("user", [1, None], ids=["personal-token", "service-key"])
async def test_a_403_on_one_tag_kills_that_event_only_and_delivery_goes_on(
    database_url: str, fake_keap: FakeKeapServer, delivery_config: RelayConfig, user: int | None
) -> None:
    # The paid-order route tags 101 and 102; the key's user may not apply 102. A service
    # key acts for no user: userinfo refuses it and the probe asks the account profile.
    fake_keap.state.configure(forbidden_tag_ids={102}, credential_user_id=user)
    async with running_relay(database_url, fake_keap, delivery_config) as relay:
        order = {"event": "order.paid", "id": "o-1", "email": "vip@x.test", "first_name": "V"}
        dead = await relay.wait_for(await relay.post(order), "dead")
        members = [
            await relay.post({"event": "tag", "id": f"m-{i}", "email": f"m{i}@x.test"})
            for i in range(3)
        ]
        for event_id in members:
            await relay.wait_for(event_id, "delivered")
        ready = (await relay.client.get("/readyz")).json()["checks"]["keap_auth"]
        metrics = (await relay.client.get("/metrics")).text

    history = [(a.operation, a.status_code, a.outcome) for a in dead.history]
    assert history[-1] == ("auth.probe", 200, "ok")
    assert ("tags.add", 403, "permanent") in history
    assert "permission to apply tag 102" in (dead.last_error or "")
    assert "the credential works" in (dead.last_error or "")
    assert ready["status"] == "ok"
    assert "relay_keap_auth_ok 1.0" in metrics
    assert fake_keap.state.request_count("auth.probe") == 1  # probed once, at once
    assert fake_keap.state.request_count("account.profile") == (1 if user is None else 0)
    vip_contact = fake_keap.state.contact_by_email("vip@x.test")
    assert vip_contact is not None
    assert fake_keap.state.tags_of(vip_contact.id) == set()
    assert len(fake_keap.state.emails_sent) == 0  # the steps after the refused one never ran
    for i in range(3):
        contact = fake_keap.state.contact_by_email(f"m{i}@x.test")
        assert contact is not None
        assert fake_keap.state.tags_of(contact.id) == {500}


async def test_a_403_with_a_failing_probe_pauses_and_the_event_is_delivered_later(
    database_url: str,
    fake_keap: FakeKeapServer,
    delivery_config: RelayConfig,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Only a failing probe pauses: the 403 was the whole credential's, for a while."""
    caplog.set_level(logging.WARNING, logger="relay.worker")
    fake_keap.state.fail_next(403, operation="tags.add")
    fake_keap.state.fail_next(403, operation="auth.probe")  # userinfo, then
    fake_keap.state.fail_next(403, operation="account.profile")  # the probe's second opinion
    async with running_relay(database_url, fake_keap, delivery_config) as relay:
        member = await relay.post({"event": "tag", "id": "m-x", "email": "mx@x.test"})
        event = await relay.wait_for(member, "delivered")
        counts = await relay.store.count_by_status()

    assert counts.get("dead", 0) == 0
    assert any("delivery paused" in r.getMessage() for r in caplog.records)
    tag_calls = [a.status_code for a in event.history if a.operation == "tags.add"]
    assert tag_calls == [403, 200]
    assert fake_keap.state.request_count("auth.probe") >= 2  # the failing one, then a pass
