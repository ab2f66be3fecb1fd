"""Waiting for a process the tests or the benchmark started to answer on HTTP."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import httpx


def wait_answers(
    url: str,
    popen: subprocess.Popen[bytes],
    *,
    name: str,
    log_tail: Callable[[], str],
    timeout: float,
) -> None:
    """Return once ``url`` answers 200. RuntimeError, with ``name`` and the end of its log,
    if the process exits first, or if ``timeout`` seconds pass (the process is then
    stopped: terminated, killed after 10 s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise RuntimeError(f"{name} exited with {popen.returncode}:\n{log_tail()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    popen.terminate()
    try:
        popen.wait(timeout=10)
    except subprocess.TimeoutExpired:
        popen.kill()
    raise RuntimeError(f"{name} did not answer {url} in {timeout:g} s:\n{log_tail()}")
