"""``relay worker --port``: a worker-only process serves its own /healthz, /readyz and
/metrics, so the deliveries and Keap calls it alone counts reach Prometheus; it serves no
hooks and no admin API."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from app.store.factory import open_store
from devkit.cart import order_yaml
from fake_keap.server import FakeKeapServer
from tests.delivery.conftest import API_KEY, store_webhook
from tests.support.processes import free_port, keap_env, relay_env, start_relay, stop

CONFIG = order_yaml("tags: [500]")


def _sample(text: str, name: str) -> float:
    """The value of one exposition line, e.g. ``relay_events_total{status="delivered"}``."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


async def test_a_worker_with_a_port_serves_its_own_health_and_metrics(
    tmp_path: Path, database_url: str
) -> None:
    event_id = await store_webhook(
        database_url, CONFIG, {"event": "order.paid", "email": "w@example.com"}
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with FakeKeapServer(valid_keys={API_KEY}) as fake:
        env = relay_env(tmp_path, database_url, CONFIG, keap_env(fake, API_KEY))
        worker = start_relay(["worker", "--port", str(port)], env, tmp_path, port=port)
        store = open_store(database_url, pool_size=1)
        await store.open()
        try:
            deadline = time.monotonic() + 20
            while (event := await store.get_event(event_id)).status != "delivered":
                assert time.monotonic() < deadline, f"not delivered: {event.steps}"
                await asyncio.sleep(0.05)
            async with httpx.AsyncClient(base_url=base, timeout=5) as http:
                metrics = (await http.get("/metrics")).text
                ready = await http.get("/readyz")
                hook = await http.post("/hooks/cart", json={})
                admin = await http.get("/admin/events")
        finally:
            await store.close()
            stop(worker)

    assert _sample(metrics, 'relay_events_total{status="delivered"}') == 1
    assert _sample(metrics, 'relay_keap_requests_total{code="200",operation="tags.add"}') == 1
    assert _sample(metrics, "relay_queue_depth") == 0
    assert ready.status_code == 200
    assert ready.json()["checks"]["worker"]["status"] == "ok"
    assert ready.json()["checks"]["database"]["status"] == "ok"
    assert hook.status_code == 404  # no webhooks here: they go to `relay serve`
    assert admin.status_code == 404
