"""The route, the SOP action and the job of the hello plugin.

``POST /plugins/hello/greet`` takes ``{"id", "from", "text"}`` from a client
holding an API key with the ``ingest`` scope and records a ``hello.greeted``
event for the customer whose ``console`` identity is ``from``.
"""

from __future__ import annotations

import json
from typing import Any

from sopflow_sdk import Identity, InboundResponse, IngestEvent

#: What the ``hello.note`` action and the ``hello.poll`` job did (for tests).
NOTES: list[dict[str, Any]] = []
POLLS: list[dict[str, Any]] = []


def greet(request, host):
    """Turn a greeting into a ``hello.greeted`` event."""
    tenant_id = host.authenticate(request.headers, "ingest")
    if tenant_id is None:
        return InboundResponse(401, "send Authorization: Bearer <API key with the ingest scope>")
    try:
        body = json.loads(request.body)
        event = IngestEvent(
            type="hello.greeted",
            identity=Identity("console", str(body["from"])),
            idempotency_key=f"hello:{body['id']}",
            payload={"text": str(body["text"])},
            fields={"hello.last_greeting": str(body["text"])},
        )
    except (ValueError, KeyError, TypeError):
        return InboundResponse(400, 'send a JSON object {"id": ..., "from": ..., "text": ...}')
    [outcome] = host.ingest(tenant_id, [event])
    reply = {"status": outcome["status"], "event_id": outcome["event_id"]}  # created / duplicate
    return InboundResponse(200, json.dumps(reply), media_type="application/json")


def note(context, params):
    """SOP action ``hello.note``: record a note about the customer."""
    NOTES.append(
        {
            "customer_id": context["customer_id"],
            "name": context["customer"]["display_name"],
            "text": params.get("text", ""),
            "key": context["idempotency_key"],
        }
    )


def poll(host):
    """Periodic job ``hello.poll``: what a CRM poll looks like.  Once per
    interval, for every connected ``console`` account of a tenant that has the
    plugin on; a real plugin would fetch changes and ``host.ingest`` them."""
    for account in host.channel_accounts("console"):
        POLLS.append({"at": host.now(), "tenant_id": account.tenant_id, "account": account.name})
