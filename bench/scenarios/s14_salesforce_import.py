"""S14 Salesforce connector: the initial import of N Contacts through a Bulk API 2.0
query job against the same records through the plain ingest path, and an
incremental sync of M changes.

Ours: ``sopflow_salesforce.importer.run_import`` against the fake org over HTTPS
(one Bulk job, CSV pages, links and checkpoints, then ``host.ingest``).
Baseline: the same records as ``customer.imported`` events straight through
``host.ingest`` (500 a call), no Salesforce at all: the ratio is what the
connector adds.  Then M Contacts are edited in the fake and one
``sync.sync_account`` pass reads them (SOQL with ``nextRecordsUrl`` paging).
The work itself is in ``bench/salesforce_import.py``; this module makes it a
scenario of ``bench/run.py`` with correctness counters.
"""

from __future__ import annotations

from typing import Any

from bench.load import Context, figure

NAME = "S14"
ORDER = 65
MUST_BE_ZERO = ("import_missing", "changes_missed")


def add_arguments(ap: Any) -> None:
    g = ap.add_argument_group("S14 Salesforce import")
    g.add_argument("--s14-records", type=int, default=100_000, help="Contacts imported (quick: 60)")
    g.add_argument("--s14-changes", type=int, default=1_000, help="Contacts edited, then synced (quick: 20)")


def run(ctx: Context) -> dict[str, Any]:
    from bench.salesforce_import import run as measure

    n = 60 if ctx.quick else ctx.args.s14_records
    m = 20 if ctx.quick else min(ctx.args.s14_changes, n)
    ctx.log(f"S14: {n:,} Contacts, {m:,} changes ({ctx.backend})")
    got = measure(n, m, ctx.backend)
    rows = [
        {
            "id": "S14",
            "what": "Salesforce initial import (Bulk 2.0)",
            "size": f"{n:,} records",
            "ours": figure(got["bulk_import_s"], n, "records/s"),
            "baseline": figure(
                got["plain_ingest_s"], n, "records/s", what="the same records through host.ingest"
            ),
            "bound": "core's ingest and rule evaluation per record (both paths); HTTPS + CSV paging on top",
        },
        {
            "id": "S14",
            "what": "Salesforce incremental sync",
            "size": f"{m:,} changes",
            "ours": figure(got["incremental_sync_s"], m, "changes/s"),
            "baseline": figure(
                got["bulk_import_s"] * m / n, m, "changes/s", what="the import's time per record, scaled to M"
            ),
            "bound": "one SOQL page per 2,000 records, links compared, one event per change",
        },
    ]
    counters = {
        "import_missing": n - got["imported"],
        "changes_missed": m - got["changes_ingested"],
        "import_vs_plain": got["import_vs_plain"],
    }
    return {"scenario": "S14", "title": "Salesforce import and sync", "rows": rows, "counters": counters}
