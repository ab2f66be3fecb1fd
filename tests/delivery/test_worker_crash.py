"""kill -9 of a worker mid-event: another worker resumes it, and no action set runs twice."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from app.store.base import Store
from app.store.factory import open_store
from devkit.cart import cart_yaml
from fake_keap.server import FakeKeapServer
from tests.delivery.conftest import API_KEY, store_webhook
from tests.support.processes import keap_env, relay_env, start_relay, stop

CONFIG = cart_yaml("email_template: 55")  # tags, the action set, an email


async def _wait(predicate: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def _step_statuses(store: Store, event_id: str) -> list[str]:
    event = await store.get_event(event_id)
    assert event is not None
    return [step.status for step in event.steps]


# (the step whose call is in flight when the worker is killed, the statuses that show it)
MID_CALL = {
    "tags": ["done", "pending", "pending", "pending"],
    "action_set": ["done", "done", "sending", "pending"],
}
OPERATION = {"tags": "tags.add", "action_set": "action_set.run"}


@pytest.mark.parametrize("in_flight", list(MID_CALL))
async def test_killed_worker_is_resumed_by_the_next(
    tmp_path: Path, database_url: str, in_flight: str
) -> None:
    event_id = await store_webhook(
        database_url, CONFIG, {"event": "order.paid", "id": "o-1", "email": "k@example.com"}
    )
    store = open_store(database_url, pool_size=2)  # the operator's view, beside the workers
    await store.open()
    try:
        with FakeKeapServer(valid_keys={API_KEY}, latency_ms=400) as fake:
            env = relay_env(
                tmp_path,
                database_url,
                CONFIG,
                {
                    **keap_env(fake, API_KEY),
                    "RELAY_CLAIM_LEASE_SECONDS": "2",
                    "RELAY_KEAP_RATE_PER_SECOND": "50",
                },
            )
            first = start_relay(["worker"], env, tmp_path, log_name="worker-1.log")
            try:
                # Kill it mid-call: the step before is recorded, and the call has reached
                # the fake, which takes 400 ms to answer it.
                async def call_in_flight() -> bool:
                    return (
                        fake.state.in_flight()[OPERATION[in_flight]] == 1
                        and await _step_statuses(store, event_id) == MID_CALL[in_flight]
                    )

                await _wait(call_in_flight, 20, f"{in_flight} in flight")
                first.send_signal(signal.SIGKILL)
                first.wait()
                killed_mid_call = fake.state.request_count(OPERATION[in_flight]) == 0
            finally:
                stop(first)
            second = start_relay(["worker"], env, tmp_path, log_name="worker-2.log")
            try:
                deadline = time.monotonic() + 20
                while (event := await store.get_event(event_id)).status != "delivered":
                    assert time.monotonic() < deadline, f"not delivered: {event.steps}"
                    await asyncio.sleep(0.05)
            finally:
                stop(second)
            # The killed worker never got the answer: the fake was still holding it.
            assert killed_mid_call
            contact = fake.state.contact_by_email("k@example.com")
            assert contact is not None
            assert fake.state.tags_of(contact.id) == {500}
            assert len(fake.state.action_set_runs) == 1
            assert len(fake.state.emails_sent) == 1
            requests = fake.state.request_count(OPERATION[in_flight])
    finally:
        await store.close()

    assert event.status == "delivered"
    assert [s.status for s in event.steps] == ["done"] * 4
    # A call that must not run twice and was in flight when the worker died is not
    # repeated, and its step says why; calls that may run twice (tags) are simply redone.
    unknown = [s.action for s in event.steps if "outcome_unknown" in (s.result or {})]
    assert unknown == ([] if in_flight == "tags" else ["action_set"])
    # Tagging was sent again by the second worker; the action set was not.
    assert requests == (2 if in_flight == "tags" else 1)
