"""The event types the connector adds, and its reaction to sopflow's own events."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sopflow_sdk import Host, SopflowError, TriggerSpec

from sopflow_salesforce import outbox
from sopflow_salesforce.connection import CHANNEL
from sopflow_salesforce.keys import mapping_key

log = logging.getLogger("sopflow_salesforce")

EVENT_TYPES = {
    "crm.created": "a Salesforce record was seen for the first time (payload.object, payload.record_id)",
    "crm.updated": "a Salesforce record changed mapped fields (payload.changed lists the sopflow keys)",
    "crm.deleted": "the customer's Salesforce record was deleted; the customer is kept, unlinked",
    "crm.conflict": "both sides changed a field since the last sync; payload.winner is its owner",
    "crm.write_failed": "Salesforce refused a write for this customer (payload.error)",
}


def trigger_specs() -> list[TriggerSpec]:
    return [TriggerSpec(event_type=k, description=v) for k, v in EVENT_TYPES.items()]


def observe(tenant_id: int, event: Mapping[str, Any], host: Host) -> None:
    """A customer changed in sopflow (not by this plugin): queue what Salesforce must learn."""
    if event.get("source") == CHANNEL or event.get("customer_id") is None:
        return
    if event.get("type") != "stage.changed" and not changed_fields(event):
        return  # nothing Salesforce could learn: no field changed (a message, a touch sent, an order)
    accounts = [a for a in host.channel_accounts(CHANNEL) if a.tenant_id == tenant_id]
    if not accounts:
        return
    customer = host.customer(tenant_id, int(event["customer_id"]))
    if customer is None:
        return
    for account in accounts:
        extra = _stage_write(host, account, event)
        try:
            if outbox.record_changes(host, account, customer, extra) is not None:
                host.enqueue(outbox.JOB, account_id=account.id)
        except SopflowError as exc:
            log.warning(
                "salesforce: could not queue a write for customer %s: %s", customer.id, exc.user_message
            )


def changed_fields(event: Mapping[str, Any]) -> bool:
    """Whether the event changed any customer field: named by ingest
    (``fields_changed``), carried by automation (``fields``) or the customers API
    (``changed`` lists ``fields``)."""
    payload = event.get("payload") or {}
    return bool(
        payload.get("fields_changed") or payload.get("fields") or "fields" in (payload.get("changed") or ())
    )


def _stage_write(host: Host, account: Any, event: Mapping[str, Any]) -> dict[str, Any]:
    """A stage move onto the mapping's ``stage_field`` (``on_stage_changed`` carries no
    host, so the move is read from the ``stage.changed`` event it accompanies)."""
    if event.get("type") != "stage.changed":
        return {}
    raw = host.state(account.tenant_id).get(mapping_key(account.id)) or {}
    field = raw.get("stage_field")
    to_stage = (event.get("payload") or {}).get("to_stage")
    if not field or not to_stage:
        return {}
    return {field: (raw.get("stages") or {}).get(to_stage, to_stage)}
