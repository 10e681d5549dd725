"""The fake WeCom's transfers: a member's customers and groups handed to another.

在职继承 (documents 92125, 96325): ``transfer_customer`` / ``transfer_result``;
at most 100 customers a call, ``transfer_success_msg`` at most 200 characters,
each customer handed over at most twice in 90 days; the customer has 24 hours
to refuse, then the takeover completes by itself.
离职继承 (documents 92124, 94081, 94082, 96331, 96333): ``get_unassigned_list``,
``resigned/transfer_customer`` / ``resigned/transfer_result`` for a member who
left; also 24 hours.  Groups: ``groupchat/onjob_transfer`` and
``groupchat/transfer`` (document 92127, 96334), at most 300 of one original
owner's groups a day.
Result ``status``: 1 taken over, 2 waiting, 3 refused by the customer, 4 the
successor is at their customer limit, 5 no transfer on record.
Per-customer ``errcode``: 0 started, 84061 not the handover's customer, 40128
handed over twice in 90 days already, 40129 a handover is under way, 40130 the
giver and the taker are the same member.

How each transfer ends is the test's choice (``refuse_transfer``,
``limit_takeover``); ``settle_transfers`` (``scenario.py``) completes the due
ones and sends the ``change_external_contact`` callbacks that follow.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sopflow_wecom.fake.routing import arg, now_s, page, route
from sopflow_wecom.fake.state import ApiError, FakeState

#: how long a customer may refuse before the takeover completes
TAKEOVER_DELAY = 86_400
MAX_CUSTOMERS_PER_CALL = 100
MAX_CHATS_PER_CALL = 100
MAX_SUCCESS_MSG = 200
#: handovers of one customer within ``TRANSFER_WINDOW`` seconds
MAX_TRANSFERS_PER_WINDOW, TRANSFER_WINDOW = 2, 90 * 86_400
#: groups of one original owner handed over per (China) day
MAX_CHATS_PER_OWNER_DAY = 300
#: what a result status becomes in the ``transfer_fail`` callback's ``FailReason``
FAIL_REASONS = {3: "customer_refused", 4: "customer_limit_exceeded"}


def _outcome(s: FakeState, ext: str, takeover: str) -> int:
    """How the takeover ends when its 24 hours are up: 1, or 3/4 as the test set."""
    if ext in s.transfer_refusals:
        return 3
    return 4 if takeover in s.takeover_limits else 1


def _start(s: FakeState, kind: str, b: Mapping[str, Any]) -> Mapping[str, Any]:
    handover, takeover = arg(b, "handover_userid"), arg(b, "takeover_userid")
    customers = arg(b, "external_userid")
    if not isinstance(customers, list) or len(customers) > MAX_CUSTOMERS_PER_CALL:
        raise ApiError(40058, f"external_userid holds 1 to {MAX_CUSTOMERS_PER_CALL} customers")
    if takeover not in s.staff:
        raise ApiError(60111, "takeover userid not found")
    if kind == "resigned" and handover not in s.resigned:
        raise ApiError(40058, "handover_userid has not resigned")
    if len(str(b.get("transfer_success_msg") or "")) > MAX_SUCCESS_MSG:
        raise ApiError(40058, f"transfer_success_msg holds at most {MAX_SUCCESS_MSG} characters")
    records = s.transfers.setdefault((kind, handover, takeover), {})
    answers = []
    for ext in customers:
        answers.append({"external_userid": ext, "errcode": _start_one(s, records, handover, takeover, ext)})
    return {"customer": answers}


def _start_one(
    s: FakeState, records: dict[str, dict[str, Any]], handover: str, takeover: str, ext: str
) -> int:
    now = now_s(s)
    if handover == takeover:
        return 40130
    if handover not in s.contacts.get(ext, {}).get("follow", {}):
        return 84061
    if any(recs.get(ext, {}).get("status") == 2 for recs in s.transfers.values()):
        return 40129
    recent = [t for t in s.transfer_starts.get(ext, []) if t > now - TRANSFER_WINDOW]
    if len(recent) >= MAX_TRANSFERS_PER_WINDOW:
        return 40128
    s.transfer_starts.setdefault(ext, []).append(now)
    records[ext] = {"at": now, "status": 2}
    return 0


def settle(s: FakeState, kind: str, handover: str, takeover: str) -> dict[str, dict[str, Any]]:
    """End the takeovers whose refusal window has passed: the customer moves, or the
    refusal or limit the test set is recorded."""
    records = s.transfers.get((kind, handover, takeover), {})
    for ext, record in records.items():
        if record["status"] == 2 and now_s(s) >= record["at"] + TAKEOVER_DELAY:
            status = _outcome(s, ext, takeover)
            if status == 1:
                follow = s.contacts.get(ext, {}).get("follow", {})
                if handover in follow:
                    follow[takeover] = {**follow.pop(handover), "userid": takeover}
                record.update(takeover_time=record["at"] + TAKEOVER_DELAY)
            record["status"] = status
    return records


def _result(s: FakeState, kind: str, b: Mapping[str, Any]) -> Mapping[str, Any]:
    handover, takeover = arg(b, "handover_userid"), arg(b, "takeover_userid")
    rows = [
        {
            "external_userid": ext,
            "status": r["status"],
            **({"takeover_time": r["takeover_time"]} if "takeover_time" in r else {}),
        }
        for ext, r in sorted(settle(s, kind, handover, takeover).items())
    ]
    found, next_cursor = page(rows, str(b.get("cursor") or ""), 1000, 1000)
    return {"customer": found, "next_cursor": next_cursor}


@route("externalcontact/transfer_customer")
def transfer_customer(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    if arg(b, "handover_userid") not in s.staff:
        raise ApiError(60111, "handover userid not found")
    return _start(s, "onjob", b)


@route("externalcontact/transfer_result")
def transfer_result(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    return _result(s, "onjob", b)


@route("externalcontact/resigned/transfer_customer")
def resigned_transfer_customer(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    return _start(s, "resigned", b)


@route("externalcontact/resigned/transfer_result")
def resigned_transfer_result(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    return _result(s, "resigned", b)


@route("externalcontact/get_unassigned_list")
def get_unassigned_list(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    """The customers of members who left, not yet handed to anyone."""
    handed = {
        ext for (kind, handover, _), records in s.transfers.items() if kind == "resigned" for ext in records
    }
    rows = [
        {"handover_userid": u, "external_userid": ext, "dimission_time": at}
        for u, at in sorted(s.resigned.items())
        for ext, c in sorted(s.contacts.items())
        if u in c["follow"] and ext not in handed
    ]
    size = int(b.get("page_size") or 1000)
    found, next_cursor = page(rows, str(b.get("cursor") or ""), size if 0 < size <= 1000 else 1000, 1000)
    return {"info": found, "is_last": not next_cursor, "next_cursor": next_cursor}


def _transfer_chats(s: FakeState, b: Mapping[str, Any], resigned: bool) -> Mapping[str, Any]:
    chats, new_owner = arg(b, "chat_id_list"), arg(b, "new_owner")
    if not isinstance(chats, list) or len(chats) > MAX_CHATS_PER_CALL:
        raise ApiError(40058, f"chat_id_list holds 1 to {MAX_CHATS_PER_CALL} groups")
    if new_owner not in s.staff:
        raise ApiError(60111, "new_owner not found")
    failed = []
    day = (datetime.fromtimestamp(now_s(s), tz=UTC) + timedelta(hours=8)).date().isoformat()
    for chat_id in chats:
        group = s.groups.get(chat_id)
        if group is None:
            failed.append({"chat_id": chat_id, "errcode": 40050, "errmsg": "chatid not found"})
        elif resigned != (group["owner"] in s.resigned):
            # on-job transfers are for a serving owner's groups, resigned ones for a leaver's
            failed.append({"chat_id": chat_id, "errcode": 40058, "errmsg": "wrong kind of transfer"})
        elif s.chat_transfers_per_day.get((group["owner"], day), 0) >= MAX_CHATS_PER_OWNER_DAY:
            failed.append({"chat_id": chat_id, "errcode": 45009, "errmsg": "over 300 groups a day"})
        else:
            key = (group["owner"], day)
            s.chat_transfers_per_day[key] = s.chat_transfers_per_day.get(key, 0) + 1
            group["owner"] = new_owner
    return {"failed_chat_list": failed}


@route("externalcontact/groupchat/onjob_transfer")
def groupchat_onjob_transfer(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    return _transfer_chats(s, b, resigned=False)


@route("externalcontact/groupchat/transfer")
def groupchat_transfer(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    return _transfer_chats(s, b, resigned=True)
