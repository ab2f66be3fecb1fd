"""Rate ceilings and injected faults: 429s, forced failures, outages, brownouts, latency."""

from __future__ import annotations

import asyncio
import time
import xmlrpc.client
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from fake_keap import FakeKeapServer
from fake_keap.faults import THROTTLED_FAULT

PROFILE = "/rest/v1/oauth/connect/userinfo"


def test_calls_over_the_per_second_ceiling_get_429_with_keap_headers(
    fake: FakeKeapServer, keap: httpx.Client
) -> None:
    fake.state.configure(per_second=3, per_minute=100, retry_after=True)

    statuses = [keap.get(PROFILE) for _ in range(4)]

    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    throttled = statuses[-1]
    assert throttled.json() == {
        "code": "429",
        "message": "Quota Exceeded",
        "status": "Request Throttled",
    }
    assert throttled.headers["Retry-After"] == "1"
    assert "x-keap-product-spike-limit" not in throttled.headers  # the spike arrest is silent
    assert throttled.headers["x-keap-product-throttle-time-unit"] == "minute"
    assert throttled.headers["x-keap-product-throttle-limit"] == "100"
    assert throttled.headers["x-keap-product-throttle-used"] == "3"
    assert throttled.headers["x-keap-product-throttle-available"] == "97"
    expiry_ms = int(throttled.headers["x-keap-product-quota-expiry-time"])  # epoch ms
    assert expiry_ms % 86_400_000 == 0
    assert 0 < expiry_ms / 1000 - time.time() <= 86400
    assert throttled.headers["x-keap-tenant-throttle-time-unit"] == "minute|day"
    assert statuses[0].headers["x-keap-product-throttle-available"] == "99"
    assert [r.throttled for r in fake.state.requests] == [False, False, False, True]

    time.sleep(1.05)
    assert keap.get(PROFILE).status_code == 200


def test_forced_failures_hit_only_the_named_operation_then_stop(
    fake: FakeKeapServer, keap: httpx.Client
) -> None:
    fake.state.fail_next(503, count=2, operation="auth.probe")

    upsert = keap.put(
        "/rest/v1/contacts",
        json={"duplicate_option": "Email", "email_addresses": [{"email": "a@x.test"}]},
    )

    assert upsert.status_code == 201
    assert [keap.get(PROFILE).status_code for _ in range(3)] == [503, 503, 200]


def test_a_failure_after_handling_applies_the_call_and_loses_the_answer(
    fake: FakeKeapServer, keap: httpx.Client
) -> None:
    fake.state.fail_next(502, after_handling=True)

    response = keap.put(
        "/rest/v1/contacts",
        json={"duplicate_option": "Email", "email_addresses": [{"email": "a@x.test"}]},
    )

    assert response.status_code == 502
    assert fake.state.contact_by_email("a@x.test") is not None


@pytest.mark.parametrize("status", [502, 504])
def test_gateway_failures_answer_apigee_fault_bodies(
    fake: FakeKeapServer, keap: httpx.Client, status: int
) -> None:
    fake.state.fail_next(status)
    response = keap.get(PROFILE)
    assert response.status_code == status
    assert response.json()["fault"]["detail"]["errorcode"].startswith("messaging.adaptors.http")


async def test_a_request_is_in_flight_until_its_answer_is_ready(fake: FakeKeapServer) -> None:
    fake.state.configure(latency_ms=300)
    headers = {"X-Keap-API-Key": "key-good"}
    async with httpx.AsyncClient(base_url=fake.base_url, headers=headers) as client:
        call = asyncio.create_task(client.get(PROFILE))
        deadline = time.monotonic() + 5
        while not fake.state.in_flight():
            assert time.monotonic() < deadline, "the request never showed as in flight"
            await asyncio.sleep(0.01)
        assert fake.state.in_flight() == {"auth.probe": 1}
        shown = await client.get(f"{fake.control_url}/in_flight")
        assert shown.json() == {"in_flight": {"auth.probe": 1}}
        assert (await call).status_code == 200
    assert fake.state.in_flight() == {}


def test_outage_fails_every_call_until_cleared(fake: FakeKeapServer, keap: httpx.Client) -> None:
    fake.state.set_outage(503)
    assert [keap.get(PROFILE).status_code for _ in range(3)] == [503, 503, 503]

    fake.state.clear_outage()
    assert keap.get(PROFILE).status_code == 200


def test_timed_outage_ends_by_itself(fake: FakeKeapServer, keap: httpx.Client) -> None:
    fake.state.set_outage(504, seconds=0.2)
    assert keap.get(PROFILE).status_code == 504

    time.sleep(0.25)
    assert keap.get(PROFILE).status_code == 200


def test_dropped_connections_are_transport_errors(fake: FakeKeapServer, keap: httpx.Client) -> None:
    fake.state.set_outage("drop")

    with pytest.raises(httpx.RemoteProtocolError):
        keap.get(PROFILE)

    fake.state.clear_outage()
    assert keap.get(PROFILE).status_code == 200
    assert [r.dropped for r in fake.state.requests] == [True, False]


def test_xmlrpc_brownout_spares_rest(
    fake: FakeKeapServer, keap: httpx.Client, rpc: Callable[..., Any]
) -> None:
    fake.state.set_xmlrpc_brownout()
    body = xmlrpc.client.dumps(("key", 1, 42), "ContactService.runActionSequence")

    assert (
        keap.post("/xmlrpc/v1", content=body, headers={"Content-Type": "text/xml"}).status_code
        == 503
    )
    assert keap.get(PROFILE).status_code == 200

    fake.state.set_xmlrpc_brownout(False)
    assert isinstance(
        rpc("ContactService.addWithDupCheck", "key", {"Email": "a@x.test"}, "Email"), int
    )


def test_injected_xmlrpc_faults_last_for_their_count(
    fake: FakeKeapServer, rpc: Callable[..., Any]
) -> None:
    fake.state.set_fault("ContactService.addWithDupCheck", 3, THROTTLED_FAULT, count=1)
    args = ("key", {"Email": "a@x.test"}, "Email")

    fault = rpc("ContactService.addWithDupCheck", *args)
    assert isinstance(fault, xmlrpc.client.Fault)
    assert (fault.faultCode, fault.faultString) == (3, THROTTLED_FAULT)
    assert fake.state.contacts == []
    assert isinstance(rpc("ContactService.addWithDupCheck", *args), int)


async def test_latency_is_applied_to_concurrent_calls_in_parallel(fake: FakeKeapServer) -> None:
    fake.state.configure(latency_ms=200)
    headers = {"X-Keap-API-Key": "key-good"}

    async with httpx.AsyncClient(base_url=fake.base_url, headers=headers) as client:
        started = time.monotonic()
        responses = await asyncio.gather(*(client.get(PROFILE) for _ in range(10)))
        elapsed = time.monotonic() - started

    assert all(r.status_code == 200 for r in responses)
    assert 0.2 <= elapsed < 1.5


def test_ceilings_count_each_credential_separately(
    fake: FakeKeapServer, keap: httpx.Client
) -> None:
    fake.state.configure(per_second=1, valid_keys={"key-good", "key-other"})

    first, second = keap.get(PROFILE), keap.get(PROFILE)
    other = keap.get(PROFILE, headers={"X-Keap-API-Key": "key-other"})

    assert (first.status_code, second.status_code, other.status_code) == (200, 429, 200)
    assert "Retry-After" not in second.headers  # only sent when configured
