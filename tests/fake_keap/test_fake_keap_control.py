"""Driving the fake over /_fake/*, and running it as ``python -m fake_keap``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from fake_keap import FakeKeapServer

PROFILE = "/rest/v1/oauth/connect/userinfo"
REPO_ROOT = Path(__file__).resolve().parents[2]


def test_config_endpoint_changes_keys_and_injects_failures(fake: FakeKeapServer) -> None:
    with (
        httpx.Client(base_url=fake.root_url) as control,
        httpx.Client(base_url=fake.base_url, headers={"X-Keap-API-Key": "key-bench"}) as keap,
    ):
        answer = control.post(
            "/_fake/config",
            json={"valid_keys": ["key-bench"], "per_second": 5, "fail_next": {"status": 503}},
        )
        assert answer.status_code == 200
        assert [keap.get(PROFILE).status_code for _ in range(2)] == [503, 200]

        control.post("/_fake/config", json={"outage": {"status": 502}})
        assert keap.get(PROFILE).status_code == 502
        control.post("/_fake/config", json={"outage": False})
        assert keap.get(PROFILE).status_code == 200

        control.post("/_fake/config", json={"settings": {"valid_keys": ["key-other"]}})
        assert keap.get(PROFILE).status_code == 401

    assert fake.state.behaviour.per_second == 5


def test_config_endpoint_refuses_unknown_settings(fake: FakeKeapServer) -> None:
    nested = httpx.post(fake.control_url + "/config", json={"settings": {"per_hour": 5}})
    top_level = httpx.post(fake.control_url + "/config", json={"per_hour": 5, "per_second": 2})

    assert (nested.status_code, top_level.status_code) == (400, 400)
    assert "per_hour" in nested.json()["message"]
    assert fake.state.behaviour.per_second is None


def test_state_endpoint_shows_records_and_reset_clears_them(
    fake: FakeKeapServer, keap: httpx.Client
) -> None:
    keap.put(
        "/rest/v1/contacts",
        json={"duplicate_option": "Email", "email_addresses": [{"email": "a@x.test"}]},
    )
    keap.post("/rest/v1/contacts/1/tags", json={"tagIds": [9]})

    state = httpx.get(fake.control_url + "/state").json()
    assert [(c["email"], c["tags"]) for c in state["contacts"]] == [("a@x.test", [9])]
    assert state["counters"]["requests"] == 2
    assert [r["operation"] for r in state["requests"]] == ["contact.upsert", "tags.add"]
    assert (
        httpx.get(fake.control_url + "/state?log_limit=1").json()["requests"][0]["operation"]
        == "tags.add"
    )

    assert httpx.post(fake.control_url + "/reset").status_code == 200
    cleared = httpx.get(fake.control_url + "/state").json()
    assert (cleared["contacts"], cleared["counters"]["requests"]) == ([], 0)
    assert keap.get(PROFILE).status_code == 200  # the keys survive a reset


def test_module_runs_as_a_subprocess_and_prints_its_urls() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fake_keap",
            "--port",
            "0",
            "--api-key",
            "k",
            "--per-second",
            "5",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = dict(
            process.stdout.readline().strip().split(" ")[1].split("=", 1) for _ in range(4)
        )
        response = httpx.get(lines["base_url"] + PROFILE, headers={"X-Keap-API-Key": "k"})
        assert response.status_code == 200
        assert "x-keap-product-spike-limit" not in response.headers  # Keap sends none
        behaviour = httpx.get(lines["control_url"] + "/state").json()["behaviour"]
        assert behaviour["per_second"] == 5
        assert lines["token_url"].endswith("/token")
        assert lines["authorize_url"].endswith("/app/oauth/authorize")
        assert lines["control_url"].endswith("/_fake")
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
        if process.stdout is not None:
            process.stdout.close()
