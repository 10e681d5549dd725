"""The field mapping route: checked against describe and the tenant's fields."""

from __future__ import annotations

from typing import Any

from salesforce_support import MAPPING, connect, fields
from sopflow_salesforce.fake import DemoOrg


def test_a_mapping_is_stored_and_contributes_typed_fields(api: Any, org: DemoOrg) -> None:
    account_id = connect(api, org)
    got = api.get(f"/plugins/salesforce/accounts/{account_id}/mapping").json()
    assert [f["owner"] for f in got["fields"]] == [
        "salesforce",
        "salesforce",
        "sopflow",
        "salesforce",
        "sopflow",
        "salesforce",
    ]
    by_key = {f["key"]: f for f in fields(api)}
    assert by_key["policy_expiry"]["type"] == "date"
    assert by_key["tier"]["type"] == "choice" and by_key["tier"]["choices"] == ["Bronze", "Silver", "Gold"]
    assert by_key["interests"]["type"] == "multi_choice"
    assert by_key["premium"]["type"] == "number"
    assert by_key["last_name"]["type"] == "text"


def test_bad_mappings_are_refused_naming_each_problem_and_nothing_is_saved(api: Any, org: DemoOrg) -> None:
    account_id = connect(api, org, mapping=None)
    api.post("/api/v1/fields", json={"key": "tier", "type": "text"})
    before = {f["key"] for f in fields(api)}
    bad = {
        "object": "Contact",
        "fields": [
            {"salesforce": "Policy_Expiry__c", "sopflow": "policy_expiry", "direction": "from_crm"},
            {"salesforce": "Nope__c", "sopflow": "nope", "direction": "from_crm"},
            {"salesforce": "Tier__c", "sopflow": "tier", "direction": "from_crm"},
            {"salesforce": "Email", "sopflow": "policy_expiry", "direction": "from_crm"},
            {"salesforce": "Premium__c", "sopflow": "premium", "direction": "both"},
            {"salesforce": "SystemModstamp", "sopflow": "stamp", "direction": "to_crm"},
        ],
        "external_id_field": "Email",
    }
    r = api.put(f"/plugins/salesforce/accounts/{account_id}/mapping", json=bad)
    assert r.status_code == 422, r.text
    errors = {e["field"]: e["message"] for e in r.json()["errors"]}
    assert set(errors) == {
        "fields[1].salesforce",
        "fields[2].sopflow",
        "fields[3].sopflow",
        "fields[4].owner",
        "fields[5].direction",
        "external_id_field",
    }
    assert "text field" in errors["fields[2].sopflow"] and "already mapped" in errors["fields[3].sopflow"]
    assert {f["key"] for f in fields(api)} == before
    assert api.get(f"/plugins/salesforce/accounts/{account_id}/mapping").status_code == 404


def test_an_unknown_object_is_refused(api: Any, org: DemoOrg) -> None:
    account_id = connect(api, org, mapping=None)
    r = api.put(f"/plugins/salesforce/accounts/{account_id}/mapping", json={**MAPPING, "object": "Policy__c"})
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["object"]


def test_the_route_needs_an_admin_key_of_the_tenant(api: Any, anon_api: Any, org: DemoOrg) -> None:
    account_id = connect(api, org, mapping=None)
    assert anon_api.get(f"/plugins/salesforce/accounts/{account_id}/mapping").status_code == 401
    assert api.get("/plugins/salesforce/accounts/999/mapping").status_code == 404
