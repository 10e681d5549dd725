"""The transfers API: hand a member's customers to another member (admin key).

- ``POST /plugins/wecom/accounts/{account_id}/transfers`` with ``{"kind": "onjob" |
  "resigned", "handover_userid", "takeover_userid", "external_userid": [...]
  (optional: default every customer WeCom lists for the handover member),
  "transfer_success_msg" (on-job, ≤ 200 characters), "groups": true (also the
  member's customer groups, ≤ 300 a day), "dry_run": true}``.
  A dry run answers 200 with the customers that would move and the calls it
  would take, and writes nothing.  Otherwise 202: the rows are planned, WeCom is
  called (≤ 100 customers a call) and each customer's state is listed.
- ``GET /plugins/wecom/accounts/{account_id}/transfers?handover_userid=`` → 200
  ``{"items": [{external_userid, kind, handover_userid, takeover_userid, state,
  errcode, reason, requested_at, started_at, finished_at}], "counts": {...}}``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sopflow_sdk import Host, InboundRequest, InboundResponse, SopflowError

from sopflow_wecom import transfers
from sopflow_wecom.channel import account_channel
from sopflow_wecom.group_transfers import transfer_groups
from sopflow_wecom.live_codes import account_for, json_response, problem
from sopflow_wecom.store import transfers as table

MAX_LISTED = 5000


def _invalid(problems: list[tuple[str, str]]) -> InboundResponse:
    body = {
        "type": "about:blank",
        "title": "Unprocessable Entity",
        "status": 422,
        "detail": "; ".join(f"{f}: {m}" for f, m in problems),
        "errors": [{"field": f, "message": m} for f, m in problems],
    }
    return InboundResponse(422, json.dumps(body, ensure_ascii=False), "application/problem+json")


def _userid(body: Mapping[str, Any], key: str, problems: list[tuple[str, str]]) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        problems.append((key, "the member's WeCom userid, 1–64 characters"))
        return ""
    return value


def check_request(body: Any) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The request in checked form, and every problem with it (named by field)."""
    if not isinstance(body, Mapping):
        return {}, [("body", 'a JSON object such as {"kind": "resigned", "handover_userid": ..., ...}')]
    problems: list[tuple[str, str]] = []
    kind = body.get("kind", "onjob")
    if kind not in transfers.KINDS:
        problems.append(
            ("kind", "'onjob' (在职继承, the member stays) or 'resigned' (离职继承, the member left)")
        )
    handover = _userid(body, "handover_userid", problems)
    takeover = _userid(body, "takeover_userid", problems)
    if handover and handover == takeover:
        problems.append(("takeover_userid", "another member than handover_userid"))
    customers = body.get("external_userid")
    if customers is not None and (
        not isinstance(customers, list)
        or not customers
        or len(customers) > MAX_LISTED
        or not all(isinstance(c, str) and 0 < len(c) <= 64 for c in customers)
    ):
        problems.append(
            (
                "external_userid",
                f"a list of 1–{MAX_LISTED} external_userids, or leave it out for all customers",
            )
        )
    msg = body.get("transfer_success_msg")
    if msg is not None and (not isinstance(msg, str) or len(msg) > transfers.MAX_SUCCESS_MSG):
        problems.append(
            (
                "transfer_success_msg",
                f"a text of at most {transfers.MAX_SUCCESS_MSG} characters (WeCom's limit)",
            )
        )
    if msg and kind == "resigned":
        problems.append(("transfer_success_msg", "only an on-job transfer sends a message to the customer"))
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        problems.append(("dry_run", "true or false"))
    groups = body.get("groups", False)
    if not isinstance(groups, bool):
        problems.append(("groups", "true: also hand over the member's customer groups (up to 300 a day)"))
    checked = {
        "kind": kind,
        "handover": handover,
        "takeover": takeover,
        "customers": customers,
        "msg": msg or None,
        "dry_run": dry_run,
        "groups": groups,
    }
    return checked, problems


def _row(r: Any) -> dict[str, Any]:
    return {
        "external_userid": r.external_userid,
        "kind": r.kind,
        "handover_userid": r.handover_userid,
        "takeover_userid": r.takeover_userid,
        "state": r.state,
        "errcode": r.errcode,
        "reason": transfers.reason(r.state, r.errcode),
        "requested_at": r.requested_at,
        "started_at": r.started_at,
        "finished_at": r.finished_at,
    }


def _listing(host: Host, account: Any, where: Any) -> dict[str, Any]:
    with host.transaction(account.tenant_id) as tx:
        rows = tx.connection.execute(
            sa.select(table).where(table.c.account_id == account.id, where).order_by(table.c.id)
        ).all()
    items = [_row(r) for r in rows]
    counts: dict[str, int] = {}
    for item in items:
        counts[item["state"]] = counts.get(item["state"], 0) + 1
    return {"items": items, "counts": counts}


def handle_transfers(request: InboundRequest, host: Host) -> InboundResponse:
    account, error = account_for(request, host)
    if error:
        return error
    if request.method == "GET":
        handover = request.query.get("handover_userid")
        where = table.c.handover_userid == handover if handover else sa.true()
        return json_response(200, _listing(host, account, where))
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return _invalid([("body", "a JSON object")])
    req, problems = check_request(body)
    if problems:
        return _invalid(problems)
    client = account_channel(account).client
    try:
        customers = req["customers"] or transfers.candidates(client, req["kind"], req["handover"])
    except SopflowError as exc:
        return problem(502, "Bad Gateway", f"WeCom would not list the member's customers: {exc.user_message}")
    if req["dry_run"]:
        with host.transaction(account.tenant_id) as tx:
            busy = transfers.open_rows(tx.connection, account.id, customers)
        moving = [c for c in dict.fromkeys(customers) if c not in busy]
        answer = {
            "dry_run": True,
            "kind": req["kind"],
            "handover_userid": req["handover"],
            "takeover_userid": req["takeover"],
            "customers": moving,
            "count": len(moving),
            "already_in_transfer": sorted(busy),
            "calls": math.ceil(len(moving) / transfers.MAX_CUSTOMERS_PER_CALL),
        }
        if req["groups"]:
            answer["groups"] = _groups(client, req, dry_run=True)
        return json_response(200, answer)
    planned = transfers.plan(
        host, account, req["kind"], req["handover"], req["takeover"], customers, req["msg"]
    )
    try:
        host.enqueue(transfers.START_JOB, account_id=account.id)  # without a broker: now
    except SopflowError as exc:  # the rows stay planned: the finishing job calls again
        return problem(
            502, "Bad Gateway", f"WeCom did not take the transfer yet (it is retried): {exc.user_message}"
        )
    where = sa.and_(table.c.handover_userid == req["handover"], table.c.external_userid.in_(planned or [""]))
    found = _listing(host, account, where)
    found["not_planned"] = sorted(set(customers) - set(planned))
    if req["groups"]:
        found["groups"] = _groups(client, req, dry_run=False)
    return json_response(202, found)


def _groups(client: Any, req: Mapping[str, Any], *, dry_run: bool) -> Any:
    try:
        return transfer_groups(client, req["kind"], req["handover"], req["takeover"], dry_run=dry_run)
    except SopflowError as exc:  # the customers' transfer stands; the groups can be asked again
        return {"error": exc.user_message}
