"""Inbound: the periodic sync over real HTTPS against the fake org, in a real app."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from salesforce_support import connect, customer_by_record, host
from sopflow_salesforce import sync
from sopflow_salesforce.fake import DemoOrg


def run_jobs(app: Any) -> None:
    from sopflow.worker.scheduler import Scheduler

    Scheduler(app).run_periodic_jobs()


def events(api: Any, type_: str) -> list[dict]:
    return api.get("/api/v1/events", params={"type": type_, "limit": 200}).json()["items"]


def test_records_become_customers_and_match_by_email(api: Any, org: DemoOrg, sopflow_app: Any) -> None:
    api.post("/api/v1/fields", json={"key": "email", "type": "text"})
    existing = api.post(
        "/api/v1/customers", json={"display_name": "Ann", "fields": {"email": "ann@example.com"}}
    )
    assert existing.status_code == 201, existing.text
    connect(api, org)
    ann = org.fake.org.create(
        "Contact", {"LastName": "Lee", "Email": "ann@example.com", "Policy_Expiry__c": "2027-03-01"}
    )
    bob = org.fake.org.create(
        "Contact", {"LastName": "Bob", "Tier__c": "Gold", "Interests__c": "Home;Car", "Premium__c": 1200.0}
    )
    run_jobs(sopflow_app)
    matched = customer_by_record(api, ann["Id"])
    assert matched["id"] == existing.json()["id"]
    assert matched["fields"]["policy_expiry"] == "2027-03-01" and matched["fields"]["last_name"] == "Lee"
    new = customer_by_record(api, bob["Id"])
    assert new["fields"]["tier"] == "Gold" and new["fields"]["interests"] == ["Car", "Home"]
    assert new["fields"]["premium"] == 1200


def test_an_edit_arrives_within_one_interval_and_only_once(
    api: Any, org: DemoOrg, sopflow_app: Any, manual_clock: Any
) -> None:
    connect(api, org, sync_interval_seconds=120)
    rec = org.fake.org.create("Contact", {"LastName": "Lee", "Policy_Expiry__c": "2027-03-01"})
    run_jobs(sopflow_app)
    org.fake.org.edit("Contact", rec["Id"], {"Policy_Expiry__c": "2026-02-01"})
    manual_clock.advance(timedelta(seconds=60))
    run_jobs(sopflow_app)  # the job ticks, but the account is not due yet
    assert customer_by_record(api, rec["Id"])["fields"]["policy_expiry"] == "2027-03-01"
    manual_clock.advance(timedelta(seconds=60))
    run_jobs(sopflow_app)
    assert customer_by_record(api, rec["Id"])["fields"]["policy_expiry"] == "2026-02-01"
    updates = events(api, "crm.updated")
    assert [e["payload"]["changed"] for e in updates] == [["policy_expiry"]]
    manual_clock.advance(timedelta(seconds=120))
    run_jobs(sopflow_app)  # nothing new in Salesforce: no event
    assert len(events(api, "crm.updated")) == 1


def test_paging_and_the_watermark_read_each_version_once(api: Any, org: DemoOrg, sopflow_app: Any) -> None:
    account_id = connect(api, org)
    org.fake.cursors.batch = 4
    for i in range(10):
        org.fake.org.create("Contact", {"LastName": f"L{i}"})
    account = host(sopflow_app).channel_account(account_id)
    first = sync.sync_account(host(sopflow_app), account)
    assert first["records"] == 10 and first["changed"] == 10
    again = sync.sync_account(host(sopflow_app), account)
    assert again["changed"] == 0  # the overlapping second is re-read, nothing re-ingested
    assert len(events(api, "crm.created")) == 10


def test_a_deleted_record_unlinks_and_keeps_the_customer(
    api: Any, org: DemoOrg, sopflow_app: Any, manual_clock: Any
) -> None:
    connect(api, org, sync_interval_seconds=60)
    rec = org.fake.org.create("Contact", {"LastName": "Gone"})
    run_jobs(sopflow_app)
    customer = customer_by_record(api, rec["Id"])
    manual_clock.advance(timedelta(minutes=2))
    org.fake.org.delete("Contact", rec["Id"])
    manual_clock.advance(timedelta(minutes=2))
    run_jobs(sopflow_app)
    assert customer_by_record(api, rec["Id"]) is None
    kept = api.get(f"/api/v1/customers/{customer['id']}").json()
    assert kept["fields"]["last_name"] == "Gone"
    assert [e["customer_id"] for e in events(api, "crm.deleted")] == [customer["id"]]


def test_token_expiry_mid_sync_is_refreshed_and_nothing_is_lost(
    api: Any, org: DemoOrg, sopflow_app: Any
) -> None:
    account_id = connect(api, org)
    org.fake.cursors.batch = 3
    for i in range(7):
        org.fake.org.create("Contact", {"LastName": f"L{i}"})
    account = host(sopflow_app).channel_account(account_id)
    from sopflow_salesforce.client import SalesforceClient

    client = SalesforceClient(account)
    pages = client.query_pages  # expire the token after the first page

    def expiring(soql: str) -> Any:
        for n, page in enumerate(pages(soql)):
            if n == 0:
                org.fake.expire_tokens()
            yield page

    client.query_pages = expiring  # type: ignore[method-assign]
    counts = sync.sync_account(host(sopflow_app), account, client)
    assert counts["records"] == 7 and len(events(api, "crm.created")) == 7
    logins = [r for r in org.fake.requests if r.path == "/services/oauth2/token"]
    assert len(logins) == 2
