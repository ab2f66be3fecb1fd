"""kill -9 of a serving relay loses no acknowledged webhook."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import httpx

from app.store.factory import open_store
from tests.support.processes import free_port, relay_env, start_relay, stop
from tests.support.senders import hex_signature

CONFIG = """
sources:
  cart:
    verify: {scheme: hmac, secret: "${CART_SECRET}", header: x-signature, encoding: hex}
    event_type: body.event
    event_id: body.id
routes:
  - name: sale
    source: cart
    event: sale
    contact: {email: body.email}
    actions: [{tags: [1]}]
"""


def child_pids(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()]


def running(pid: int) -> bool:
    """Whether the process still runs (a zombie waiting to be reaped has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


async def test_kill_9_after_a_burst_keeps_every_acknowledged_event(
    tmp_path: Path, database_url: str
) -> None:
    port = free_port()
    env = relay_env(tmp_path, database_url, CONFIG, {"CART_SECRET": "crash-key"})
    process = start_relay(["serve", "--workers", "0", "--port", str(port)], env, tmp_path, port)
    children = child_pids(process.pid)  # on SQLite, the ingest writer process
    assert len(children) == (1 if database_url.startswith("sqlite") else 0)
    acknowledged: list[str] = []
    outstanding = cut_off = outstanding_at_kill = 0
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            enough = asyncio.Event()

            async def post(i: int) -> None:
                nonlocal outstanding, cut_off, outstanding_at_kill
                body = json.dumps(
                    {"id": f"o-{i}", "event": "sale", "email": f"c{i}@example.com"}
                ).encode()
                sig = hex_signature("crash-key", body)
                outstanding += 1
                try:
                    response = await client.post(
                        "/hooks/cart",
                        content=body,
                        headers={"content-type": "application/json", "x-signature": sig},
                    )
                except httpx.HTTPError:
                    cut_off += 1  # by the kill: never acknowledged, may or may not be stored
                    return
                finally:
                    outstanding -= 1
                if response.status_code == 202:
                    acknowledged.append(response.json()["event_id"])
                    if len(acknowledged) == 150:
                        # Kill mid-burst, here and now: once this task yields, a loaded
                        # machine may answer every other request before the test looks.
                        outstanding_at_kill = outstanding
                        process.send_signal(signal.SIGKILL)
                        enough.set()

            burst = [asyncio.create_task(post(i)) for i in range(400)]
            await asyncio.wait_for(enough.wait(), timeout=30)
            await asyncio.gather(*burst)
    finally:
        process.wait()
    for _ in range(100):  # the ingest writer, its server gone, ends too (no orphan left)
        if not any(running(pid) for pid in children):
            break
        await asyncio.sleep(0.05)
    assert not any(running(pid) for pid in children)
    assert len(acknowledged) >= 150
    # The kill landed mid-burst: requests were waiting for their answers, and lost them.
    assert outstanding_at_kill >= 1
    assert cut_off >= 1
    # Restart on the same database: the relay starts, and every acknowledged event is there.
    restarted = start_relay(["serve", "--workers", "0", "--port", str(port)], env, tmp_path, port)
    stop(restarted)
    store = open_store(database_url)
    await store.open()
    try:
        missing = [eid for eid in acknowledged if await store.get_event(eid) is None]
        counts = await store.count_by_status()
    finally:
        await store.close()
    assert missing == []
    assert counts["pending"] >= len(acknowledged)
