"""The plugin's HTTP routes (admin key): a connection's field mapping, a sync now.

``PUT /plugins/salesforce/accounts/{id}/mapping`` reads the object's
``describe`` from Salesforce, checks the mapping against it and the tenant's
field definitions, defines the fields it contributes and stores it; any
problem is a 422 listing each (path and fix) and nothing is saved.
"""

from __future__ import annotations

import json
from typing import Any

from sopflow_sdk import ConfigError, Host, InboundRequest, InboundResponse, SopflowError

from sopflow_salesforce import mapping as mapping_rules
from sopflow_salesforce.client import SalesforceClient
from sopflow_salesforce.connection import CHANNEL
from sopflow_salesforce.keys import mapping_key


def problem(status: int, detail: str, errors: list[tuple[str, str]] = ()) -> InboundResponse:
    body: dict[str, Any] = {"title": "Salesforce connection", "status": status, "detail": detail}
    if errors:
        body["errors"] = [{"field": f, "message": m} for f, m in errors]
    return InboundResponse(status, json.dumps(body, ensure_ascii=False), "application/problem+json")


def json_response(status: int, body: Any) -> InboundResponse:
    return InboundResponse(status, json.dumps(body, ensure_ascii=False), "application/json")


def account_for(request: InboundRequest, host: Host) -> tuple[Any, InboundResponse | None]:
    tenant_id = host.authenticate(request.headers, "admin")
    if tenant_id is None:
        return None, problem(401, "send 'Authorization: Bearer <admin api key>'")
    try:
        account = host.channel_account(int(request.path_params.get("account_id", "")))
    except ValueError:
        account = None
    if account is None or account.tenant_id != tenant_id or account.channel != CHANNEL:
        return None, problem(404, "no Salesforce connection with that id in this tenant")
    return account, None


def load_mapping(host: Host, account: Any) -> mapping_rules.ObjectMapping | None:
    raw = host.state(account.tenant_id).get(mapping_key(account.id))
    return mapping_rules.ObjectMapping.from_json(raw) if raw else None


def handle_mapping(request: InboundRequest, host: Host) -> InboundResponse:
    """GET: the stored mapping.  PUT: check, define the fields, store."""
    account, refused = account_for(request, host)
    if refused is not None:
        return refused
    if request.method == "GET":
        current = load_mapping(host, account)
        if current is None:
            return problem(404, "no mapping yet; PUT one")
        return json_response(200, current.to_json())
    try:
        body = json.loads(request.body or b"null")
    except ValueError:
        return problem(400, "send a JSON object")
    problems = mapping_rules.object_problems(body)
    if problems:
        return problem(422, "the mapping is not valid; nothing was saved", problems)
    client = SalesforceClient(account)
    try:
        describe = client.describe(body["object"])
    except SopflowError as exc:
        if "NOT_FOUND" in str(exc) or "404" in str(exc):
            return problem(
                422, "nothing was saved", [("object", f"Salesforce has no object {body['object']!r}")]
            )
        return problem(502, f"Salesforce did not answer describe: {exc.user_message}")
    checked, problems = mapping_rules.check(body, describe, host.fields(account.tenant_id))
    if checked is None:
        return problem(422, "the mapping is not valid; nothing was saved", problems)
    try:
        host.define_fields(account.tenant_id, checked.sopflow_fields())
    except ConfigError as exc:
        return problem(422, "the mapping is not valid; nothing was saved", list(exc.problems))
    host.state(account.tenant_id).set(mapping_key(account.id), checked.to_json())
    return json_response(200, checked.to_json())


def handle_sync(request: InboundRequest, host: Host) -> InboundResponse:
    """POST: one inbound pass and one outbox drain for this connection, now."""
    from sopflow_salesforce.outbox import push_account
    from sopflow_salesforce.sync import sync_account

    account, refused = account_for(request, host)
    if refused is not None:
        return refused
    client = SalesforceClient(account)
    try:
        inbound = sync_account(host, account, client)
        outbound = push_account(host, account, client)
    except SopflowError as exc:
        return problem(502, f"Salesforce: {exc.user_message}")
    return json_response(200, {"inbound": inbound, "outbound": outbound})
