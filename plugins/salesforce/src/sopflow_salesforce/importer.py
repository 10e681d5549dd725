"""The initial import of a large org through a Bulk API 2.0 query job.

REST queries cost one API call per 2,000 records; a Bulk 2.0 query job costs a
handful however large the object, which is what an org of a million contacts
needs.  The job's results are read page by page (``maxRecords`` a page), and
after each page is stored the checkpoint (job id and ``Sforce-Locator``) is
stored with it, in the same transaction, so a crash resumes at the first page
not yet stored (a re-read page changes nothing: records already linked at that
``SystemModstamp`` are skipped, idempotency keys refuse duplicates).  Bulk
query jobs stay readable for 7 days.

The customers are ingested as ``customer.imported`` (no welcome message, no
new-customer SOP); when the import completes the incremental sync's watermark
is set to the job's start, so changes made during the import are read next.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from sopflow_sdk import ConfigError, Host

from sopflow_salesforce.client import SalesforceClient
from sopflow_salesforce.keys import import_key, mapping_key, watermark_key
from sopflow_salesforce.mapping import ObjectMapping
from sopflow_salesforce.records import apply_page
from sopflow_salesforce.values import normalise_modstamp

#: Records per results page (Salesforce's default is 50,000; smaller pages checkpoint more often).
PAGE_SIZE = 10_000
#: Records per transaction while a page is stored.
CHUNK = 500

Progress = Callable[[dict[str, Any]], None]


def _records(csv_text: str) -> list[dict[str, Any]]:
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    for row in rows:
        for k, v in row.items():
            if v == "":
                row[k] = None  # Bulk CSV writes null as an empty value
        row["SystemModstamp"] = normalise_modstamp(row["SystemModstamp"])
    return rows


def _start(host: Host, account: Any, m: ObjectMapping, client: SalesforceClient) -> dict[str, Any]:
    started = host.now().isoformat()
    job_id = client.bulk_query_start(m.object, f"SELECT {', '.join(m.select_fields)} FROM {m.object}")
    checkpoint = {"job_id": job_id, "locator": "", "records": 0, "done": False, "started_at": started}
    host.state(account.tenant_id).set(import_key(account.id), checkpoint)
    return checkpoint


def run_import(
    host: Host,
    account_id: int,
    *,
    progress: Progress | None = None,
    client: SalesforceClient | None = None,
    page_size: int = PAGE_SIZE,
    restart: bool = False,
) -> dict[str, Any]:
    """Import (or resume importing) every record of the mapped object; the final checkpoint."""
    account = host.channel_account(account_id)
    if account is None:
        raise ConfigError([("account_id", f"no Salesforce connection {account_id}")], subject="import")
    raw = host.state(account.tenant_id).get(mapping_key(account.id))
    if not raw:
        raise ConfigError(
            [("mapping", "store a mapping first: PUT /plugins/salesforce/accounts/{id}/mapping")],
            subject="import",
        )
    m = ObjectMapping.from_json(raw)
    client = client or SalesforceClient(account)
    checkpoint = host.state(account.tenant_id).get(import_key(account.id))
    if checkpoint is None or restart or checkpoint.get("done"):
        checkpoint = _start(host, account, m, client)
    info = client.bulk_query_wait(m.object, checkpoint["job_id"])
    total = int(info.get("numberRecordsProcessed") or 0)
    report = progress or (lambda p: None)
    report({**checkpoint, "total": total})
    while not checkpoint["done"]:
        page = client.bulk_query_page(m.object, checkpoint["job_id"], checkpoint["locator"], page_size)
        records = _records(page["records"])
        for start in range(0, len(records), CHUNK):
            last = start + CHUNK >= len(records)
            with host.transaction(account.tenant_id) as tx:
                apply_page(tx, account.id, m, records[start : start + CHUNK], imported=True)
                if last:  # the checkpoint moves with the page's last records
                    checkpoint = {
                        **checkpoint,
                        "locator": page["locator"],
                        "records": checkpoint["records"] + len(records),
                        "done": not page["locator"],
                    }
                    tx.state.set(import_key(account.id), checkpoint)
                    if checkpoint["done"]:
                        _hand_over(tx, account.id, checkpoint["started_at"])
        if not records:
            checkpoint = {**checkpoint, "locator": page["locator"], "done": not page["locator"]}
            host.state(account.tenant_id).set(import_key(account.id), checkpoint)
        report({**checkpoint, "total": total})
    return checkpoint


def _hand_over(tx: Any, account_id: int, started_at: str) -> None:
    """The incremental sync starts where the import's snapshot was taken."""
    from datetime import datetime

    current = tx.state.get(watermark_key(account_id)) or {}
    at = datetime.fromisoformat(started_at).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    if current.get("modstamp", "") < at:
        tx.state.set(watermark_key(account_id), {**current, "modstamp": at})
