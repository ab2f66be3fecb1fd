"""Each operation sends the wire contract's request and reads its answer; failures arrive
classified, every exchange passes the gate and is reported."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from app.keap.client import ContactFields, KeapCall, KeapClient, KeapCredentials, StoredToken
from app.keap.errors import KeapAuthError, KeapPermanentError, KeapTransientError
from app.keap.exchange import MAX_RESPONSE_BYTES
from app.keap.transport import KeapTransport

from .keap_fakes import (
    API_KEY,
    BASE_URL,
    KEY_CREDENTIALS,
    OAUTH_CREDENTIALS,
    TOKEN_URL,
    XMLRPC_URL,
    Harness,
    MemoryTokenStore,
    xmlrpc_answer,
    xmlrpc_fault,
    xmlrpc_request,
)

KEAP_HEADERS = {
    "x-keap-product-throttle-available": "239",
    "x-keap-product-quota-available": "29999",
    "x-keap-tenant-id": "ab123",
}

FULL_CONTACT = ContactFields(
    email="ada@example.com",
    given_name="Ada",
    family_name="Lovelace",
    phone="+44 20 7946 0000",
    company_id=31,
    opt_in_reason="Bought from the shop",
    custom_fields={17: "gold", 23: 4},
)


async def test_upsert_contact_sends_the_rest_upsert(
    harness: Harness, keap: respx.MockRouter
) -> None:
    route = keap.put(f"{BASE_URL}/rest/v1/contacts").respond(
        201, json={"id": 48872, "given_name": "Ada"}, headers=KEAP_HEADERS
    )
    contact_id = await harness.client().upsert_contact(FULL_CONTACT)
    assert contact_id == 48872
    request = route.calls.last.request
    assert request.headers["X-Keap-API-Key"] == API_KEY
    assert "Authorization" not in request.headers
    assert json.loads(request.content) == {
        "duplicate_option": "Email",
        "email_addresses": [{"email": "ada@example.com", "field": "EMAIL1"}],
        "given_name": "Ada",
        "family_name": "Lovelace",
        "phone_numbers": [{"number": "+44 20 7946 0000", "field": "PHONE1"}],
        "company": {"id": 31},
        "opt_in_reason": "Bought from the shop",
        "custom_fields": [{"id": 17, "content": "gold"}, {"id": 23, "content": 4}],
    }


async def test_upsert_contact_omits_fields_without_value(
    harness: Harness, keap: respx.MockRouter
) -> None:
    route = keap.put(f"{BASE_URL}/rest/v1/contacts").respond(200, json={"id": 7})
    assert await harness.client().upsert_contact(ContactFields(email="a@example.com")) == 7
    assert json.loads(route.calls.last.request.content) == {
        "duplicate_option": "Email",
        "email_addresses": [{"email": "a@example.com", "field": "EMAIL1"}],
    }


async def test_upsert_contact_without_an_id_is_permanent(
    harness: Harness, keap: respx.MockRouter
) -> None:
    keap.put(f"{BASE_URL}/rest/v1/contacts").respond(200, json={"given_name": "Ada"})
    with pytest.raises(KeapPermanentError, match="contact id"):
        await harness.client().upsert_contact(FULL_CONTACT)


COMPANIES = f"{BASE_URL}/rest/v2/companies"


async def test_a_company_name_is_sent_as_the_found_companys_id(
    harness: Harness, keap: respx.MockRouter
) -> None:
    found = keap.get(COMPANIES).respond(
        200, json={"companies": [{"id": "77", "company_name": "Analytical  Engines"}]}
    )
    created = keap.post(COMPANIES).respond(201, json={"id": "78"})
    upsert = keap.put(f"{BASE_URL}/rest/v1/contacts").respond(200, json={"id": 5})
    client = harness.client()
    named = ContactFields(email="ada@example.com", company="Analytical Engines")
    await client.upsert_contact(named)
    await client.upsert_contact(named)  # the id is kept: no second lookup
    assert found.call_count == 1
    assert created.call_count == 0
    query = found.calls.last.request.url.params
    assert query["filter"] == "company_name==Analytical Engines"
    assert json.loads(upsert.calls.last.request.content)["company"] == {"id": 77}
    assert [c.operation for c in harness.calls] == [
        "company.find",
        "contact.upsert",
        "contact.upsert",
    ]


async def test_a_company_name_with_a_semicolon_is_searched_by_its_prefix(
    harness: Harness, keap: respx.MockRouter
) -> None:
    """v2 filters join clauses with ``;`` (listCompanies): such a name cannot go into
    ``company_name==``; the prefix before it lists the candidates, compared here."""
    found = keap.get(COMPANIES).respond(
        200,
        json={
            "companies": [
                {"id": "80", "company_name": "Smith Ltd"},
                {"id": "81", "company_name": "Smith;  Jones"},
            ]
        },
    )
    upsert = keap.put(f"{BASE_URL}/rest/v1/contacts").respond(200, json={"id": 5})
    client = harness.client()
    await client.upsert_contact(ContactFields(email="ada@example.com", company="Smith; Jones"))
    query = found.calls.last.request.url.params
    assert query["filter"] == "name==Smith*"
    assert query["page_size"] == "1000"
    assert json.loads(upsert.calls.last.request.content)["company"] == {"id": 81}


async def test_a_missing_company_is_created_once_even_when_the_answer_is_lost(
    harness: Harness, keap: respx.MockRouter
) -> None:
    companies: list[dict[str, str]] = []

    def create(request: httpx.Request) -> httpx.Response:
        companies.append({"id": "90", **json.loads(request.content)})
        raise httpx.ReadTimeout("the answer never came")

    keap.get(COMPANIES).mock(
        side_effect=lambda _: httpx.Response(200, json={"companies": companies})
    )
    keap.post(COMPANIES).mock(side_effect=create)
    upsert = keap.put(f"{BASE_URL}/rest/v1/contacts").respond(200, json={"id": 5})
    client = harness.client()
    named = ContactFields(email="ada@example.com", company="Difference Engines")
    with pytest.raises(KeapTransientError):
        await client.upsert_contact(named)
    await client.upsert_contact(named)  # the retry finds what the lost create made
    assert companies == [{"id": "90", "company_name": "Difference Engines"}]
    assert json.loads(upsert.calls.last.request.content)["company"] == {"id": 90}


async def test_a_company_id_is_sent_without_a_lookup(
    harness: Harness, keap: respx.MockRouter
) -> None:
    upsert = keap.put(f"{BASE_URL}/rest/v1/contacts").respond(200, json={"id": 5})
    fields = ContactFields(email="ada@example.com", company="ignored", company_id=12)
    await harness.client().upsert_contact(fields)
    assert json.loads(upsert.calls.last.request.content)["company"] == {"id": 12}
    assert [c.operation for c in harness.calls] == ["contact.upsert"]


async def test_run_action_set_sends_run_action_sequence(
    harness: Harness, keap: respx.MockRouter
) -> None:
    route = keap.post(XMLRPC_URL).mock(
        return_value=xmlrpc_answer([{"Action": "Apply tag", "Message": "ok", "IsError": False}])
    )
    await harness.client().run_action_set(48872, 42)
    request = route.calls.last.request
    params, method = xmlrpc_request(request)
    assert method == "ContactService.runActionSequence"
    # The key authenticates in the header; the body carries a placeholder, never the key.
    assert request.headers["X-Keap-API-Key"] == API_KEY
    assert params[1:] == (48872, 42)
    assert API_KEY.encode() not in request.content
    assert b"<int>48872</int>" in route.calls.last.request.content


@pytest.mark.parametrize("flag", ["IsError", "isError", "ISERROR"])
async def test_an_action_set_result_with_an_error_is_permanent(
    harness: Harness, keap: respx.MockRouter, flag: str
) -> None:
    keap.post(XMLRPC_URL).mock(
        return_value=xmlrpc_answer(
            [
                {"Action": "Apply tag", "Message": "ok", flag: False},
                {"Action": "Send email", "Message": "template missing", flag: True},
            ]
        )
    )
    with pytest.raises(KeapPermanentError, match="Send email: template missing") as caught:
        await harness.client().run_action_set(48872, 42)
    assert harness.calls[-1].error == caught.value.detail  # the call itself shows the failure


@pytest.mark.parametrize(
    "answer",
    [
        [{"101": "SUCCESS"}, {"102": "SUCCESS"}],  # v1: entries of tag id → status
        {"101": "SUCCESS", "102": "DUPLICATE"},  # the same as one object; already applied
        {"results": {"101": "SUCCESS", "102": "SUCCESS"}},  # v2 :applyTags
        [],
    ],
)
async def test_add_tags_posts_tag_ids(
    harness: Harness, keap: respx.MockRouter, answer: object
) -> None:
    route = keap.post(f"{BASE_URL}/rest/v1/contacts/48872/tags").respond(200, json=answer)
    await harness.client().add_tags(48872, [101, 102])
    assert json.loads(route.calls.last.request.content) == {"tagIds": [101, 102]}


@pytest.mark.parametrize(
    "answer",
    [
        [{"101": "SUCCESS"}, {"102": "TAG_ID_NOT_FOUND"}],
        [{"101": "DUPLICATE"}, {"102": "FAILURE"}],
        {"101": "SUCCESS", "102": "CONTACT_NOT_FOUND"},
    ],
)
async def test_a_tag_refused_inside_a_200_is_permanent(
    harness: Harness, keap: respx.MockRouter, answer: object
) -> None:
    keap.post(f"{BASE_URL}/rest/v1/contacts/48872/tags").respond(200, json=answer)
    with pytest.raises(KeapPermanentError, match="tag 102") as caught:
        await harness.client().add_tags(48872, [101, 102])
    assert caught.value.status_code == 200
    assert harness.calls[-1].error == caught.value.detail


async def test_add_no_tags_makes_no_call(harness: Harness, keap: respx.MockRouter) -> None:
    await harness.client().add_tags(48872, [])
    assert harness.calls == []
    assert harness.gate.acquired == 0


async def test_remove_tag_deletes_it(harness: Harness, keap: respx.MockRouter) -> None:
    route = keap.delete(f"{BASE_URL}/rest/v1/contacts/48872/tags/101").respond(204)
    await harness.client().remove_tag(48872, 101)
    assert route.call_count == 1


async def test_sequences_are_added_and_removed(harness: Harness, keap: respx.MockRouter) -> None:
    url = f"{BASE_URL}/rest/v1/campaigns/7/sequences/3/contacts/48872"
    added = keap.post(url).respond(204)
    removed = keap.delete(url).respond(204)
    client = harness.client()
    await client.add_to_sequence(48872, campaign_id=7, sequence_id=3)
    await client.remove_from_sequence(48872, campaign_id=7, sequence_id=3)
    assert added.call_count == 1
    assert removed.call_count == 1
    assert added.calls.last.request.content == b""


TEMPLATES_SEND = f"{BASE_URL}/rest/v2/emails/templates:send"
USERINFO = f"{BASE_URL}/rest/v2/oauth/connect/userinfo"


async def test_send_email_template_goes_through_rest_v2_with_the_configured_user(
    http: httpx.AsyncClient, keap: respx.MockRouter
) -> None:
    route = keap.post(TEMPLATES_SEND).respond(202)
    userinfo = keap.get(USERINFO).respond(200, json={"sub": "3"})
    xmlrpc = keap.post(XMLRPC_URL).respond(500)
    client = KeapClient(
        KeapTransport(http, base_url=BASE_URL, token_url=TOKEN_URL, credentials=KEY_CREDENTIALS),
        user_id=9,
    )
    await client.send_email_template(48872, 55)
    assert json.loads(route.calls.last.request.content) == {
        "template_id": "55",
        "contact_ids": ["48872"],
        "user_id": "9",
    }
    assert userinfo.call_count == 0
    assert xmlrpc.call_count == 0


async def test_without_a_configured_user_the_credentials_user_is_asked_once(
    harness: Harness, keap: respx.MockRouter
) -> None:
    route = keap.post(TEMPLATES_SEND).respond(202)
    userinfo = keap.get(USERINFO).respond(200, json={"sub": "12345", "id": "99999"})
    client = harness.client()
    await client.send_email_template(1, 55)
    await client.send_email_template(2, 55)
    assert userinfo.call_count == 1
    assert json.loads(route.calls.last.request.content)["user_id"] == "12345"
    assert [c.operation for c in harness.calls] == [
        "user.discover",
        "email_template.send",
        "email_template.send",
    ]


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(403, json={"message": "Forbidden"}),
        httpx.Response(404, json={"message": "Not Found"}),
        httpx.Response(200, json={}),
    ],
)
async def test_a_user_keap_will_not_name_fails_permanently_naming_the_setting(
    harness: Harness, keap: respx.MockRouter, answer: httpx.Response
) -> None:
    keap.get(USERINFO).mock(return_value=answer)
    send = keap.post(TEMPLATES_SEND).respond(202)
    with pytest.raises(KeapPermanentError, match="RELAY_KEAP_USER_ID"):
        await harness.client().send_email_template(1, 55)
    assert send.call_count == 0


async def test_a_lost_userinfo_answer_is_retried_not_taken_for_a_sent_email(
    harness: Harness, keap: respx.MockRouter
) -> None:
    keap.get(USERINFO).mock(side_effect=httpx.ReadTimeout("no answer"))
    send = keap.post(TEMPLATES_SEND).respond(202)
    with pytest.raises(KeapTransientError) as caught:
        await harness.client().send_email_template(1, 55)
    assert caught.value.maybe_applied is False
    assert send.call_count == 0


async def test_a_template_keap_refuses_is_permanent(
    harness: Harness, keap: respx.MockRouter
) -> None:
    keap.get(USERINFO).respond(200, json={"sub": "1"})
    keap.post(TEMPLATES_SEND).respond(404, json={"code": 404, "message": "Template not found"})
    with pytest.raises(KeapPermanentError, match="Template not found"):
        await harness.client().send_email_template(48872, 55)


async def test_achieve_goal_posts_the_contact(harness: Harness, keap: respx.MockRouter) -> None:
    results = [
        {"campaign_id": 9, "goal_id": 4, "message": "", "success": True},
        {"campaign_id": 10, "goal_id": 2, "message": "not in sequence", "success": False},
    ]
    route = keap.post(f"{BASE_URL}/rest/v1/campaigns/goals/my%20shop/purchase%2Fpaid").respond(
        200, json=results
    )
    answer = await harness.client().achieve_goal(48872, "my shop", "purchase/paid")
    assert answer == results
    assert json.loads(route.calls.last.request.content) == {"contact_id": 48872}


@pytest.mark.parametrize(
    "answer",
    [
        [],  # v1: no campaign has this goal
        [{"campaign_id": 9, "goal_id": 4, "message": "Goal not found", "success": False}],
        {"results": []},  # v2
    ],
)
async def test_a_goal_that_fires_nothing_is_a_permanent_failure(
    harness: Harness, keap: respx.MockRouter, answer: object
) -> None:
    keap.post(f"{BASE_URL}/rest/v1/campaigns/goals/shop/purchase").respond(200, json=answer)
    with pytest.raises(KeapPermanentError, match="goal shop/purchase fired no campaign") as caught:
        await harness.client().achieve_goal(48872, "shop", "purchase")
    assert "campaign builder" in caught.value.detail
    assert harness.calls[-1].error == caught.value.detail


async def test_probe_auth_gets_the_profile(harness: Harness, keap: respx.MockRouter) -> None:
    route = keap.get(f"{BASE_URL}/rest/v1/oauth/connect/userinfo").respond(
        200, json={"name": "Shop"}
    )
    await harness.client().probe_auth()
    assert route.calls.last.request.headers["X-Keap-API-Key"] == API_KEY


async def test_a_probe_refused_403_by_userinfo_passes_on_the_account_profile(
    harness: Harness, keap: respx.MockRouter
) -> None:
    """A service account key may act for no user; it is an admin, so the profile answers."""
    keap.get(f"{BASE_URL}/rest/v1/oauth/connect/userinfo").respond(
        403, json={"message": "This credential is not associated with a user"}
    )
    profile = keap.get(f"{BASE_URL}/rest/v1/account/profile").respond(200, json={"name": "S"})
    await harness.client().probe_auth()
    assert profile.call_count == 1


async def test_a_probe_refused_by_both_endpoints_is_an_auth_error(
    harness: Harness, keap: respx.MockRouter
) -> None:
    keap.get(f"{BASE_URL}/rest/v1/oauth/connect/userinfo").respond(403, json={"message": "No"})
    keap.get(f"{BASE_URL}/rest/v1/account/profile").respond(403, json={"message": "No"})
    with pytest.raises(KeapAuthError):
        await harness.client().probe_auth()


async def test_a_probe_refused_401_does_not_try_the_profile(
    harness: Harness, keap: respx.MockRouter
) -> None:
    keap.get(f"{BASE_URL}/rest/v1/oauth/connect/userinfo").respond(401, json={"message": "No"})
    profile = keap.get(f"{BASE_URL}/rest/v1/account/profile").respond(200)
    with pytest.raises(KeapAuthError):
        await harness.client().probe_auth()
    assert profile.call_count == 0


async def test_probe_auth_raises_auth_error_when_the_key_is_rejected(
    harness: Harness, keap: respx.MockRouter
) -> None:
    keap.get(f"{BASE_URL}/rest/v1/oauth/connect/userinfo").respond(
        401, json={"message": "Invalid API key"}
    )
    with pytest.raises(KeapAuthError):
        await harness.client().probe_auth()


async def test_without_credentials_nothing_is_sent(
    harness: Harness, keap: respx.MockRouter
) -> None:
    client = harness.client(KeapCredentials())
    with pytest.raises(KeapAuthError, match="no Keap credentials"):
        await client.add_tags(1, [2])
    assert harness.calls == []
    assert harness.gate.acquired == 0


async def test_oauth_xmlrpc_sends_the_placeholder_key_and_a_bearer(
    harness: Harness, keap: respx.MockRouter
) -> None:
    store = MemoryTokenStore(StoredToken("refresh-1", "access-1", 4_000_000_000.0, None))
    credentials = KeapCredentials(client_id="id", client_secret="client-secret-x")
    route = keap.post(XMLRPC_URL).mock(return_value=xmlrpc_answer([]))
    await harness.client(credentials, store).run_action_set(5, 6)
    params, _ = xmlrpc_request(route.calls.last.request)
    assert params[0] == "relay"
    assert route.calls.last.request.headers["Authorization"] == "Bearer access-1"
    assert "X-Keap-API-Key" not in route.calls.last.request.headers


def test_oauth_without_a_token_store_is_refused(harness: Harness) -> None:
    with pytest.raises(ValueError, match="token store"):
        harness.client(OAUTH_CREDENTIALS, None)


# --- failures through the client ------------------------------------------------------------


async def test_xmlrpc_fault_is_classified(harness: Harness, keap: respx.MockRouter) -> None:
    keap.post(XMLRPC_URL).mock(
        return_value=xmlrpc_fault(5, "[RecordNotFound]Record not found for Id:48872")
    )
    with pytest.raises(KeapPermanentError, match="RecordNotFound") as caught:
        await harness.client().run_action_set(48872, 42)
    assert harness.calls[-1].error == caught.value.detail
    assert harness.calls[-1].status_code == 200


async def test_xmlrpc_brownout_503_is_transient(harness: Harness, keap: respx.MockRouter) -> None:
    keap.post(XMLRPC_URL).respond(503, text="Service Unavailable", headers={"Retry-After": "120"})
    with pytest.raises(KeapTransientError) as caught:
        await harness.client().run_action_set(48872, 42)
    assert caught.value.retry_after == 120


async def test_html_200_on_xmlrpc_is_transient(harness: Harness, keap: respx.MockRouter) -> None:
    keap.post(XMLRPC_URL).respond(200, html="<html><h1>Scheduled maintenance</h1></html>")
    with pytest.raises(KeapTransientError, match="Scheduled maintenance"):
        await harness.client().run_action_set(48872, 42)


async def test_html_200_on_rest_is_transient(harness: Harness, keap: respx.MockRouter) -> None:
    keap.put(f"{BASE_URL}/rest/v1/contacts").respond(200, html="<html>Proxy error</html>")
    with pytest.raises(KeapTransientError):
        await harness.client().upsert_contact(FULL_CONTACT)


async def test_developer_inactive_200_is_auth(harness: Harness, keap: respx.MockRouter) -> None:
    keap.post(XMLRPC_URL).respond(200, html="<h1>Developer Inactive</h1>")
    with pytest.raises(KeapAuthError):
        await harness.client().run_action_set(48872, 42)


async def test_connection_error_is_transient_and_reported_without_status(
    harness: Harness, keap: respx.MockRouter
) -> None:
    keap.post(f"{BASE_URL}/rest/v1/contacts/1/tags").mock(
        side_effect=httpx.ConnectError("Connection refused")
    )
    with pytest.raises(KeapTransientError, match="could not connect"):
        await harness.client().add_tags(1, [2])
    [call] = harness.calls
    assert call.status_code is None
    assert call.operation == "tags.add"
    assert call.error is not None
    assert "could not connect" in call.error
    assert harness.gate.observed == []


async def test_timeout_is_transient(harness: Harness, keap: respx.MockRouter) -> None:
    keap.post(XMLRPC_URL).mock(side_effect=httpx.ReadTimeout("timed out"))
    with pytest.raises(KeapTransientError, match=r"timed out \(read\)"):
        await harness.client().run_action_set(48872, 42)


async def test_requests_carry_the_relay_timeouts(harness: Harness, keap: respx.MockRouter) -> None:
    route = keap.delete(f"{BASE_URL}/rest/v1/contacts/1/tags/2").respond(204)
    await harness.client().remove_tag(1, 2)
    timeout = route.calls.last.request.extensions["timeout"]
    assert timeout["connect"] == 5.0
    assert timeout["read"] == 30.0


async def test_throttled_call_is_observed_and_reported(
    harness: Harness, keap: respx.MockRouter
) -> None:
    headers = {"x-keap-product-throttle-available": "0", "Retry-After": "3"}
    keap.post(f"{BASE_URL}/rest/v1/contacts/1/tags").respond(
        429, json={"code": "429", "message": "Quota Exceeded"}, headers=headers
    )
    with pytest.raises(KeapTransientError) as caught:
        await harness.client().add_tags(1, [2])
    assert caught.value.retry_after == 3
    [(observed_headers, status)] = harness.gate.observed
    assert status == 429
    assert observed_headers["x-keap-product-throttle-available"] == "0"
    assert harness.calls[0].throttle == {"x-keap-product-throttle-available": "0"}


async def test_every_call_passes_the_gate_and_is_reported(
    harness: Harness, keap: respx.MockRouter
) -> None:
    keap.put(f"{BASE_URL}/rest/v1/contacts").respond(200, json={"id": 3}, headers=KEAP_HEADERS)
    keap.post(f"{BASE_URL}/rest/v1/contacts/3/tags").respond(
        200, json=[{"9": "SUCCESS"}], headers=KEAP_HEADERS
    )
    client = harness.client()
    await client.upsert_contact(FULL_CONTACT)
    await client.add_tags(3, [9])
    assert harness.gate.acquired == 2
    assert len(harness.gate.observed) == 2
    upsert, tags = harness.calls
    assert (upsert.operation, upsert.method, upsert.path) == (
        "contact.upsert",
        "PUT",
        "/crm/rest/v1/contacts",
    )
    assert upsert.status_code == 200
    assert upsert.error is None
    assert upsert.duration >= 0
    assert upsert.throttle == KEAP_HEADERS
    assert (tags.operation, tags.path) == ("tags.add", "/crm/rest/v1/contacts/3/tags")


async def test_a_failing_observer_does_not_fail_a_call(
    http: httpx.AsyncClient, keap: respx.MockRouter
) -> None:
    def broken_observer(call: KeapCall) -> None:
        raise RuntimeError("metrics down")

    keap.post(XMLRPC_URL).mock(return_value=xmlrpc_answer([]))
    client = KeapClient(
        KeapTransport(
            http,
            base_url=BASE_URL,
            token_url=TOKEN_URL,
            credentials=KEY_CREDENTIALS,
            observer=broken_observer,
        )
    )
    await client.run_action_set(1, 2)  # Keap ran it: a metrics bug must not make it "fail"


async def test_oversized_answers_are_cut_and_refused(
    harness: Harness, keap: respx.MockRouter
) -> None:
    huge = b'{"id": 5, "pad": "' + b"x" * (MAX_RESPONSE_BYTES + 10) + b'"}'
    keap.put(f"{BASE_URL}/rest/v1/contacts").respond(200, content=huge)
    with pytest.raises(KeapPermanentError, match="larger than"):
        await harness.client().upsert_contact(FULL_CONTACT)


async def test_entity_bombs_in_xmlrpc_answers_are_not_expanded(
    harness: Harness, keap: respx.MockRouter
) -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        b"<methodResponse><params><param><value><string>&lol2;</string></value>"
        b"</param></params></methodResponse>"
    )
    keap.post(XMLRPC_URL).respond(200, content=bomb, headers={"Content-Type": "text/xml"})
    with pytest.raises(KeapPermanentError, match="forbidden XML"):
        await harness.client().run_action_set(48872, 42)
