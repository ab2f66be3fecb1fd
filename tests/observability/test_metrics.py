"""/metrics after a known sequence of webhooks and deliveries holds exactly what happened."""

from __future__ import annotations

import asyncio

import httpx
from prometheus_client.parser import text_string_to_metric_families

from app.config.models import RelayConfig
from devkit.cart import headers
from fake_keap.server import FakeKeapServer
from tests.delivery.conftest import API_KEY, running_relay
from tests.delivery.test_delivery_e2e import ORDER

TOKEN = headers()  # the cart token DELIVERY_YAML checks
DAY_QUOTA = 30_000
MINUTE_THROTTLE = 240

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def total(samples: Samples, name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


async def test_metrics_count_a_known_sequence_of_webhooks_and_calls(
    database_url: str, delivery_config: RelayConfig
) -> None:
    with FakeKeapServer(
        valid_keys={API_KEY}, per_minute=MINUTE_THROTTLE, per_day=DAY_QUOTA
    ) as fake:
        async with running_relay(database_url, fake, delivery_config) as relay:
            before = await scrape(relay.client)
            delivered = await relay.post(ORDER)
            await relay.wait_for(delivered, "delivered")
            duplicate = await relay.client.post("/hooks/cart", json=ORDER, headers=TOKEN)
            assert duplicate.status_code == 200
            forged = await relay.client.post("/hooks/cart", json=ORDER, headers={"x-token": "no"})
            assert forged.status_code == 401
            unknown = await relay.client.post("/hooks/nowhere", json=ORDER)
            assert unknown.status_code == 404
            ignored = await relay.post({"event": "refund.created", "id": "r-1"})
            no_email = await relay.post({**ORDER, "id": "o-2", "email": None})
            fake.state.set_fault(
                "ContactService.runActionSequence", 5, "[RecordNotFound] no action set 42"
            )
            faulted = await relay.post({**ORDER, "id": "o-3", "email": "bob@example.com"})
            await relay.wait_for(faulted, "dead")
            assert (await relay.event(ignored)).status == "ignored"
            assert (await relay.event(no_email)).status == "dead"
            after = await scrape(relay.client)
            ready = (await relay.client.get("/readyz")).json()

    # Before anything happened the final-status series exist, at zero; auth is not failing.
    assert [value(before, "relay_events_total", status=s) for s in ("delivered", "dead")] == [0, 0]
    assert value(before, "relay_keap_auth_ok") == 1

    received = "relay_events_received_total"
    assert value(after, received, source="cart", outcome="accepted") == 4
    assert value(after, received, source="cart", outcome="duplicate") == 1
    assert value(after, received, source="cart", outcome="unauthorized") == 1
    assert value(after, received, source="unknown", outcome="unknown_source") == 1
    assert total(after, received) == 7

    assert value(after, "relay_events_total", status="delivered") == 1
    assert value(after, "relay_events_total", status="dead") == 2  # no email; a fault
    assert value(after, "relay_events_total", status="ignored") == 1
    assert value(after, "relay_queue_depth") == 0
    stored = {s: value(after, "relay_events_stored", status=s) for s in ("pending", "dead")}
    assert stored == {"pending": 0, "dead": 2}

    # The delivered order made seven calls; the faulted one got as far as its action set
    # (an XML-RPC fault travels in an HTTP 200). Both contacts were new: 201 Created.
    calls = {
        (dict(labels)["operation"], dict(labels)["code"]): v
        for (name, labels), v in after.items()
        if name == "relay_keap_requests_total"
    }
    assert calls == {
        ("contact.upsert", "201"): 2,
        ("action_set.run", "200"): 2,
        ("tags.add", "200"): 1,
        ("sequence.add", "204"): 1,
        ("user.discover", "200"): 1,  # the email's sending user, asked once
        ("email_template.send", "202"): 1,  # REST v2 templates:send answers 202 Accepted
        ("goal.achieve", "200"): 1,
    }
    assert total(after, "relay_keap_request_duration_seconds_count") == 9
    assert value(after, "relay_ingest_duration_seconds_count") == 5  # 4 accepted + 1 duplicate
    # Keap's last answer reported the quota left after our 9 calls.
    assert value(after, "relay_keap_quota_available", window="quota") == DAY_QUOTA - 9
    assert value(after, "relay_keap_quota_available", window="throttle") == MINUTE_THROTTLE - 9
    # And what the whole Keap app has left (x-keap-tenant-throttle-*, minute|day).
    assert value(after, "relay_keap_quota_available", window="tenant_minute") == 10_000 - 9
    assert value(after, "relay_keap_quota_available", window="tenant_day") == 250_000 - 9
    assert value(after, "relay_keap_auth_ok") == 1
    # Calls went through, so /readyz (and the dashboard) say the key works.
    assert ready["checks"]["keap_auth"] == {"status": "ok", "detail": "credentials accepted"}


async def test_rejected_credentials_show_as_auth_not_ok_and_401_calls(
    database_url: str, fake_keap: FakeKeapServer, delivery_config: RelayConfig
) -> None:
    fake_keap.state.set_reject_all_credentials(True)
    async with running_relay(database_url, fake_keap, delivery_config) as relay:
        await relay.post(ORDER)
        for _ in range(200):
            samples = await scrape(relay.client)
            if value(samples, "relay_keap_auth_ok") == 0:
                break
            await asyncio.sleep(0.05)
        assert value(samples, "relay_keap_auth_ok") == 0
        assert value(samples, "relay_queue_depth") == 1  # waiting, unharmed
        assert value(samples, "relay_keap_requests_total", operation="contact.upsert", code="401")
        fake_keap.state.set_reject_all_credentials(False)
        for _ in range(200):
            # One scrape is no snapshot: the queue depth is read from the database before
            # the worker may count the delivery, so wait for both to say it.
            samples = await scrape(relay.client)
            delivered = value(samples, "relay_events_total", status="delivered") == 1
            if delivered and value(samples, "relay_queue_depth") == 0:
                break
            await asyncio.sleep(0.05)
        assert value(samples, "relay_keap_auth_ok") == 1
        assert value(samples, "relay_events_total", status="delivered") == 1
        assert value(samples, "relay_queue_depth") == 0


async def test_a_dry_run_counts_planned_calls_apart_from_real_ones(
    database_url: str, fake_keap: FakeKeapServer, delivery_config: RelayConfig
) -> None:
    async with running_relay(
        database_url, fake_keap, delivery_config, keap_api_key=None, dry_run=True
    ) as relay:
        await relay.wait_for(await relay.post(ORDER), "delivered")
        samples = await scrape(relay.client)
    codes = {
        dict(labels)["code"] for (name, labels) in samples if name == "relay_keap_requests_total"
    }
    assert codes == {"dry_run"}
    assert value(samples, "relay_keap_requests_total", operation="contact.upsert", code="dry_run")
    assert total(samples, "relay_keap_request_duration_seconds_count") == 0
    assert fake_keap.state.request_count() == 0
