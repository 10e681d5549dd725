"""Acceptance at the issue's size: an org of 10,000 Contacts imported through one
Bulk API 2.0 job with progress, then one edit in the org reaches sopflow within
one sync interval and enrols the customer, while the 9,999 others stay as they
were; a sopflow-owned value is written back once and does not echo."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from salesforce_support import MAPPING, connect, customer_by_record, host
from sopflow_salesforce import importer
from sopflow_salesforce.fake import DemoOrg

RECORDS = 10_000
INTERVAL = 300
RENEWAL = {
    "kind": "nurture",
    "target": {"rule": {"field": "policy_expiry", "op": "within_next", "value": "30d"}},
    "steps": [{"delay": "2d", "actions": [{"type": "send", "channel": "log", "text": "renew soon"}]}],
}


def count(app: Any, model: Any) -> int:
    with app.tx() as s:
        return s.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def test_ten_thousand_records_import_with_progress_and_one_edit_enrols_one_customer(
    api: Any, org: DemoOrg, sopflow_app: Any, manual_clock: Any
) -> None:
    from sopflow.models import Customer, Enrollment
    from sopflow.worker.scheduler import Scheduler

    account_id = connect(api, org, mapping=MAPPING, sync_interval_seconds=INTERVAL)
    sop = api.post("/api/v1/sops", json={"name": "renewal", "definition": RENEWAL}).json()
    assert api.post(f"/api/v1/sops/{sop['id']}/start").status_code == 200
    far = (manual_clock.now() + timedelta(days=400)).date().isoformat()
    ids = [
        org.fake.org.create("Contact", {"LastName": f"L{i:05d}", "Policy_Expiry__c": far})["Id"]
        for i in range(RECORDS)
    ]
    manual_clock.advance(timedelta(minutes=1))  # the import's snapshot is taken after the seeding
    seen: list[dict] = []
    final = importer.run_import(host(sopflow_app), account_id, page_size=2_000, progress=seen.append)
    assert final["done"] and final["records"] == RECORDS
    done = [p["records"] for p in seen]
    # progress: the start, then each of the five pages
    assert done == sorted(done) and done[-1] == RECORDS and len(seen) == 6
    assert {p["total"] for p in seen} == {RECORDS}
    assert count(sopflow_app, Customer) == RECORDS and count(sopflow_app, Enrollment) == 0

    soon = (manual_clock.now() + timedelta(days=20)).date().isoformat()
    org.fake.org.edit("Contact", ids[4321], {"Policy_Expiry__c": soon})
    manual_clock.advance(timedelta(seconds=INTERVAL))
    Scheduler(sopflow_app).run_periodic_jobs()  # one sync interval later
    customer = customer_by_record(api, ids[4321])
    enrolled = api.get(f"/api/v1/sops/{sop['id']}/enrollments").json()["items"]
    assert [(e["customer_id"], e["status"]) for e in enrolled] == [(customer["id"], "active")]

    # a sopflow-owned field, written back once and not echoed by the next sync
    r = api.patch(f"/api/v1/customers/{customer['id']}", json={"fields": {"premium": 7}})
    assert r.status_code == 200, r.text
    for _ in range(2):
        manual_clock.advance(timedelta(seconds=INTERVAL))
        Scheduler(sopflow_app).run_periodic_jobs()
    assert len(org.fake.writes("Contact")) == 1  # once, and the syncs that read it back wrote nothing
    assert org.fake.org.record("Contact", ids[4321])["Premium__c"] == 7
    assert count(sopflow_app, Enrollment) == 1  # nothing echoed back into automation
