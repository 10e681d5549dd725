"""Salesforce connector: the initial import through a Bulk 2.0 query job against
the same records through the plain ingest path, and an incremental sync of
changes.  Ratios in one run, printed; nothing here is asserted in a test.

    uv run python -m bench.salesforce_import --records 10000 --changes 1000

Both import paths end in the same ``host.ingest`` of one event per record; the
ratio is what the connector adds on top (HTTPS to the fake org, CSV paging,
links, checkpoints).  The fake org runs in this process, so its own work counts
against the connector.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import timedelta
from typing import Any

from bench.load import START, Database, api_client


def _seed(org: Any, n: int) -> list[str]:
    return [
        org.fake.org.create(
            "Contact", {"LastName": f"L{i:06d}", "Tier__c": ("Bronze", "Silver", "Gold")[i % 3]}
        )["Id"]
        for i in range(n)
    ]


def _plain_ingest(app: Any, tenant_id: int, ids: list[str]) -> float:
    from sopflow.host import PluginHost
    from sopflow_sdk import Identity, IngestEvent

    host = PluginHost(app, "salesforce")
    started = time.perf_counter()
    for start in range(0, len(ids), 500):
        events = [
            IngestEvent(
                type="customer.imported",
                identity=Identity("plain", rid),
                idempotency_key=f"plain:{rid}",
                fields={"last_name": f"L{i:06d}", "tier": ("Bronze", "Silver", "Gold")[i % 3]},
            )
            for i, rid in enumerate(ids[start : start + 500], start)
        ]
        host.ingest(tenant_id, events)
    return time.perf_counter() - started


def _linked(app: Any, account_id: int) -> int:
    """Records the import linked to a customer (its own table, read back)."""
    import sqlalchemy as sa
    from sopflow_salesforce.store import links

    with app.engine.connect() as conn:
        return conn.scalar(
            sa.select(sa.func.count()).select_from(links).where(links.c.account_id == account_id)
        )


def run(records: int, changes: int, backend: str) -> dict[str, float]:
    from sopflow.clock import ManualClock
    from sopflow_salesforce import importer, plugin, sync
    from sopflow_salesforce.fake import start_demo_org
    from sopflow_sdk.testing.harness import make_test_app

    db = Database(backend)
    db.create("salesforce")
    clock = ManualClock(START)
    org = start_demo_org(now=clock.now)
    os.environ["REQUESTS_CA_BUNDLE"] = org.fake.ca_bundle  # trust the fake org's throwaway CA
    app = make_test_app(db.url, clock=clock, extra_plugins=[("salesforce", plugin)])
    try:
        with api_client(app) as api:
            account = api.post("/api/v1/channel-accounts", json=org.account_settings()).json()["id"]
            mapping = {
                "object": "Contact",
                "fields": [
                    {"salesforce": "LastName", "sopflow": "last_name", "direction": "from_crm"},
                    {"salesforce": "Tier__c", "sopflow": "tier", "direction": "from_crm"},
                ],
            }
            assert api.put(f"/plugins/salesforce/accounts/{account}/mapping", json=mapping).status_code == 200
            ids = _seed(org, records)
            clock.advance(timedelta(minutes=1))  # the import's snapshot is taken after the seeding
            plain = _plain_ingest(app, api.tenant_id, ids)
            from sopflow.host import PluginHost

            host = PluginHost(app, "salesforce")
            started = time.perf_counter()
            importer.run_import(host, account)
            bulk = time.perf_counter() - started
            imported = _linked(app, account)
            clock.advance(timedelta(minutes=1))
            for rid in ids[:changes]:
                org.fake.org.edit("Contact", rid, {"LastName": f"N{rid}"})  # a real change each
            started = time.perf_counter()
            counts = sync.sync_account(host, host.channel_account(account))
            incremental = time.perf_counter() - started
    finally:
        org.stop()
        app.dispose()
    return {
        "records": records,
        "imported": imported,
        "plain_ingest_s": round(plain, 2),
        "bulk_import_s": round(bulk, 2),
        "import_vs_plain": round(bulk / plain, 2),
        "changes_read": counts["records"],
        "changes_ingested": counts["changed"],
        "incremental_sync_s": round(incremental, 2),
        "sync_per_change_vs_import_per_record": round((incremental / max(changes, 1)) / (bulk / records), 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("--changes", type=int, default=1_000)
    ap.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    args = ap.parse_args()
    for key, value in run(args.records, args.changes, args.backend).items():
        print(f"{key:40} {value}")


if __name__ == "__main__":
    main()
