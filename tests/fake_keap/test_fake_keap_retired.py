"""The fake's XML-RPC sunset switch: over the control API, the CLI flag and in Python."""

from __future__ import annotations

import xmlrpc.client
from collections.abc import Callable
from typing import Any

import httpx

from fake_keap import FakeKeapServer
from fake_keap.__main__ import build_state, parse_args

PROFILE = "/rest/v1/account/profile"
RUN_ACTION_SET = xmlrpc.client.dumps(("key", 1, 42), "ContactService.runActionSequence")


def post_xmlrpc(keap: httpx.Client) -> httpx.Response:
    return keap.post("/xmlrpc/v1", content=RUN_ACTION_SET, headers={"Content-Type": "text/xml"})


def test_retired_xmlrpc_answers_apigees_404_and_rest_goes_on(
    fake: FakeKeapServer, keap: httpx.Client, rpc: Callable[..., Any]
) -> None:
    with httpx.Client(base_url=fake.root_url) as control:
        assert control.post("/_fake/config", json={"xmlrpc_retired": True}).status_code == 200
        retired = post_xmlrpc(keap)
        assert retired.status_code == 404
        assert retired.json()["fault"]["detail"]["errorcode"] == (
            "messaging.adaptors.http.flow.ApplicationNotFound"
        )
        assert "/crm/xmlrpc/v1" in retired.json()["fault"]["faultstring"]
        assert keap.get(PROFILE).status_code == 200
        assert fake.state.action_set_runs == []  # nothing ran

        answer = control.post(
            "/_fake/config", json={"xmlrpc_retired": {"status": 410, "format": "html"}}
        )
        assert answer.json()["faults"]["xmlrpc_retired"] == {"status": 410, "format": "html"}
        gone = post_xmlrpc(keap)
        assert gone.status_code == 410
        assert gone.headers["content-type"].startswith("text/html")

        control.post("/_fake/config", json={"xmlrpc_retired": False})
    assert isinstance(
        rpc("ContactService.addWithDupCheck", "key", {"Email": "a@x.test"}, "Email"), int
    )


def test_retired_xmlrpc_answers_before_any_credential_check(fake: FakeKeapServer) -> None:
    fake.state.retire_xmlrpc()
    with httpx.Client(base_url=fake.base_url, headers={"X-Keap-API-Key": "wrong"}) as keap:
        assert post_xmlrpc(keap).status_code == 404  # no proxy: nothing checks the key


def test_the_fake_can_start_with_xmlrpc_retired() -> None:
    state = build_state(parse_args(["--api-key", "k", "--xmlrpc-retired"]))
    with (
        FakeKeapServer(state) as server,
        httpx.Client(base_url=server.base_url, headers={"X-Keap-API-Key": "k"}) as keap,
    ):
        assert post_xmlrpc(keap).status_code == 404
