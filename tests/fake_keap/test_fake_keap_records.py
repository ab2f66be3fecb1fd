"""What the fake records: contacts by email, tags, sequences, emails, goals, action sets."""

from __future__ import annotations

import xmlrpc.client
from collections.abc import Callable
from typing import Any

import httpx

from fake_keap import FakeKeapServer


def upsert_body(email: str, **fields: Any) -> dict[str, Any]:
    return {
        "duplicate_option": "Email",
        "email_addresses": [{"email": email, "field": "EMAIL1"}],
        **fields,
    }


def create_contact(keap: httpx.Client, email: str = "ann@x.test") -> int:
    response = keap.put("/rest/v1/contacts", json=upsert_body(email))
    assert response.status_code in (200, 201)
    return int(response.json()["id"])


def test_upsert_creates_then_updates_the_same_contact(
    fake: FakeKeapServer, keap: httpx.Client
) -> None:
    created = keap.put(
        "/rest/v1/contacts",
        json=upsert_body(
            "ann@x.test",
            given_name="Ann",
            phone_numbers=[{"number": "555-1", "field": "PHONE1"}],
            custom_fields=[{"id": 7, "content": "gold"}],
        ),
    )
    company = keap.post("/rest/v2/companies", json={"company_name": "Acme"})
    assert company.status_code == 201
    updated = keap.put(
        "/rest/v1/contacts",
        json=upsert_body("ANN@x.test", family_name="Lee", company={"id": company.json()["id"]}),
    )

    assert (created.status_code, updated.status_code) == (201, 200)
    assert created.json()["id"] == updated.json()["id"]
    contact = fake.state.contact(created.json()["id"])
    assert contact is not None
    assert (contact.given_name, contact.family_name, contact.phone, contact.company) == (
        "Ann",
        "Lee",
        "555-1",
        "Acme",
    )
    assert contact.custom_fields == {7: "gold"}
    assert updated.json()["company"] == {"id": contact.company_id, "company_name": "Acme"}
    assert len(fake.state.contacts) == 1


def test_a_company_is_referenced_by_id_only(fake: FakeKeapServer, keap: httpx.Client) -> None:
    by_name = keap.put(
        "/rest/v1/contacts", json=upsert_body("ann@x.test", company={"company_name": "Acme"})
    )
    unknown = keap.put("/rest/v1/contacts", json=upsert_body("ann@x.test", company={"id": 4242}))

    assert by_name.status_code == 400
    assert "company.id" in by_name.json()["message"]
    assert unknown.status_code == 400
    assert fake.state.contacts == []


def test_companies_are_found_by_exact_name_and_created(
    fake: FakeKeapServer, keap: httpx.Client
) -> None:
    created = keap.post("/rest/v2/companies", json={"company_name": "Acme Ltd"})
    found = keap.get("/rest/v2/companies", params={"filter": "company_name==Acme Ltd"})
    other = keap.get("/rest/v2/companies", params={"filter": "company_name==Acme"})

    assert created.status_code == 201
    assert found.json()["companies"] == [{"id": created.json()["id"], "company_name": "Acme Ltd"}]
    assert other.json()["companies"] == []
    assert fake.state.companies == {int(created.json()["id"]): "Acme Ltd"}


def test_company_filters_are_clauses_joined_by_semicolons(
    fake: FakeKeapServer, keap: httpx.Client
) -> None:
    """listCompanies (keap-sdk sdks/v2/swagger.yml): ``;`` joins clauses; ``name==P*`` is
    a case-insensitive prefix match."""
    for name in ("Smith; Jones", "smithers", "Acme"):
        keap.post("/rest/v2/companies", json={"company_name": name})

    def names(filter_: str) -> list[str] | int:
        answer = keap.get("/rest/v2/companies", params={"filter": filter_})
        if answer.status_code != 200:
            return answer.status_code
        return [c["company_name"] for c in answer.json()["companies"]]

    assert names("name==SMITH*") == ["Smith; Jones", "smithers"]
    assert names("name==smith*;company_name==smithers") == ["smithers"]
    assert names("company_name==Smith; Jones") == 400  # " Jones" is no clause
    assert names("name==Sm*th*") == 400  # the wildcard only at the end


def test_email_templates_go_through_rest_v2_with_a_user_id(
    fake: FakeKeapServer, keap: httpx.Client
) -> None:
    contact_id = create_contact(keap)
    body = {"template_id": "55", "contact_ids": [str(contact_id)]}

    without_user = keap.post("/rest/v2/emails/templates:send", json=body)
    sent = keap.post("/rest/v2/emails/templates:send", json={**body, "user_id": "1"})

    assert without_user.status_code == 400
    assert "user_id" in without_user.json()["message"]
    assert (sent.status_code, sent.content) == (202, b"")
    assert [(e.contact_id, e.template_id) for e in fake.state.emails_sent] == [(contact_id, 55)]


def test_userinfo_names_the_credentials_user_or_refuses_a_userless_key(
    fake: FakeKeapServer, keap: httpx.Client
) -> None:
    assert keap.get("/rest/v2/oauth/connect/userinfo").json()["sub"] == "1"
    fake.state.configure(credential_user_id=None)
    assert keap.get("/rest/v2/oauth/connect/userinfo").status_code == 403


