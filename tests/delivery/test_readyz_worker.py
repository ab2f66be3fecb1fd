"""/readyz answers 503 when this process's worker is not working (SPEC §3): its claim
loop crashed, or it has not started; the database answering is not enough."""

from __future__ import annotations

import pytest

from app.config.models import RelayConfig
from app.store.base import StoreUnavailable
from fake_keap.server import FakeKeapServer
from tests.delivery.conftest import Relay, running_relay


def fail_claims(monkeypatch: pytest.MonkeyPatch, relay: Relay, error: Exception) -> None:
    """Every claim of the relay's worker raises ``error`` from now on; the worker is woken
    so that it claims at once."""

    async def failing(*_: object, **__: object) -> list[object]:
        raise error

    monkeypatch.setattr(relay.app.state.store, "claim_due_events", failing)
    relay.app.state.runtime.worker.wake()


async def test_a_crashed_claim_loop_makes_the_relay_unready(
    database_url: str,
    fake_keap: FakeKeapServer,
    delivery_config: RelayConfig,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with running_relay(database_url, fake_keap, delivery_config) as relay:
        before = await relay.readiness("worker", "ok", 5)
        assert before["code"] == 200
        fail_claims(monkeypatch, relay, RuntimeError("a bug in the claim"))
        after = await relay.readiness("worker", "failing", 5)
        assert after["code"] == 503
        assert after["status"] == "not_ready"
        assert "claim loop stopped: RuntimeError: a bug in the claim" in str(after["checks"])
        assert after["checks"]["database"]["status"] == "ok"


async def test_a_database_that_fails_the_claim_makes_the_worker_failing_until_it_answers(
    database_url: str,
    fake_keap: FakeKeapServer,
    delivery_config: RelayConfig,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with running_relay(database_url, fake_keap, delivery_config) as relay:
        fail_claims(monkeypatch, relay, StoreUnavailable("database is locked"))
        failing = await relay.readiness("worker", "failing", 5)
        assert failing["code"] == 503
        assert "cannot claim: database is locked" in str(failing["checks"])

        monkeypatch.undo()  # the database answers again
        recovered = await relay.readiness("worker", "ok", 10)
        assert recovered["code"] == 200
