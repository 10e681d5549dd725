"""Live QR codes (渠道活码): ``联系我`` contact ways whose ``state`` is the source.

A customer who scans one is added to one of the listed staff members, and the
``add_external_contact`` callback carries the ``state`` back; the callback
handler turns it into the customer's ``source``, which SOP targets select on.

Routes (an admin API key of the account's tenant, ``Authorization: Bearer``):

- ``POST /plugins/wecom/accounts/{account_id}/live-codes`` with
  ``{"source": "qr_spring", "staff": ["zhangsan"], "remark": "..."}`` → 201
  ``{"config_id": ..., "qr_code": ..., "source": ...}``
- ``DELETE /plugins/wecom/accounts/{account_id}/live-codes/{config_id}`` → 204
"""

from __future__ import annotations

import json
from typing import Any

from sopflow_sdk import ConfigError, Host, InboundRequest, InboundResponse, SopflowError

from sopflow_wecom.channel import account_channel
from sopflow_wecom.events import CHANNEL

#: WeCom's limit on ``state`` (and so on a live code's source name).
MAX_STATE = 30
#: WeCom's limit on members behind one multi-person code.
MAX_STAFF = 100


def _problem(status: int, title: str, detail: str, field: str | None = None) -> InboundResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if field:
        body["errors"] = [{"field": field, "message": detail}]
    return InboundResponse(status, json.dumps(body, ensure_ascii=False), "application/problem+json")


def _account(request: InboundRequest, host: Host) -> tuple[Any, InboundResponse | None]:
    tenant_id = host.authenticate(request.headers, "admin")
    if tenant_id is None:
        return None, _problem(401, "Unauthorized", "send 'Authorization: Bearer <admin api key>'")
    try:
        account = host.channel_account(int(request.path_params.get("account_id", "")))
    except ValueError:
        account = None
    if account is None or account.tenant_id != tenant_id or account.channel != CHANNEL:
        return None, _problem(404, "Not Found", "no WeCom channel account with that id in this tenant")
    return account, None


def _validate(raw: Any) -> tuple[dict[str, Any], InboundResponse | None]:
    if not isinstance(raw, dict):
        return {}, _problem(400, "Bad Request", "send a JSON object: {source, staff, remark}")
    source = raw.get("source")
    if not isinstance(source, str) or not 0 < len(source) <= MAX_STATE:
        detail = f"give the source as 1–{MAX_STATE} characters (WeCom's limit on 'state')"
        return {}, _problem(422, "Unprocessable Entity", detail, "source")
    staff = raw.get("staff")
    if (
        not isinstance(staff, list)
        or not 0 < len(staff) <= MAX_STAFF
        or not all(isinstance(s, str) and s for s in staff)
    ):
        detail = f"list 1–{MAX_STAFF} staff member userids who receive the customers"
        return {}, _problem(422, "Unprocessable Entity", detail, "staff")
    remark = raw.get("remark", "")
    if not isinstance(remark, str) or len(remark) > 30:
        return {}, _problem(422, "Unprocessable Entity", "a remark is at most 30 characters", "remark")
    return {"source": source, "staff": staff, "remark": remark}, None


def create_live_code(request: InboundRequest, host: Host) -> InboundResponse:
    account, error = _account(request, host)
    if error:
        return error
    try:
        raw = json.loads(request.body or b"null")
    except ValueError:
        raw = None
    data, error = _validate(raw)
    if error:
        return error
    try:
        channel = account_channel(account)
        way = channel.client.add_contact_way(
            type=1 if len(data["staff"]) == 1 else 2,
            scene=2,
            state=data["source"],
            user=data["staff"],
            remark=data["remark"],
            skip_verify=True,
        )
    except ConfigError as exc:
        return _problem(409, "Conflict", exc.user_message)
    except SopflowError as exc:
        return _problem(502, "Bad Gateway", f"WeCom refused the contact way: {exc.user_message}")
    body = {"config_id": way["config_id"], "qr_code": way.get("qr_code"), "source": data["source"]}
    return InboundResponse(201, json.dumps(body, ensure_ascii=False), "application/json")


def delete_live_code(request: InboundRequest, host: Host) -> InboundResponse:
    account, error = _account(request, host)
    if error:
        return error
    try:
        account_channel(account).client.del_contact_way(request.path_params["config_id"])
    except SopflowError as exc:
        return _problem(404, "Not Found", f"WeCom does not know that live code: {exc.user_message}")
    return InboundResponse(204, b"", "application/json")
