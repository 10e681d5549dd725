"""Acceptance: a CRM edit reaches sopflow within one sync interval and starts or
ends SOPs as their rules say (the manual clock, the SDK's run_due)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from salesforce_support import MAPPING, connect, customer_by_record
from sopflow_salesforce.fake import DemoOrg
from sopflow_sdk.testing import run_due

INTERVAL = 300
RENEWAL = {
    "kind": "nurture",
    "target": {"rule": {"field": "policy_expiry", "op": "within_next", "value": "30d"}},
    "early_end": {"field": "do_not_call", "op": "eq", "value": True},
    "steps": [
        {"delay": "2d", "actions": [{"type": "send", "channel": "log", "text": "your policy expires soon"}]}
    ],
}


def run_jobs(app: Any) -> None:
    from sopflow.worker.scheduler import Scheduler

    Scheduler(app).run_periodic_jobs()


def enrollment(api: Any, sop_id: int, customer_id: int) -> str | None:
    items = api.get(f"/api/v1/sops/{sop_id}/enrollments").json()["items"]
    return next((e["status"] for e in items if e["customer_id"] == customer_id), None)


def in_segment(api: Any, rule: dict, customer_id: int) -> bool:
    r = api.post("/api/v1/segments/preview", json={"rule": rule, "limit": 200})
    assert r.status_code == 200, r.text
    return customer_id in [c["id"] for c in r.json()["sample"]]


def test_a_crm_edit_enrols_then_ends_the_renewal_sop(
    api: Any, org: DemoOrg, sopflow_app: Any, manual_clock: Any
) -> None:
    mapping = {
        **MAPPING,
        "fields": [*MAPPING["fields"], {"salesforce": "Do_Not_Call__c", "sopflow": "do_not_call"}],
    }
    connect(api, org, mapping=mapping, sync_interval_seconds=INTERVAL)
    r = api.post("/api/v1/sops", json={"name": "renewal", "definition": RENEWAL})
    assert r.status_code == 201, r.text
    sop_id = r.json()["id"]
    assert api.post(f"/api/v1/sops/{sop_id}/start").status_code == 200
    far = (manual_clock.now() + timedelta(days=200)).date().isoformat()
    rec = org.fake.org.create(
        "Contact", {"LastName": "Lee", "Policy_Expiry__c": far, "Do_Not_Call__c": False}
    )
    run_jobs(sopflow_app)
    customer_id = customer_by_record(api, rec["Id"])["id"]
    assert enrollment(api, sop_id, customer_id) is None
    assert not in_segment(api, RENEWAL["target"]["rule"], customer_id)

    soon = (manual_clock.now() + timedelta(days=20)).date().isoformat()
    org.fake.org.edit("Contact", rec["Id"], {"Policy_Expiry__c": soon})  # an edit in Salesforce
    run_due(api, by=timedelta(seconds=INTERVAL))
    run_jobs(sopflow_app)
    assert in_segment(api, RENEWAL["target"]["rule"], customer_id)
    assert enrollment(api, sop_id, customer_id) == "active"

    org.fake.org.edit("Contact", rec["Id"], {"Do_Not_Call__c": True})
    run_due(api, by=timedelta(seconds=INTERVAL))
    run_jobs(sopflow_app)
    assert enrollment(api, sop_id, customer_id) == "ended_early"
    run_due(api, by=timedelta(days=3))
    sent = api.get("/api/v1/events", params={"type": "touch.sent", "customer_id": customer_id}).json()[
        "items"
    ]
    assert sent == []  # ended before its first touch was due
