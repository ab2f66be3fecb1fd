"""What the fault-injection tests share: a route whose action set must never run twice,
orders with one contact each, and the checks every fault ends with.

Every test here is bounded: fixed counts of events, cycles and faults, short waits, and
traffic to loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.domain.events import EventRecord
from app.store.base import Store
from devkit.cart import cart_yaml, headers
from devkit.cart import order as order
from fake_keap.state import FakeKeapState

# The scenario is the soak's too (bench/soak.py): its config, orders and token are devkit's.
FAULT_YAML = cart_yaml()
PROBLEM_FIELDS = {"type", "title", "status", "detail"}


async def post_order(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post("/hooks/cart", json=body, headers=headers())


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    assert set(problem) >= PROBLEM_FIELDS
    assert problem["status"] == status
    return problem


async def wait_until(
    check: Callable[[], Awaitable[bool]], within: float, what: Callable[[], Awaitable[str]]
) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:g} s: {await what()}")
        await asyncio.sleep(0.1)


async def wait_all_finished(store: Store, ids: list[str], within: float) -> list[EventRecord]:
    """Wait until none of ``ids`` is pending; return their records."""

    async def finished() -> bool:
        counts = await store.count_by_status()
        return counts.get("pending", 0) == 0

    async def describe() -> str:
        return f"statuses {await store.count_by_status()}"

    await wait_until(finished, within, describe)
    records = [await store.get_event(event_id) for event_id in ids]
    missing = [eid for eid, r in zip(ids, records, strict=True) if r is None]
    assert missing == [], f"acknowledged but not stored: {missing}"
    return [r for r in records if r is not None]


def assert_delivered_once(records: list[EventRecord], fake: FakeKeapState) -> None:
    """Each event delivered, and its action set run once — or, when the call was in
    flight as its worker died, not repeated and marked outcome_unknown."""
    not_delivered = [(r.id, r.status, r.last_error) for r in records if r.status != "delivered"]
    assert not_delivered == []
    runs = Counter(run.contact_id for run in fake.action_set_runs)
    twice = {cid: n for cid, n in runs.items() if n > 1}
    assert twice == {}, f"action sets run more than once: {twice}"
    for record in records:
        assert all(step.status == "done" for step in record.steps), record.steps
        contact = fake.contact_by_email(record.contact_email or "")
        assert contact is not None, f"{record.id}: no contact for {record.contact_email}"
        if runs[contact.id] == 0:
            step = next(s for s in record.steps if s.action == "action_set")
            assert "outcome_unknown" in (step.result or {}), (
                f"{record.id}: the action set never ran and the step does not say why"
            )


# A small filesystem of our own, for a full disk and a read-only file --------------------
@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs mounted for this test (root only); skips where mounting is refused."""
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root and mount(8) to make a size-limited tmpfs")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        for path in mountpoint.iterdir():
            subprocess.run(["chattr", "-i", str(path)], capture_output=True, check=False)
        subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True, check=False)


def fill_disk(folder: Path) -> Path:
    """Write a file until the filesystem is full; delete it to free the space again."""
    filler = folder / "filler"
    # Unbuffered, so closing the file has nothing left to flush into the full disk.
    with contextlib.suppress(OSError), open(filler, "wb", buffering=0) as out:
        while True:
            out.write(b"\0" * 65536)
    return filler


def make_immutable(path: Path, on: bool) -> None:
    """chattr ±i: even root cannot open an immutable file for writing (chmod would not
    stop root)."""
    done = subprocess.run(
        ["chattr", "+i" if on else "-i", str(path)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        pytest.skip(f"chattr is not supported here: {done.stderr.strip()}")


from tests.delivery.conftest import fake_keap  # noqa: E402, F401 (fixture)