def test_xmlrpc_upsert_and_find_share_the_rest_contacts(
    keap: httpx.Client, rpc: Callable[..., Any]
) -> None:
    rest_id = create_contact(keap)

    xmlrpc_id = rpc(
        "ContactService.addWithDupCheck",
        "key",
        {"Email": "ann@x.test", "FirstName": "Ann"},
        "Email",
    )
    found = rpc("ContactService.findByEmail", "key", "ann@x.test", ["Id", "FirstName"])

    assert xmlrpc_id == rest_id
    assert found == [{"Id": rest_id, "FirstName": "Ann"}]


def test_tags_and_sequences_are_applied_and_removed(
    fake: FakeKeapServer, keap: httpx.Client, rpc: Callable[..., Any]
) -> None:
    contact_id = create_contact(keap)

    assert (
        keap.post(f"/rest/v1/contacts/{contact_id}/tags", json={"tagIds": [101, 102]}).status_code
        == 200
    )
    assert keap.delete(f"/rest/v1/contacts/{contact_id}/tags/101").status_code == 204
    assert rpc("ContactService.addToGroup", "key", contact_id, 103) is True
    sequence = f"/rest/v1/campaigns/7/sequences/3/contacts/{contact_id}"
    assert keap.post(sequence).status_code == 204
    assert keap.post(f"/rest/v1/campaigns/8/sequences/4/contacts/{contact_id}").status_code == 204
    assert keap.delete(sequence).status_code == 204

    assert fake.state.tags_of(contact_id) == {102, 103}
    assert fake.state.sequences_of(contact_id) == {(8, 4)}


def test_email_goal_and_action_set_are_recorded(
    fake: FakeKeapServer, keap: httpx.Client, rpc: Callable[..., Any]
) -> None:
    contact_id = create_contact(keap)

    assert rpc("APIEmailService.sendEmail", "key", [contact_id], 55) is True
    actions = rpc("ContactService.runActionSequence", "key", contact_id, 42)
    goal = keap.post("/rest/v1/campaigns/goals/shop/purchase", json={"contact_id": contact_id})

    assert [(e.contact_id, e.template_id) for e in fake.state.emails_sent] == [(contact_id, 55)]
    assert [(r.contact_id, r.action_set_id) for r in fake.state.action_set_runs] == [
        (contact_id, 42)
    ]
    assert actions[0]["IsError"] is False
    assert goal.status_code == 200
    assert goal.json() == [
        {"campaign_id": 1, "goal_id": 1, "message": "Goal achieved", "success": True}
    ]
    assert [(g.integration, g.call_name, g.contact_id) for g in fake.state.goals_achieved] == [
        ("shop", "purchase", contact_id)
    ]


def test_strict_ids_refuse_unknown_tags_action_sets_and_templates(
    fake: FakeKeapServer, keap: httpx.Client, rpc: Callable[..., Any]
) -> None:
    fake.state.configure(known_tag_ids={101}, known_action_set_ids={42}, known_template_ids={55})
    contact_id = create_contact(keap)

    unknown_tag = keap.post(f"/rest/v1/contacts/{contact_id}/tags", json={"tagIds": [101, 999]})
    unknown_set = rpc("ContactService.runActionSequence", "key", contact_id, 43)
    unknown_template = rpc("APIEmailService.sendEmail", "key", [contact_id], 56)

    # Keap answers 200 for the call and a status per tag: the known one is applied.
    assert unknown_tag.status_code == 200
    assert unknown_tag.json() == [{"101": "SUCCESS"}, {"999": "TAG_ID_NOT_FOUND"}]
    assert fake.state.tags_of(contact_id) == {101}
    for fault in (unknown_set, unknown_template):
        assert isinstance(fault, xmlrpc.client.Fault)
        assert fault.faultCode == 5
        assert fault.faultString.startswith("[RecordNotFound]")
    assert rpc("ContactService.runActionSequence", "key", contact_id, 42)[0]["IsError"] is False


def test_unknown_contacts_and_malformed_bodies_are_refused(
    keap: httpx.Client, rpc: Callable[..., Any]
) -> None:
    missing = keap.post("/rest/v1/contacts/999/tags", json={"tagIds": [1]})
    malformed = keap.put("/rest/v1/contacts", content=b"{not json")
    no_email = keap.put("/rest/v1/contacts", json={"duplicate_option": "Email"})
    fault = rpc("ContactService.addToGroup", "key", 999, 1)

    assert missing.status_code == 404
    assert "message" in missing.json()
    assert (malformed.status_code, no_email.status_code) == (400, 400)
    assert isinstance(fault, xmlrpc.client.Fault)
    assert fault.faultString.startswith("[RecordNotFound]")


def test_request_log_names_each_operation(
    fake: FakeKeapServer, keap: httpx.Client, rpc: Callable[..., Any]
) -> None:
    contact_id = create_contact(keap)
    keap.post(f"/rest/v1/contacts/{contact_id}/tags", json={"tagIds": [1]})
    rpc("ContactService.runActionSequence", "key", contact_id, 42)
    keap.get("/rest/v1/oauth/connect/userinfo")

    log = fake.state.requests
    assert [r.operation for r in log] == [
        "contact.upsert",
        "tags.add",
        "action_set.run",
        "auth.probe",
    ]
    assert [r.status for r in log] == [201, 200, 200, 200]
    assert not any(r.throttled for r in log)
    assert fake.state.request_count("tags.add") == 1
