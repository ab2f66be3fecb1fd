"""A worker whose lease lapsed (its renewals failed while the database was away) and
that claims the same event again must not start a second delivery of it beside the one
still running: both would hold the claim under the same worker id, so the claim's fences
pass for both, and every call of the event would go out twice (seen in the soak: an
email and a goal sent twice after a PostgreSQL restart)."""

from __future__ import annotations

import pytest

from app.config.models import RelayConfig
from app.store.base import StoreUnavailable
from fake_keap.server import FakeKeapServer
from tests.delivery.conftest import running_relay
from tests.delivery.test_delivery_e2e import ORDER


async def test_a_lapsed_lease_reclaimed_by_the_same_worker_is_not_delivered_twice(
    database_url: str,
    fake_keap: FakeKeapServer,
    delivery_config: RelayConfig,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = fake_keap.state
    state.configure(latency_ms=250)  # each call outlasts the lease below
    async with running_relay(
        database_url, fake_keap, delivery_config, claim_lease_seconds=0.2
    ) as relay:

        async def database_away(*_: object) -> None:
            raise StoreUnavailable("the database is restarting")

        monkeypatch.setattr(relay.store, "renew_claims", database_away)
        event_id = await relay.post(ORDER)
        event = await relay.wait_for(event_id, "delivered", within=30)
    assert [s.status for s in event.steps] == ["done"] * len(event.steps)
    assert len(state.action_set_runs) == 1
    assert len(state.emails_sent) == 1
    assert len(state.goals_achieved) == 1
    assert state.request_count("contact.upsert") == 1
