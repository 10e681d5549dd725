"""Outbox rows a crash left ``sending``: was the write made or not?

The worker died after claiming the rows, maybe before the call, maybe after
Salesforce applied it but before the answer was stored.  Writing again would
be harmless to the data (an upsert of the same values) but is a second write,
which the connector promises not to make.  So the records are read back (one
SOQL query per 200) and a row whose every value Salesforce holds is settled
``done`` as if its answer had arrived; the rest go back to ``pending``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sopflow_sdk import Host

from sopflow_salesforce.mapping import ObjectMapping
from sopflow_salesforce.store import links, outbox
from sopflow_salesforce.values import to_salesforce


def _quoted(values: list[str]) -> str:
    return ", ".join("'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" for v in values)


def reconcile(host: Host, account: Any, m: ObjectMapping, client: Any) -> int:
    """Settle or release the account's ``sending`` rows; how many were settled."""
    from sopflow_salesforce.outbox import _kinds, external_key, settle

    with host.transaction(account.tenant_id) as tx:
        conn = tx.connection
        rows = list(
            conn.execute(
                sa.select(outbox).where(outbox.c.account_id == account.id, outbox.c.state == "sending")
            )
        )
        if not rows:
            return 0
        customers = list({r.customer_id for r in rows})
        linked = {
            row.customer_id: row.record_id
            for row in conn.execute(
                sa.select(links).where(links.c.account_id == account.id, links.c.customer_id.in_(customers))
            )
        }
    kinds = _kinds(m)
    wanted: dict[int, dict[str, Any]] = {}
    for row in rows:
        wanted.setdefault(row.customer_id, {}).update(
            {k: to_salesforce(v, kinds.get(k, "text")) for k, v in row.fields.items()}
        )
    fields = sorted(
        {k for w in wanted.values() for k in w}
        | {"Id"}
        | ({m.external_id_field} if m.external_id_field else set())
    )
    held: dict[int, dict[str, Any]] = {}
    by_record = {rid: cid for cid, rid in linked.items()}
    by_key = {external_key(c): c for c in customers if c not in linked}
    for key_field, index in (("Id", by_record), (m.external_id_field, by_key)):
        keys = sorted(index)
        for start in range(0, len(keys), 200):
            if not key_field or not keys:
                break
            chunk = _quoted(keys[start : start + 200])
            soql = f"SELECT {', '.join(fields)} FROM {m.object} WHERE {key_field} IN ({chunk})"
            for page in client.query_pages(soql):
                for rec in page:
                    held[index[rec[key_field]]] = rec
    landed = [c for c, w in wanted.items() if c in held and all(held[c].get(k) == v for k, v in w.items())]
    batch = [(c, {"Id": held[c]["Id"], **wanted[c]}) for c in landed]
    settle(
        host,
        account,
        m,
        [r for r in rows if r.customer_id in landed],
        batch,
        [{"success": True, "id": held[c]["Id"]} for c in landed],
    )
    with host.transaction(account.tenant_id) as tx:
        tx.connection.execute(
            sa.update(outbox)
            .where(outbox.c.account_id == account.id, outbox.c.state == "sending")
            .values(state="pending", attempts=outbox.c.attempts + 1)
        )
    return len(landed)
