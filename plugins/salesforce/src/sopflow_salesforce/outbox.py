"""Writes to Salesforce, through the ``salesforce_outbox`` table.

``record_changes`` (called from ``on_event`` and ``on_stage_changed``) compares
a customer's outbound fields with the values last agreed (``synced``) and
pending writes, and adds a row for what differs, in one transaction.  The push
job (``salesforce.push``) then, per account:

1. reconciles rows a crash left ``sending``: it reads the records and settles a
   row whose values Salesforce already holds (the call went through, its answer
   was lost) without writing again; the others go back to ``pending``;
2. claims up to 200 ``pending`` rows (``sending``) in a transaction, merged per
   customer, and upserts them through sObject Collections (by ``Id`` for linked
   records, by the mapping's external-id field for customers Salesforce does
   not know yet);
3. settles each row from its own SaveResult: ``done`` (``synced`` updated, so
   the next inbound sync sees no change: no echo) or ``failed`` with the error,
   reported to the customer as a ``crm.write_failed`` event while the rest of
   the batch applies.  A refusal of the whole call that may pass later (503,
   limits) puts the rows back to ``pending``: such a write is never dropped; one
   that cannot (400: a field no longer external or updateable) fails its rows
   with Salesforce's reason instead of retrying them forever.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sopflow_sdk import Host, IngestEvent, JobSpec, RetriableError, SopflowError

from sopflow_salesforce.client import SalesforceClient
from sopflow_salesforce.keys import mapping_key
from sopflow_salesforce.mapping import ObjectMapping
from sopflow_salesforce.reconcile import reconcile
from sopflow_salesforce.records import pending_writes, record_identity
from sopflow_salesforce.store import links, outbox
from sopflow_salesforce.sync import sync_account
from sopflow_salesforce.values import to_salesforce, to_sopflow

log = logging.getLogger("sopflow_salesforce")
JOB = "salesforce.push"
BATCH = 200


def external_key(customer_id: int) -> str:
    """The external-id value sopflow writes for a customer Salesforce does not know yet."""
    return f"sopflow-{customer_id}"


def record_changes(
    host: Host, account: Any, customer: Any, extra: Mapping[str, Any] | None = None
) -> int | None:
    """Add an outbox row for the customer's outbound fields that differ from Salesforce;
    the row's id, or ``None`` when nothing differs."""
    raw = host.state(account.tenant_id).get(mapping_key(account.id))
    if not raw:
        return None
    m = ObjectMapping.from_json(raw)
    with host.transaction(account.tenant_id) as tx:
        conn = tx.connection
        link = conn.execute(
            sa.select(links).where(links.c.account_id == account.id, links.c.customer_id == customer.id)
        ).first()
        if link is None and not m.external_id_field:
            return None  # no record to write to, and no way to create one
        agreed = dict(link.synced) if link is not None else {}
        for row in pending_writes(conn, account.id, [customer.id]).get(customer.id, []):
            agreed.update(row.fields)
        wanted: dict[str, Any] = {}
        for fm in m.fields:
            if fm.outbound and fm.sopflow in customer.fields:
                value = customer.fields[fm.sopflow]
                if agreed.get(fm.salesforce, object()) != value:
                    wanted[fm.salesforce] = value
        for sf_field, value in (extra or {}).items():
            if agreed.get(sf_field, object()) != value:
                wanted[sf_field] = value
        if not wanted:
            return None
        result = conn.execute(
            outbox.insert().values(
                tenant_id=account.tenant_id,
                account_id=account.id,
                customer_id=customer.id,
                fields=wanted,
                state="pending",
                attempts=0,
                created_at=host.now(),
            )
        )
        return int(result.inserted_primary_key[0])


def _kinds(m: ObjectMapping) -> dict[str, str]:
    kinds = {fm.salesforce: fm.type for fm in m.fields}
    if m.stage_field:
        kinds.setdefault(m.stage_field, "choice")
    return kinds


def _claim(host: Host, account: Any) -> tuple[list[Any], dict[int, Any]]:
    """Up to ``BATCH`` customers' pending rows, now ``sending``, and their links."""
    with host.transaction(account.tenant_id) as tx:
        conn = tx.connection
        rows = list(
            conn.execute(
                sa.select(outbox)
                .where(outbox.c.account_id == account.id, outbox.c.state == "pending")
                .order_by(outbox.c.id)
                .limit(BATCH * 5)
            )
        )
        customers = list(dict.fromkeys(r.customer_id for r in rows))[:BATCH]
        rows = [r for r in rows if r.customer_id in customers]
        if rows:
            conn.execute(
                sa.update(outbox).where(outbox.c.id.in_([r.id for r in rows])).values(state="sending")
            )
        found = conn.execute(
            sa.select(links).where(links.c.account_id == account.id, links.c.customer_id.in_(customers))
        )
        return rows, {row.customer_id: row for row in found}


def _requests(m: ObjectMapping, rows: list[Any], linked: dict[int, Any]) -> dict[str, list[tuple[int, dict]]]:
    """Per key field (``Id`` or the external id), one merged record per customer."""
    kinds = _kinds(m)
    merged: dict[int, dict[str, Any]] = {}
    for row in rows:
        merged.setdefault(row.customer_id, {}).update(row.fields)
    out: dict[str, list[tuple[int, dict]]] = {}
    for customer_id, fields in merged.items():
        values = {k: to_salesforce(v, kinds.get(k, "text")) for k, v in fields.items()}
        if customer_id in linked:
            out.setdefault("Id", []).append((customer_id, {"Id": linked[customer_id].record_id, **values}))
        elif m.external_id_field:
            key = {m.external_id_field: external_key(customer_id)}
            out.setdefault(m.external_id_field, []).append((customer_id, {**key, **values}))
    return out


