"""The CRM scene (seed 002, "socialize your CRM"): the business's Salesforce org
holds its insured customers with a CRM-owned policy expiry date; it picks the
audience of the renewal SOP, and a field sopflow owns is written back.

The org is the plugin's fake (``sopflow_salesforce.fake.start_demo_org``, HTTPS
on 127.0.0.1, stamped with the demo's manual clock).  A share of the planned
customers are insured: each has a Contact with their phone
(``shop.phone_of``) and a policy expiry, some inside 30 days, most far out.
On the day after the arrivals (08:00) staff record those customers' phones on
their profiles, the business connects the org (a ``salesforce`` channel
account), maps ``Policy_Expiry__c`` from_crm onto ``policy_expiry`` and
``Engagement__c`` to_crm from ``engagement``, matching Contacts to customers by
phone, and starts the renewal SOP ``policy_expiry within_next 30d``.  The
plugin's periodic ``salesforce.sync`` job (run by the engine's scheduler on the
manual clock, ``World.run_jobs``) imports the Contacts; customers inside the
window are enrolled.  Halfway through, the insurer corrects two policies'
expiry dates in the CRM (an edit in Salesforce): the next sync enrols them.  A customer asking
about the price (keyword rule) gets ``engagement = hot``, which the plugin
writes back to their Contact, once, without echoing it back in.
"""

from __future__ import annotations

import os
import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import attrs
import sqlalchemy as sa
from sopflow.models import ChannelIdentity, Customer, Enrollment, Event
from sopflow_salesforce.fake import DemoOrg, start_demo_org

from sopflow_demo.shop import CST, phone_of
from sopflow_demo.world import World

#: Share of the planned customers (those who stay) who hold a policy in the CRM.
INSURED_RATE = 0.3
#: Of those, the share whose policy expires within 30 days of the connection.
EXPIRING_RATE = 0.4
#: Expiry dates the insurer corrects in the CRM halfway through (moved inside the 30 days).
EDITS = 2
#: The sync runs once a simulated day (the setting's upper bound).
SYNC_INTERVAL = 86_400
PHONE_FIELD = {"key": "phone", "type": "text", "label": "手机"}
MAPPING = {
    "object": "Contact",
    "fields": [
        {"salesforce": "Policy_Expiry__c", "sopflow": "policy_expiry", "direction": "from_crm"},
        {"salesforce": "Engagement__c", "sopflow": "engagement", "direction": "to_crm"},
    ],
    "match": [{"salesforce": "Phone", "sopflow": "phone"}],
}
RENEWAL_SOP = "保险续保提醒 (seed 002)"
RENEWAL = {
    "kind": "nurture",
    "target": {"rule": {"field": "policy_expiry", "op": "within_next", "value": "30d"}},
    "steps": [
        {
            "delay": "0m",
            "actions": [
                {
                    "type": "send",
                    "channel": "wecom",
                    "touchpoint": "private_chat",
                    "text": "{{ customer.display_name }}，您的保险将在 30 天内到期，回复「续保」即可一键续保",
                }
            ],
        }
    ],
}
#: A price question marks the customer hot; the plugin writes it to Engagement__c.
ENGAGEMENT_RULE = {
    "name": "询价 → engagement",
    "keywords": ["多少钱", "价格", "优惠", "怎么下单"],
    "actions": [{"type": "set_field", "field": "engagement", "value": "hot"}],
}


@attrs.define
class Crm:
    """The scene's state: the fake org, what was planned, what the CRM did."""

    org: DemoOrg
    insured: dict[str, str] = attrs.Factory(dict)  # external id → planned expiry (ISO date)
    account_id: int | None = None
    renewal_sop: int | None = None
    edits: int = 0


