"""Outbound: sopflow-owned changes written once through the outbox, no echo,
conflicts won by the owner, per-record errors, refusals that keep the write."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from salesforce_support import connect, customer_by_record, host
from sopflow_salesforce import outbox, sync
from sopflow_salesforce.fake import DemoOrg
from sopflow_salesforce.store import outbox as outbox_table


def events(api: Any, type_: str) -> list[dict]:
    return api.get("/api/v1/events", params={"type": type_, "limit": 200}).json()["items"]


def imported(api: Any, org: DemoOrg, app: Any, n: int = 1, **values: Any) -> tuple[int, list[dict]]:
    account_id = connect(api, org)
    records = [org.fake.org.create("Contact", {"LastName": f"C{i}", **values}) for i in range(n)]
    sync.sync_account(host(app), host(app).channel_account(account_id))
    return account_id, records


def outbox_states(app: Any) -> list[str]:
    with app.engine.connect() as conn:
        return [r.state for r in conn.execute(sa.select(outbox_table).order_by(outbox_table.c.id))]


def patch(api: Any, record_id: str, **fields: Any) -> None:
    customer = customer_by_record(api, record_id)
    r = api.patch(f"/api/v1/customers/{customer['id']}", json={"fields": fields})
    assert r.status_code == 200, r.text


def test_a_sopflow_owned_change_is_written_once_and_does_not_echo(
    api: Any, org: DemoOrg, sopflow_app: Any
) -> None:
    account_id, [rec] = imported(api, org, sopflow_app)
    patch(api, rec["Id"], engagement="hot")
    assert org.fake.org.record("Contact", rec["Id"])["Engagement__c"] == "hot"
    [write] = org.fake.writes("Contact")
    assert write.resource == "composite/sobjects/Contact/Id"
    assert write.body["records"] == [
        {"attributes": {"type": "Contact"}, "Id": rec["Id"], "Engagement__c": "hot"}
    ]
    account = host(sopflow_app).channel_account(account_id)
    before = len(events(api, "crm.updated"))
    assert sync.sync_account(host(sopflow_app), account)["changed"] == 0  # our own write, read back
    assert len(events(api, "crm.updated")) == before
    outbox.push_all(host(sopflow_app))
    patch(api, rec["Id"], engagement="hot")  # the same value again: nothing to write
    assert len(org.fake.writes("Contact")) == 1 and outbox_states(sopflow_app) == ["done"]


def test_a_customer_salesforce_does_not_know_is_created_by_external_id(
    api: Any, org: DemoOrg, sopflow_app: Any
) -> None:
    connect(api, org)
    r = api.post("/api/v1/customers", json={"display_name": "New", "fields": {"engagement": "warm"}})
    assert r.status_code == 201, r.text
    [write] = org.fake.writes("Contact")
    assert write.resource == "composite/sobjects/Contact/Sopflow_Id__c"
    [created] = org.fake.org.find("Contact", "Sopflow_Id__c", f"sopflow-{r.json()['id']}")
    assert created["Engagement__c"] == "warm"
    assert customer_by_record(api, created["Id"])["id"] == r.json()["id"]


def test_a_conflict_is_won_by_the_owner_and_recorded(api: Any, org: DemoOrg, sopflow_app: Any) -> None:
    _, [rec] = imported(api, org, sopflow_app, Tier__c="Bronze", Premium__c=100.0)
    org.fake.org.edit("Contact", rec["Id"], {"Tier__c": "Gold", "Premium__c": 200.0})
    patch(api, rec["Id"], tier="Silver", premium=300)  # both sides changed both fields
    now = org.fake.org.record("Contact", rec["Id"])
    assert now["Tier__c"] == "Gold"  # Salesforce owns tier
    assert now["Premium__c"] == 300  # sopflow owns premium
    customer = customer_by_record(api, rec["Id"])
    assert customer["fields"]["tier"] == "Gold" and customer["fields"]["premium"] == 300
    conflicts = {e["payload"]["field"]: e["payload"] for e in events(api, "crm.conflict")}
    assert conflicts["tier"]["winner"] == "salesforce" and conflicts["tier"]["salesforce_value"] == "Gold"
    assert conflicts["premium"]["winner"] == "sopflow" and conflicts["premium"]["sopflow_value"] == 300
    [write] = org.fake.writes("Contact")
    assert "Tier__c" not in write.body["records"][0]


def test_a_partial_batch_failure_is_reported_per_customer(api: Any, org: DemoOrg, sopflow_app: Any) -> None:
    account_id, recs = imported(api, org, sopflow_app, n=3)
    org.fake.fail_next(100, retry_after=0)  # hold the writes back while the changes queue up
    for rec in recs:
        patch(api, rec["Id"], engagement="cold")
    org.fake._faults.clear()
    org.fake.fail_record(recs[1]["Id"], message="Engagement is locked")
    outbox.push_all(host(sopflow_app), account_id)
    held = [org.fake.org.record("Contact", r["Id"])["Engagement__c"] for r in recs]
    assert held == ["cold", None, "cold"]
    [failure] = events(api, "crm.write_failed")
    assert failure["customer_id"] == customer_by_record(api, recs[1]["Id"])["id"]
    assert "Engagement is locked" in failure["payload"]["error"]
    assert sorted(outbox_states(sopflow_app)) == ["done", "done", "failed"]
    assert len([w for w in org.fake.writes("Contact") if len(w.body["records"]) == 3]) == 1


def test_a_503_storm_and_an_exceeded_limit_keep_the_write_pending(
    api: Any, org: DemoOrg, sopflow_app: Any, waits: list[float]
) -> None:
    account_id, [rec] = imported(api, org, sopflow_app)
    org.fake.fail_next(50, retry_after=3)
    patch(api, rec["Id"], engagement="warm")
    assert outbox_states(sopflow_app) == ["pending"] and 3.0 in waits
    org.fake._faults.clear()
    org.fake.exceed_limit(50)
    outbox.push_all(host(sopflow_app), account_id)
    assert outbox_states(sopflow_app) == ["pending"]
    org.fake._faults.clear()
    outbox.push_all(host(sopflow_app), account_id)
    assert outbox_states(sopflow_app) == ["done"]
    assert org.fake.org.record("Contact", rec["Id"])["Engagement__c"] == "warm"
    applied = org.fake.writes("Contact")
    assert len(applied) == 1  # each refused push stopped at its read of changes, before any write


def test_a_stage_move_is_written_to_the_lead_status(api: Any, org: DemoOrg, sopflow_app: Any) -> None:
    lead_mapping = {
        "object": "Lead",
        "fields": [{"salesforce": "Company", "sopflow": "company", "direction": "from_crm"}],
        "stage_field": "Status",
        "stages": {"qualified": "Qualified"},
    }
    account_id = connect(api, org, mapping=lead_mapping)
    lead = org.fake.org.create("Lead", {"LastName": "Ma", "Company": "Acme", "Status": "Open"})
    sync.sync_account(host(sopflow_app), host(sopflow_app).channel_account(account_id))
    p = api.post(
        "/api/v1/pipelines", json={"name": "sales", "stages": [{"name": "new"}, {"name": "qualified"}]}
    )
    assert p.status_code == 201, p.text
    stage_id = next(s["id"] for s in p.json()["stages"] if s["name"] == "qualified")
    customer = customer_by_record(api, lead["Id"])
    moved = api.post(
        f"/api/v1/customers/{customer['id']}/stage", json={"stage_id": stage_id, "cause": "manual"}
    )
    assert moved.status_code == 200 and moved.json()["moved"], moved.text
    assert org.fake.org.record("Lead", lead["Id"])["Status"] == "Qualified"
    [write] = org.fake.writes("Lead")
    assert write.body["records"][0] == {
        "attributes": {"type": "Lead"},
        "Id": lead["Id"],
        "Status": "Qualified",
    }


def test_a_refused_call_fails_its_rows_instead_of_retrying_forever(
    api: Any, org: DemoOrg, sopflow_app: Any
) -> None:
    connect(api, org)
    # An admin unticked "External ID" on Sopflow_Id__c after the mapping was saved:
    # Salesforce refuses the whole upsert call, and sending it again cannot succeed.
    org.fake.org.objects["Contact"].field_named("Sopflow_Id__c")["externalId"] = False
    r = api.post("/api/v1/customers", json={"display_name": "New", "fields": {"engagement": "warm"}})
    assert r.status_code == 201, r.text
    assert outbox_states(sopflow_app) == ["failed"]
    with sopflow_app.engine.connect() as conn:
        [error] = conn.execute(sa.select(outbox_table.c.error)).scalars().all()
    assert "INVALID_FIELD" in error
    outbox.push_all(host(sopflow_app))
    assert len(org.fake.writes("Contact")) == 1  # not retried
