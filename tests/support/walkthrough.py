"""The first-hour walk-through of README.md and docs/sandbox.md, run as a newcomer would:
init → check → sandbox → a signed Shopify order and a ThriveCart order → delivered in the
fake Infusionsoft → a failure made on purpose → the dashboard shows it all.

``relay`` is the command to run (a venv's ``bin/relay``, or this interpreter's module), so
tests/cli/test_sandbox.py runs it here and tests/test_newcomer.py in a fresh venv.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from tests.support.processes import free_port, wait_healthy


def run(
    relay: Sequence[str], *args: str, cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*relay, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def walk_through(relay: Sequence[str], repo: Path, env: dict[str, str]) -> None:
    """Run it all in ``repo`` (a copy of the repository: docs/examples is read from it)."""
    init = run(relay, "init", "thrivecart", "shopify", cwd=repo, env=env)
    assert init.returncode == 0, init.stderr
    secrets = {"THRIVECART_SECRET": "tc-secret-word", "SHOPIFY_SECRET": "shpss_0123456789abcdef"}
    lines = [line for line in init.stdout.splitlines() if re.match(r"[A-Z_]+=", line)]
    assert sorted(line.split("=")[0] for line in lines) == sorted(secrets)
    (repo / ".env").write_text("".join(f"{k}={v}\n" for k, v in secrets.items()))

    check = run(relay, "check", cwd=repo, env=env)
    assert check.returncode == 2
    assert "placeholder ids from the recipes" in check.stderr

    port, fake_port = free_port(), free_port()
    log = repo / "sandbox.log"
    with open(log, "wb") as out:
        sandbox = subprocess.Popen(
            [*relay, "sandbox", "--port", str(port), "--fake-port", str(fake_port)],
            cwd=repo,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, sandbox, log, timeout=60)
        banner = log.read_text()
        assert f"{base}/hooks/shopify" in banner
        assert f"{base}/hooks/thrivecart" in banner
        token = re.search(r"admin token \(made for this run\): (\S+)", banner)
        control = re.search(r"(http://\S+/_fake)/state", banner)
        assert token, banner
        assert control, banner
        _orders_go_through(relay, repo, env, base, token.group(1), control.group(1))
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=20)


def _orders_go_through(
    relay: Sequence[str], repo: Path, env: dict[str, str], base: str, token: str, control: str
) -> None:
    bearer = {"Authorization": f"Bearer {token}"}
    readme = (Path(repo) / "README.md").read_text()
    curl = re.search(r"```sh\n(args=\(\);.*?)\n```", readme, re.DOTALL)
    assert curl, "README.md has no relay sign + curl example"
    script = curl.group(1).replace("http://localhost:8000", base)
    bin_dir = str(Path(relay[0]).parent)
    posted = subprocess.run(
        ["bash", "-c", script],
        cwd=repo,
        env={**env, "PATH": f"{bin_dir}:{env['PATH']}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert posted.returncode == 0, posted
    assert '"status":"accepted"' in posted.stdout, posted
    shopify_id = re.search(r'"event_id":"([^"]+)"', posted.stdout)
    assert shopify_id
    event = _wait_final(base, shopify_id.group(1), bearer)
    assert event["status"] == "delivered", event
    assert event["routes"] == ["shopify-purchase"]

    state = httpx.get(f"{control}/state").json()
    [contact] = [c for c in state["contacts"] if c["email"] == "emma.wilson@example.com"]
    assert contact["tags"] == [111111]
    assert contact["given_name"] == "Emma"

    # docs/sandbox.md, verbatim but for the ports: make the next call fail, then post the
    # ThriveCart order.
    guide = (repo / "docs" / "sandbox.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)\n```", guide, re.DOTALL)
    fail = next(b for b in blocks if '"fail_next": {"status": 400}' in b)
    order = next(b for b in blocks if "thrivecart-order.form" in b)
    fake_root = control.removesuffix("/_fake")
    outputs = []
    for script in (fail, order):
        script = script.replace("http://127.0.0.1:9000", fake_root)
        script = script.replace("http://localhost:8000", base)
        done = subprocess.run(
            ["bash", "-c", script], cwd=repo, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done
        outputs.append(done.stdout)
    thrivecart_id = re.search(r'"event_id":"([^"]+)"', outputs[1])
    assert thrivecart_id, outputs
    dead = _wait_final(base, thrivecart_id.group(1), bearer)
    assert dead["status"] == "dead", dead
    assert "400" in (dead["last_error"] or ""), dead

    page = httpx.get(f"{base}/admin/", headers={**bearer, "Accept": "text/html"}).text
    assert shopify_id.group(1) in page
    assert dead["id"] in page

    # "Replay unfinished steps": the fake answers normally again, so it is delivered.
    replay = httpx.post(f"{base}/admin/events/{dead['id']}/replay", headers=bearer)
    assert replay.status_code == 202, replay.text
    assert _wait_final(base, dead["id"], bearer)["status"] == "delivered"
    operations = [r["operation"] for r in httpx.get(f"{control}/state").json()["requests"]]
    assert operations[:2] == ["contact.upsert", "tags.add"], operations


def _wait_final(base: str, event_id: str, bearer: dict[str, str]) -> Any:
    deadline = time.monotonic() + 30
    while True:
        event = httpx.get(f"{base}/admin/events/{event_id}", headers=bearer).json()
        if event["status"] != "pending" or time.monotonic() > deadline:
            return event
        time.sleep(0.2)
