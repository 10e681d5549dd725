"""One page of Salesforce records into sopflow, inside one ``host.transaction``.

For each record: find its customer (its ``salesforce`` identity, else a match
rule: the same e-mail or phone on exactly one customer, who then gets the
identity), compare each inbound field with the value both sides last agreed on
(``salesforce_links.synced``), and ingest only what Salesforce changed, as one
event whose idempotency key is the record's version (``Id`` + ``SystemModstamp``),
so a re-read page changes nothing.  A value sopflow wrote comes back equal to
``synced``: no change, no event, nothing re-triggered (echo suppression).

A field both sides changed since the last sync (Salesforce's value differs from
``synced`` and sopflow has a write for it still in the outbox) is a conflict:
the mapping's owner wins and ``crm.conflict`` records it.  When Salesforce wins
the outbox write of that field is withdrawn; when sopflow wins Salesforce's
value is not taken and the pending write goes out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sopflow_sdk import Identity, IngestEvent

from sopflow_salesforce.mapping import FieldMap, ObjectMapping
from sopflow_salesforce.store import links, outbox
from sopflow_salesforce.values import to_sopflow

CHANNEL = "salesforce"


def record_identity(record_id: str) -> Identity:
    return Identity(CHANNEL, record_id)


def pending_writes(conn: Any, account_id: int, customer_ids: Sequence[int]) -> dict[int, list[Any]]:
    """The outbox rows not yet settled, per customer."""
    out: dict[int, list[Any]] = {}
    if not customer_ids:
        return out
    rows = conn.execute(
        sa.select(outbox).where(
            outbox.c.account_id == account_id,
            outbox.c.customer_id.in_(list(customer_ids)),
            outbox.c.state.in_(("pending", "sending")),
        )
    )
    for row in rows:
        out.setdefault(row.customer_id, []).append(row)
    return out


def _match_customer(tx: Any, m: ObjectMapping, record: Mapping[str, Any]) -> int | None:
    for sf_field, key in m.match:
        value = record.get(sf_field)
        if value in (None, ""):
            continue
        found = tx.find_customers(key, str(value))
        if len(found) == 1:
            tx.link_identity(found[0], record_identity(record["Id"]))
            return found[0]
    return None


def _conflict(
    account_id: int, record: Mapping[str, Any], fm: FieldMap, sf_value: Any, ours: Any
) -> IngestEvent:
    return IngestEvent(
        type="crm.conflict",
        identity=record_identity(record["Id"]),
        idempotency_key=f"salesforce:{account_id}:{record['Id']}:{record['SystemModstamp']}:conflict:{fm.sopflow}",
        payload={
            "field": fm.sopflow,
            "salesforce_field": fm.salesforce,
            "salesforce_value": sf_value,
            "sopflow_value": ours,
            "winner": fm.owner,
        },
    )


def _withdraw(conn: Any, rows: list[Any], sf_field: str) -> None:
    """Salesforce owns the field and won: drop it from the pending writes."""
    for row in rows:
        if sf_field in row.fields and row.state == "pending":
            rest = {k: v for k, v in row.fields.items() if k != sf_field}
            values = (
                {"fields": rest}
                if rest
                else {"fields": rest, "state": "done", "error": "withdrawn: conflict"}
            )
            conn.execute(sa.update(outbox).where(outbox.c.id == row.id).values(**values))


def _changes(
    conn: Any, account_id: int, m: ObjectMapping, record: Mapping[str, Any], synced: dict, pending: list[Any]
) -> tuple[dict[str, Any], list[IngestEvent]]:
    """The sopflow fields Salesforce changed, and conflict events; updates ``synced``."""
    changes: dict[str, Any] = {}
    conflicts: list[IngestEvent] = []
    waiting = {k: v for row in pending for k, v in row.fields.items()}
    for fm in m.fields:
        if not fm.inbound or fm.salesforce not in record:
            continue
        sf_value = to_sopflow(record[fm.salesforce], fm.type)
        if fm.salesforce in synced and synced[fm.salesforce] == sf_value:
            continue  # unchanged in Salesforce, or the echo of our own write
        if fm.outbound and fm.salesforce in waiting:
            conflicts.append(_conflict(account_id, record, fm, sf_value, waiting[fm.salesforce]))
            if fm.owner == "sopflow":
                continue
            _withdraw(conn, pending, fm.salesforce)
        changes[fm.sopflow] = sf_value
        synced[fm.salesforce] = sf_value
    return changes, conflicts


def apply_page(
    tx: Any,
    account_id: int,
    m: ObjectMapping,
    records: Sequence[Mapping[str, Any]],
    *,
    imported: bool = False,
) -> int:
    """Ingest the changes in ``records`` (one ``tx.ingest`` for the page); how many changed something."""
    conn = tx.connection
    ids = [r["Id"] for r in records]
    known = {
        row.record_id: row
        for row in conn.execute(
            sa.select(links).where(links.c.account_id == account_id, links.c.record_id.in_(ids))
        )
    }
    pending = pending_writes(conn, account_id, [row.customer_id for row in known.values()])
    events: list[IngestEvent] = []
    waiting: list[tuple[Mapping[str, Any], dict, Any, int | None]] = []  # record, synced, link, event index
    for record in {r["Id"]: r for r in records}.values():  # one version per record and page
        link = known.get(record["Id"])
        if link is not None and link.modstamp >= record["SystemModstamp"]:
            continue  # this version was read before (an overlapping window, a re-read page)
        if link is None:
            _match_customer(tx, m, record)  # else a new customer: ingest creates it from the identity
        synced = dict(link.synced) if link is not None else {}
        rows = pending.get(link.customer_id, []) if link is not None else []
        changes, conflicts = _changes(conn, account_id, m, record, synced, rows)
        index = None
        if changes or link is None:
            index = len(events)
            events.append(_change_event(account_id, m, record, changes, link is None, imported))
        events += conflicts
        waiting.append((record, synced, link, index))
    outcomes = tx.ingest(events) if events else []
    for record, synced, link, index in waiting:
        customer_id = link.customer_id if link is not None else outcomes[index].get("customer_id")
        if customer_id is not None:  # None: a version ingested before without its link
            _save_link(conn, tx.tenant_id, account_id, record, customer_id, synced, link)
    return sum(1 for *_, index in waiting if index is not None)


def _change_event(
    account_id: int, m: ObjectMapping, record: Mapping[str, Any], changes: dict, new: bool, imported: bool
) -> IngestEvent:
    kind = ("customer.imported" if imported else "crm.created") if new else "crm.updated"
    return IngestEvent(
        type=kind,
        identity=record_identity(record["Id"]),
        idempotency_key=f"salesforce:{account_id}:{record['Id']}:{record['SystemModstamp']}",
        payload={"object": m.object, "record_id": record["Id"], "changed": sorted(changes)},
        fields=changes,
        source="salesforce",
    )


def _save_link(
    conn: Any,
    tenant_id: int,
    account_id: int,
    record: Mapping[str, Any],
    customer_id: int,
    synced: dict,
    link: Any,
) -> None:
    if link is None:
        conn.execute(
            links.insert().values(
                tenant_id=tenant_id,
                account_id=account_id,
                record_id=record["Id"],
                customer_id=customer_id,
                modstamp=record["SystemModstamp"],
                synced=synced,
            )
        )
    else:
        conn.execute(
            sa.update(links)
            .where(links.c.id == link.id)
            .values(modstamp=record["SystemModstamp"], synced=synced)
        )