def push_account(host: Host, account: Any, client: SalesforceClient | None = None) -> dict[str, int]:
    """Reconcile, claim, write and settle one account's outbox; counts."""
    raw = host.state(account.tenant_id).get(mapping_key(account.id))
    if not raw:
        return {"written": 0, "failed": 0}
    m = ObjectMapping.from_json(raw)
    client = client or SalesforceClient(account)
    if not _has_work(host, account):
        return {"written": 0, "failed": 0}
    # Read Salesforce's changes first: a field both sides changed is a conflict for
    # its owner to win, not a value to overwrite unseen.
    sync_account(host, account, client)
    reconcile(host, account, m, client)
    counts = {"written": 0, "failed": 0}
    while True:
        rows, linked = _claim(host, account)
        if not rows:
            return counts
        for key_field, batch in _requests(m, rows, linked).items():
            try:
                results = client.upsert(m.object, key_field, [rec for _, rec in batch])
            except RetriableError:
                _release(host, account, rows)  # 503, limits: the rows wait for the next push
                raise
            except SopflowError as exc:
                # Salesforce refused the call itself (a field removed since the mapping was
                # saved, a permission taken away): sending it again cannot succeed.
                results = [
                    {"success": False, "errors": [{"statusCode": "REFUSED", "message": exc.user_message}]}
                ] * len(batch)
            written, failed = settle(host, account, m, rows, batch, results)
            counts["written"] += written
            counts["failed"] += failed


def _has_work(host: Host, account: Any) -> bool:
    with host.transaction(account.tenant_id) as tx:
        return (
            tx.connection.execute(
                sa.select(outbox.c.id)
                .where(outbox.c.account_id == account.id, outbox.c.state.in_(("pending", "sending")))
                .limit(1)
            ).first()
            is not None
        )


def _release(host: Host, account: Any, rows: list[Any]) -> None:
    with host.transaction(account.tenant_id) as tx:
        tx.connection.execute(
            sa.update(outbox)
            .where(outbox.c.id.in_([r.id for r in rows]), outbox.c.state == "sending")
            .values(state="pending", attempts=outbox.c.attempts + 1)
        )


def settle(
    host: Host,
    account: Any,
    m: ObjectMapping,
    rows: list[Any],
    batch: list[tuple[int, dict]],
    results: list[dict],
) -> tuple[int, int]:
    """Mark each customer's rows from its SaveResult; ``(written, failed)``."""
    kinds = _kinds(m)
    written = failed = 0
    with host.transaction(account.tenant_id) as tx:
        conn = tx.connection
        for (customer_id, record), result in zip(batch, results, strict=True):
            mine = [r.id for r in rows if r.customer_id == customer_id]
            if result.get("success"):
                _agree(tx, account, customer_id, result["id"], record, kinds)
                conn.execute(
                    sa.update(outbox).where(outbox.c.id.in_(mine)).values(state="done", settled_at=host.now())
                )
                written += 1
                continue
            errors = result.get("errors") or [{}]
            message = f"{errors[0].get('statusCode', 'ERROR')}: {errors[0].get('message', '')}"
            conn.execute(
                sa.update(outbox)
                .where(outbox.c.id.in_(mine))
                .values(state="failed", error=message, settled_at=host.now())
            )
            if record.get("Id"):  # reported to the customer; a not-yet-created record has no identity
                tx.ingest([_write_failed(account.id, m, record, mine[-1], message)])
            else:
                log.warning("salesforce could not create a record for customer %s: %s", customer_id, message)
            failed += 1
    return written, failed


def _write_failed(
    account_id: int, m: ObjectMapping, record: Mapping[str, Any], row_id: int, message: str
) -> IngestEvent:
    return IngestEvent(
        type="crm.write_failed",
        identity=record_identity(record["Id"]),
        idempotency_key=f"salesforce:{account_id}:write:{row_id}",
        payload={"object": m.object, "fields": sorted(k for k in record if k != "Id"), "error": message},
        source="salesforce",
    )


def _agree(
    tx: Any,
    account: Any,
    customer_id: int,
    record_id: str,
    record: Mapping[str, Any],
    kinds: Mapping[str, str],
) -> None:
    """Salesforce now holds ``record``'s values: they are what both sides agree on."""
    conn = tx.connection
    values = {k: to_sopflow(v, kinds.get(k, "text")) for k, v in record.items() if k in kinds}
    link = conn.execute(
        sa.select(links).where(links.c.account_id == account.id, links.c.record_id == record_id)
    ).first()
    if link is None:
        tx.link_identity(customer_id, record_identity(record_id))
        conn.execute(
            links.insert().values(
                tenant_id=account.tenant_id,
                account_id=account.id,
                record_id=record_id,
                customer_id=customer_id,
                modstamp="",
                synced=values,
            )
        )
    else:
        conn.execute(sa.update(links).where(links.c.id == link.id).values(synced={**link.synced, **values}))


def push_all(host: Host, account_id: int | None = None) -> None:
    """Job ``salesforce.push``: drain the outbox (one account, or every one)."""
    from sopflow_salesforce.connection import CHANNEL

    accounts = host.channel_accounts(CHANNEL)
    for account in accounts:
        if account_id is not None and account.id != account_id:
            continue
        try:
            push_account(host, account)
        except RetriableError as exc:
            log.warning("salesforce push of account %s deferred: %s", account.id, exc.user_message)
        except SopflowError as exc:
            log.warning("salesforce push of account %s failed: %s", account.id, exc.user_message)


def job_spec() -> JobSpec:
    return JobSpec(
        name=JOB, fn=push_all, every_seconds=60, description="write sopflow's changes to Salesforce"
    )