def plan_crm(sim: Any, arrival_days: int) -> Crm:
    """Start the org, fill it with the insured customers' Contacts, and put the
    connection and the CRM's edit on the simulation's agenda."""
    world: World = sim.world
    org = start_demo_org(now=world.clock.now)
    previous = os.environ.get("REQUESTS_CA_BUNDLE")
    os.environ["REQUESTS_CA_BUNDLE"] = org.fake.ca_bundle  # requests trusts the fake's throwaway CA
    world.closers.append(lambda: _stop(org, previous))
    crm = Crm(org)
    sim.setup.crm = crm
    # 08:00 the day after the last arrivals (the simulation starts at 09:00)
    connect_at = sim.start + timedelta(days=max(1, min(arrival_days, sim.days - 1)), hours=-1)
    for ext, person in sim.people().items():
        rng = random.Random(f"{sim.seed}:{ext}:insured")
        if person.churns_on_day is not None or rng.random() >= INSURED_RATE:
            continue
        days = rng.randint(3, 28) if rng.random() < EXPIRING_RATE else rng.randint(100, 200)
        expiry = (connect_at.date() + timedelta(days=days)).isoformat()
        crm.insured[ext] = expiry
        family, given = person.name[:1], person.name[1:]
        org.fake.org.create(
            "Contact",
            {"LastName": family, "FirstName": given, "Phone": phone_of(ext), "Policy_Expiry__c": expiry},
        )
    sim._at(connect_at, lambda: connect(world, sim.setup, crm, sim.people()))
    halfway = connect_at + timedelta(
        days=max(1, (sim.start + timedelta(days=sim.days) - connect_at).days // 2), hours=2
    )
    sim._at(halfway, lambda: correct_expiry(crm, halfway.date()))
    return crm


def _stop(org: DemoOrg, previous: str | None) -> None:
    org.stop()
    if previous is None:
        os.environ.pop("REQUESTS_CA_BUNDLE", None)
    else:
        os.environ["REQUESTS_CA_BUNDLE"] = previous


def connect(world: World, setup: Any, crm: Crm, people: dict[str, Any]) -> None:
    """Phones on the insured customers' profiles, the org connected and mapped, the
    renewal SOP started; then the sync job imports the Contacts."""
    api = setup.api
    api.call("PUT", "/api/v1/plugins/salesforce", json={"enabled": True})
    api.post("/api/v1/fields", PHONE_FIELD)
    for ext in crm.insured:
        found = api.get("/api/v1/customers", params={"channel": "wecom", "external_id": ext})["items"]
        api.call("PATCH", f"/api/v1/customers/{found[0]['id']}", json={"fields": {"phone": phone_of(ext)}})
    body = crm.org.account_settings(sync_interval_seconds=SYNC_INTERVAL)
    crm.account_id = api.post("/api/v1/channel-accounts", body)["id"]
    api.call("PUT", f"/plugins/salesforce/accounts/{crm.account_id}/mapping", json=MAPPING)
    sop = api.post("/api/v1/sops", {"name": "保险续保提醒", "definition": RENEWAL})
    api.post(f"/api/v1/sops/{sop['id']}/start")
    crm.renewal_sop = setup.sops[RENEWAL_SOP] = sop["id"]
    world.run_jobs(force=True)  # the first sync: the Contacts come in, matched by phone
    setup.keyword_sets.append(api.post("/api/v1/keyword-rules", ENGAGEMENT_RULE)["id"])


def correct_expiry(crm: Crm, today: date) -> None:
    """The insurer corrects two far-out expiry dates in Salesforce: both now fall inside 30 days."""
    far = sorted(
        (
            r["Id"]
            for r in crm.org.fake.org.find("Contact", "IsDeleted", False)
            if date.fromisoformat(r["Policy_Expiry__c"]) > today + timedelta(days=60)
        ),
    )
    for record_id in far[:EDITS]:
        crm.org.fake.org.edit(
            "Contact", record_id, {"Policy_Expiry__c": (today + timedelta(days=20)).isoformat()}
        )
        crm.edits += 1


def _check(name: str, expected: Any, actual: Any) -> dict[str, Any]:
    return {"check": name, "expected": expected, "actual": actual, "ok": expected == actual}


def _local_date(at: datetime) -> date:
    if at.tzinfo is None:  # stored as UTC
        at = at.replace(tzinfo=UTC)
    return at.astimezone(CST).date()


def crm_checks(world: World, setup: Any) -> list[dict[str, Any]]:
    """The scene's figures, each against the database or the fake org's own records."""
    crm: Crm | None = getattr(setup, "crm", None)
    if crm is None or crm.account_id is None:
        return []
    t = setup.tenant_id
    contacts = crm.org.fake.org.find("Contact", "IsDeleted", False)
    with world.app.tx() as s:
        expiry = {
            cid: f["policy_expiry"]
            for cid, f in s.execute(sa.select(Customer.id, Customer.fields).where(Customer.tenant_id == t))
            if (f or {}).get("policy_expiry")
        }
        linked = dict(
            s.execute(
                sa.select(ChannelIdentity.external_id, ChannelIdentity.customer_id).where(
                    ChannelIdentity.tenant_id == t, ChannelIdentity.channel == "salesforce"
                )
            ).all()
        )
        wecom = set(
            s.scalars(
                sa.select(ChannelIdentity.customer_id).where(
                    ChannelIdentity.tenant_id == t, ChannelIdentity.channel == "wecom"
                )
            )
        )
        crm_events = s.execute(
            sa.select(Event.customer_id, Event.type, Event.received_at, Event.payload)
            .where(Event.tenant_id == t, Event.type.in_(("crm.created", "crm.updated")))
            .order_by(Event.id)
        ).all()
        enrolled = set(
            s.scalars(sa.select(Enrollment.customer_id).where(Enrollment.sop_id == crm.renewal_sop))
        )
        engaged = {
            cid
            for cid, f in s.execute(sa.select(Customer.id, Customer.fields).where(Customer.tenant_id == t))
            if (f or {}).get("engagement")
        }
    # Expected enrolments, computed independently: the expiry within 30 days of the
    # customer's local date when the CRM last told sopflow about the record.
    last_seen: dict[int, date] = {}
    for cid, _type, at, _payload in crm_events:
        last_seen[cid] = _local_date(at)
    expected = {
        cid
        for cid, value in expiry.items()
        if cid in last_seen and 0 <= (date.fromisoformat(str(value)[:10]) - last_seen[cid]).days <= 30
    }
    updates = [p or {} for _, typ, _, p in crm_events if typ == "crm.updated"]
    by_record: dict[str, int] = {}
    for request in crm.org.fake.writes("Contact"):
        for record in (request.body or {}).get("records", []):
            if "Engagement__c" in record:
                by_record[record.get("Id", "?")] = by_record.get(record.get("Id", "?"), 0) + 1
    changed = {rid for rid, cid in linked.items() if cid in engaged}
    return [
        _check("Contacts in the CRM = customers with policy_expiry", len(contacts), len(expiry)),
        _check(
            "Contacts matched by phone to WeCom customers (no new customer)",
            len(contacts),
            len([cid for cid in linked.values() if cid in wecom]),
        ),
        _check(
            "renewal SOP enrolments = customers whose expiry was within 30 days when synced",
            len(expected),
            len(enrolled) if enrolled == expected else sorted(enrolled ^ expected),
        ),
        _check("CRM edits = crm.updated events (one sync each)", crm.edits, len(updates)),
        _check(
            "engagement written back to Salesforce, once per changed customer (request log)",
            len(changed),
            len(by_record) if set(by_record) == changed and set(by_record.values()) <= {1} else by_record,
        ),
        _check(
            "no echo: written-back engagement never came back as a CRM change",
            0,
            sum(1 for p in updates if "engagement" in (p.get("changed") or ())),
        ),
    ]
