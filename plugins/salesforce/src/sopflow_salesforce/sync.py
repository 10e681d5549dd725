"""The incremental sync: a periodic job reading each connection's changes.

Every ``sync_interval_seconds`` of the app's clock (the job itself runs every
30 s and skips accounts not yet due), per connection with a mapping:

1. SOQL ``SELECT … WHERE SystemModstamp >= :watermark ORDER BY SystemModstamp, Id``
   (``SystemModstamp`` rather than ``LastModifiedDate``: it also moves when an
   automated process changes the record), following ``nextRecordsUrl``; each
   page is ingested with the watermark past it in one transaction, so the
   watermark never runs ahead of what was stored.  SOQL compares to the second,
   so the window overlaps the last second and ``records.apply_page`` skips
   versions it has seen.
2. ``getDeleted`` from the last covered date: each deleted record's customer
   gets a ``crm.deleted`` event, loses the ``salesforce`` identity, and is kept.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sopflow_sdk import Host, IngestEvent, JobSpec, SopflowError

from sopflow_salesforce.client import SalesforceClient
from sopflow_salesforce.connection import CHANNEL
from sopflow_salesforce.keys import mapping_key, watermark_key
from sopflow_salesforce.mapping import ObjectMapping
from sopflow_salesforce.records import apply_page, record_identity
from sopflow_salesforce.store import links
from sopflow_salesforce.values import soql_datetime

log = logging.getLogger("sopflow_salesforce")
JOB = "salesforce.sync"
#: How often the job wakes up; each account syncs at its own interval.
TICK_SECONDS = 30
#: Where a first sync without an import starts reading.
EPOCH = "1970-01-01T00:00:00.000+0000"
#: getDeleted keeps 15 days; never ask further back.
DELETE_LOG_DAYS = 15


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def sync_account(host: Host, account: Any, client: SalesforceClient | None = None) -> dict[str, int]:
    """One incremental pass for one account; counts of what it did."""
    raw = host.state(account.tenant_id).get(mapping_key(account.id))
    if not raw:
        return {"records": 0, "changed": 0, "deleted": 0}
    m = ObjectMapping.from_json(raw)
    client = client or SalesforceClient(account)
    mark = host.state(account.tenant_id).get(watermark_key(account.id)) or {}
    since = mark.get("modstamp", EPOCH)
    soql = (
        f"SELECT {', '.join(m.select_fields)} FROM {m.object} "
        f"WHERE SystemModstamp >= {soql_datetime(since)} ORDER BY SystemModstamp, Id"
    )
    counts = {"records": 0, "changed": 0, "deleted": 0}
    for page in client.query_pages(soql):
        if not page:
            continue
        with host.transaction(account.tenant_id) as tx:
            counts["changed"] += apply_page(tx, account.id, m, page)
            current = tx.state.get(watermark_key(account.id)) or {}
            tx.state.set(watermark_key(account.id), {**current, "modstamp": page[-1]["SystemModstamp"]})
        counts["records"] += len(page)
    counts["deleted"] = sync_deleted(host, account, m, client)
    return counts


def sync_deleted(host: Host, account: Any, m: ObjectMapping, client: SalesforceClient) -> int:
    """Unlink the records deleted in Salesforce since the last pass."""
    now = host.now()
    mark = host.state(account.tenant_id).get(watermark_key(account.id)) or {}
    floor = now - timedelta(days=DELETE_LOG_DAYS) + timedelta(minutes=1)
    start = max(datetime.fromisoformat(mark["deleted_until"]), floor) if mark.get("deleted_until") else floor
    if now - start < timedelta(minutes=1):
        return 0  # getDeleted wants a window of at least a minute
    answer = client.deleted(m.object, start, now)
    gone = [d["id"] for d in answer.get("deletedRecords", ())]
    with host.transaction(account.tenant_id) as tx:
        n = _unlink(tx, account.id, m, gone)
        current = tx.state.get(watermark_key(account.id)) or {}
        covered = answer.get("latestDateCovered") or _iso(now)
        until = datetime.strptime(covered[:19] + covered[-5:], "%Y-%m-%dT%H:%M:%S%z")
        tx.state.set(watermark_key(account.id), {**current, "deleted_until": until.isoformat()})
    return n


def _unlink(tx: Any, account_id: int, m: ObjectMapping, record_ids: list[str]) -> int:
    if not record_ids:
        return 0
    conn = tx.connection
    rows = list(
        conn.execute(
            sa.select(links).where(links.c.account_id == account_id, links.c.record_id.in_(record_ids))
        )
    )
    for row in rows:
        tx.ingest(
            [
                IngestEvent(
                    type="crm.deleted",
                    identity=record_identity(row.record_id),
                    idempotency_key=f"salesforce:{account_id}:{row.record_id}:deleted",
                    payload={"object": m.object, "record_id": row.record_id},
                    source="salesforce",
                )
            ]
        )
        tx.unlink_identity(record_identity(row.record_id))
        conn.execute(sa.delete(links).where(links.c.id == row.id))
    return len(rows)


def due(host: Host, account: Any) -> bool:
    """Whether the account's interval has passed since its last pass (and mark it run)."""
    state = host.state(account.tenant_id)
    mark = state.get(watermark_key(account.id)) or {}
    now = host.now()
    last = mark.get("last_run")
    interval = float(account.config.get("sync_interval_seconds", 300))
    if last and (now - datetime.fromisoformat(last)).total_seconds() < interval:
        return False
    state.set(watermark_key(account.id), {**mark, "last_run": now.isoformat()})
    return True


def sync_all(host: Host) -> None:
    """Periodic job ``salesforce.sync``: every due connection, each on its own."""
    for account in host.channel_accounts(CHANNEL):
        if not due(host, account):
            continue
        try:
            counts = sync_account(host, account)
            log.info("salesforce sync of account %s: %s", account.id, counts)
        except SopflowError as exc:
            log.warning("salesforce sync of account %s failed: %s", account.id, exc.user_message)


def job_spec() -> JobSpec:
    return JobSpec(name=JOB, fn=sync_all, every_seconds=TICK_SECONDS, description="read Salesforce's changes")
