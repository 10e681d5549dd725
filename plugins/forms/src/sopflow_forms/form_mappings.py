"""Per form: which provider field fills which sopflow field, and which one names
the customer (phone or e-mail).

Kept in the plugin's state per tenant under ``mapping.<account>.<form id>`` and
managed with ``PUT/GET/DELETE /plugins/forms/accounts/{account_id}/forms/{form_id}``
(admin key)::

    {"fields": {"field_1": "skin_type", "field_2": "city"},
     "identity": {"field": "field_3", "kind": "phone"}}
"""

from __future__ import annotations

import json
import re
from typing import Any

from sopflow_sdk import Host, Identity, InboundRequest, InboundResponse, IngestEvent

from sopflow_forms.form_providers import Submission
from sopflow_forms.inbound import Rejected, json_ok, parse_json, problem

IDENTITY_KINDS = ("phone", "email")
FIELD_KEY = re.compile(r"[a-z][a-z0-9_]{0,62}(\.[a-z][a-z0-9_]{0,62})?")
MAX_MAPPED = 100


def state_key(account_id: int, form_id: str) -> str:
    return f"mapping.{account_id}.{form_id}"[:200]


def check_mapping(doc: Any) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The mapping as stored, and every problem (``field``, ``message``) with its fix."""
    problems: list[dict[str, str]] = []
    if not isinstance(doc, dict):
        return {}, [{"field": "", "message": "give {fields: {...}, identity: {field, kind}}"}]
    fields = doc.get("fields") or {}
    if not isinstance(fields, dict) or len(fields) > MAX_MAPPED:
        problems.append({"field": "fields", "message": f"an object of at most {MAX_MAPPED} provider ids"})
        fields = {}
    for src, dst in fields.items():
        if not isinstance(dst, str) or not FIELD_KEY.fullmatch(dst):
            problems.append({"field": f"fields.{src}", "message": "a sopflow field key such as 'skin_type'"})
    ident = doc.get("identity")
    if not isinstance(ident, dict) or not isinstance(ident.get("field"), str) or not ident.get("field"):
        problems.append(
            {"field": "identity.field", "message": "the provider field id holding the phone or e-mail"}
        )
    elif ident.get("kind") not in IDENTITY_KINDS:
        problems.append({"field": "identity.kind", "message": f"one of {', '.join(IDENTITY_KINDS)}"})
    clean = {"fields": dict(fields), "identity": ident}
    return clean, problems


def _plain(value: Any) -> Any:
    """Providers wrap some widgets (简道云's phone is ``{"phone": ..., "verified": ...}``)."""
    if isinstance(value, dict):
        for k in ("phone", "email", "value", "text"):
            if k in value:
                return value[k]
    return value


def to_event(sub: Submission, mapping: dict[str, Any], account_id: int) -> IngestEvent:
    """``form.submitted`` for the customer the answer names, with the mapped fields."""
    ident = mapping["identity"]
    raw = _plain(sub.answers.get(ident["field"]))
    if not isinstance(raw, str) or not raw.strip():
        raise Rejected(
            422, f"the answer has no {ident['kind']} in {ident['field']}; make that question required"
        )
    external = raw.strip().lower() if ident["kind"] == "email" else re.sub(r"[\s-]", "", raw)
    fields = {dst: _plain(sub.answers[src]) for src, dst in mapping["fields"].items() if src in sub.answers}
    return IngestEvent(
        type="form.submitted",
        identity=Identity(ident["kind"], external),
        idempotency_key=f"forms:{sub.provider}:{account_id}:{sub.dedupe}"[:200],
        payload={
            "provider": sub.provider,
            "form_id": sub.form_id,
            "account_id": account_id,
            "answers": sub.answers,
            "fields": fields,
        },
        fields=fields,
    )


def manage(request: InboundRequest, host: Host) -> InboundResponse:
    """``PUT`` (save), ``GET`` (read) or ``DELETE`` one form's mapping (admin key)."""
    tenant_id = host.authenticate(request.headers, "admin")
    try:
        account_id = int(request.path_params.get("account_id", ""))
    except ValueError:
        account_id = 0
    account = host.channel_account(account_id)
    if tenant_id is None:
        return problem(401, "give an admin API key: Authorization: Bearer <key>")
    if account is None or account.tenant_id != tenant_id:
        return problem(404, f"channel account {account_id} does not exist in this tenant")
    key, state = state_key(account_id, request.path_params.get("form_id", "")), host.state(tenant_id)
    if request.method == "GET":
        found = state.get(key)
        return json_ok(found) if found is not None else problem(404, "no mapping for this form yet; PUT one")
    if request.method == "DELETE":
        return InboundResponse(status=204) if state.delete(key) else problem(404, "no mapping for this form")
    try:
        doc = parse_json(request.body)
    except Rejected as exc:
        return problem(exc.status, exc.reason)
    clean, problems = check_mapping(doc)
    if problems:
        body = {
            "type": "about:blank",
            "title": "Unprocessable Content",
            "status": 422,
            "detail": "; ".join(f"{p['field']}: {p['message']}" for p in problems),
            "errors": problems,
        }
        return InboundResponse(status=422, body=json.dumps(body), media_type="application/problem+json")
    state.set(key, clean)
    return json_ok(clean)
