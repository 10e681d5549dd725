"""Helpers for tests that run the plugin inside a real sopflow app against the fake org."""

from __future__ import annotations

from typing import Any

import attrs
from sopflow_salesforce.fake import DemoOrg
from sopflow_sdk import Secret

#: The mapping most tests use: a CRM-owned date, a sopflow-owned picklist, one both ways.
MAPPING = {
    "object": "Contact",
    "fields": [
        {"salesforce": "Policy_Expiry__c", "sopflow": "policy_expiry", "direction": "from_crm"},
        {"salesforce": "LastName", "sopflow": "last_name", "direction": "from_crm"},
        {"salesforce": "Engagement__c", "sopflow": "engagement", "direction": "to_crm"},
        {"salesforce": "Tier__c", "sopflow": "tier", "direction": "both", "owner": "salesforce"},
        {"salesforce": "Premium__c", "sopflow": "premium", "direction": "both", "owner": "sopflow"},
        {"salesforce": "Interests__c", "sopflow": "interests", "direction": "from_crm"},
    ],
    "match": [{"salesforce": "Email", "sopflow": "email"}],
    "external_id_field": "Sopflow_Id__c",
}


def connect(api: Any, org: DemoOrg, mapping: dict | None = MAPPING, **config: Any) -> int:
    """A Salesforce connection for the tenant, with ``mapping`` stored; its account id."""
    r = api.post("/api/v1/channel-accounts", json=org.account_settings(**config))
    assert r.status_code == 201, r.text
    account_id = r.json()["id"]
    if not any(f["key"] == "email" for f in fields(api)):
        assert api.post("/api/v1/fields", json={"key": "email", "type": "text"}).status_code == 201
    if mapping is not None:
        put = api.put(f"/plugins/salesforce/accounts/{account_id}/mapping", json=mapping)
        assert put.status_code == 200, put.text
    return account_id


def fields(api: Any) -> list[dict]:
    body = api.get("/api/v1/fields").json()
    return body["items"] if isinstance(body, dict) and "items" in body else body


def host(app: Any) -> Any:
    from sopflow.host import PluginHost

    return PluginHost(app, "salesforce")


def customer_by_record(api: Any, record_id: str) -> dict | None:
    r = api.get("/api/v1/customers", params={"channel": "salesforce", "external_id": record_id})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    return items[0] if items else None


@attrs.define
class StubAccount:
    """A channel account as ``host.channel_account`` hands it out."""

    id: int
    tenant_id: int
    config: dict[str, Any]
    secrets: dict[str, Any]
    channel: str = "salesforce"
    name: str = "crm"


def account_for(org: DemoOrg, flow: str = "jwt_bearer", account_id: int = 1, **config: Any) -> StubAccount:
    body = org.account_settings(flow, **config)
    body["config"].setdefault("api_version", "62.0")
    secrets = {k: Secret(v) for k, v in body["secrets"].items()}
    return StubAccount(account_id, 1, body["config"], secrets)
