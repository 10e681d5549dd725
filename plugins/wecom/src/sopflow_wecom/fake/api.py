"""The fake WeCom's API handlers, one plain function per endpoint.

Each handler takes ``(state, query, body)`` and returns the JSON answer without
``errcode`` (added by the server) or raises ``ApiError``.  Behaviour follows
WeCom's documentation where the client depends on it: mass sends wait for the
member's confirmation and respect the per-customer cap, welcome codes are single
use within 20 s, pages carry ``next_cursor``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sopflow_wecom.fake.state import (
    CONTACT_WAY_LIST_DEFAULT_SPAN,
    CONTACT_WAY_LIST_EPOCH,
    WELCOME_CODE_TTL,
    ApiError,
    FakeState,
    MassSendTask,
)

Handler = Callable[[FakeState, Mapping[str, str], Mapping[str, Any]], Mapping[str, Any]]
ROUTES: dict[str, Handler] = {}


def route(path: str) -> Callable[[Handler], Handler]:
    def add(fn: Handler) -> Handler:
        ROUTES[path] = fn
        return fn

    return add


def _page(items: list[Any], cursor: str, limit: int, cap: int) -> tuple[list[Any], str]:
    if limit < 1 or limit > cap:
        raise ApiError(40058, f"limit must be within 1..{cap}")
    start = int(cursor) if cursor.isdigit() else 0
    end = start + limit
    return items[start:end], (str(end) if end < len(items) else "")


def _arg(data: Mapping[str, Any], name: str) -> Any:
    if data.get(name) in (None, ""):
        raise ApiError(40058, f"missing parameter {name}")
    return data[name]


# -- customers --------------------------------------------------------------------------


@route("externalcontact/get_follow_user_list")
def get_follow_user_list(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    return {"follow_user": sorted(s.staff)}


@route("externalcontact/list")
def list_contacts(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    userid = _arg(q, "userid")
    if userid not in s.staff:
        raise ApiError(60111, "userid not found")
    return {"external_userid": sorted(e for e, c in s.contacts.items() if userid in c["follow"])}


@route("externalcontact/get")
def get_contact(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    found = s.contact(_arg(q, "external_userid"))
    # ``get`` names the tags (``tags``); ``batch/get_by_user`` gives their ids only (``tag_id``).
    follow = [_with_tag_names(s, f) for f in found["follow"].values()]
    page, next_cursor = _page(follow, q.get("cursor", ""), 500, 500)
    return {"external_contact": found["external_contact"], "follow_user": page, "next_cursor": next_cursor}


def _with_tag_names(s: FakeState, follow: Mapping[str, Any]) -> dict[str, Any]:
    tags = [
        {"group_name": g["group_name"], "tag_name": t["name"], "tag_id": t["id"], "type": 1}
        for g in s.tag_groups
        for t in g["tag"]
        if t["id"] in follow.get("tag_id", ())
    ]
    return {**{k: v for k, v in follow.items() if k != "tag_id"}, "tags": tags}


@route("externalcontact/batch/get_by_user")
def batch_get_by_user(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    """Document 92994: ≤100 members; ``limit`` default 50, above 100 taken as 100; one
    item per (member, customer), so a customer two members added appears twice."""
    users = _arg(b, "userid_list")
    if not isinstance(users, list) or len(users) > 100:
        raise ApiError(40058, "userid_list holds at most 100 members")
    limit = min(int(b.get("limit") or 50), 100)
    items = [
        {"external_contact": c["external_contact"], "follow_info": c["follow"][u]}
        for u in users
        for _, c in sorted(s.contacts.items())
        if u in c["follow"]
    ]
    page, next_cursor = _page(items, str(b.get("cursor") or ""), limit, 100)
    return {"external_contact_list": page, "next_cursor": next_cursor}


# -- contact ways ---------------------------------------------------------------------------

#: What ``update_contact_way`` may change (``type`` and ``scene`` are fixed at creation).
_WAY_UPDATABLE = (
    "remark",
    "skip_verify",
    "style",
    "state",
    "user",
    "party",
    "expires_in",
    "chat_expires_in",
    "unionid",
    "conclusions",
)


def _check_way(way: Mapping[str, Any]) -> None:
    if len(str(way.get("state") or "")) > 30:
        raise ApiError(40058, "state is at most 30 characters")
    if len(str(way.get("remark") or "")) > 30:
        raise ApiError(40058, "remark is at most 30 characters")
    users = way.get("user") or []
    if not isinstance(users, list) or len(users) > 100:
        raise ApiError(40058, "user holds at most 100 members")
    if way["type"] == 1 and (len(users) != 1 or way.get("party")):
        raise ApiError(40058, "a single-person contact way (type 1) has exactly one user")
    if way["type"] == 2 and not users and not way.get("party"):
        raise ApiError(40058, "user and party cannot both be empty")


@route("externalcontact/add_contact_way")
def add_contact_way(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    if b.get("type") not in (1, 2) or b.get("scene") not in (1, 2):
        raise ApiError(40058, "type and scene are 1 or 2")
    config_id = s.new_id("cw")
    way: dict[str, Any] = {
        "config_id": config_id,
        "type": b["type"],
        "scene": b["scene"],
        "remark": b.get("remark", ""),
        "skip_verify": b.get("skip_verify", True),
        "state": b.get("state", ""),
        "user": list(b.get("user") or []),
        "party": list(b.get("party") or []),
        "is_temp": bool(b.get("is_temp", False)),
        **{k: b[k] for k in ("style", "expires_in", "chat_expires_in", "unionid", "conclusions") if k in b},
    }
    _check_way(way)
    answer = {"config_id": config_id}
    if way["scene"] == 2:  # a QR code only for the QR scene
        way["qr_code"] = answer["qr_code"] = f"https://wework.qpic.cn/fake/{config_id}"
    s.contact_ways[config_id] = way
    s.contact_way_created[config_id] = s.clock()
    return answer


def _way(s: FakeState, b: Mapping[str, Any]) -> dict[str, Any]:
    way = s.contact_ways.get(_arg(b, "config_id"))
    if way is None:
        raise ApiError(40058, "invalid config_id")
    return way


@route("externalcontact/get_contact_way")
def get_contact_way(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    return {"contact_way": dict(_way(s, b))}


@route("externalcontact/list_contact_way")
def list_contact_way(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    """Document 92228: ways created in [start_time, end_time] (default: the last 90
    days), never temporary-chat ways nor ways made before 2021-07-10; config ids only."""
    now = int(s.clock())
    end = int(b.get("end_time") or now)
    start = int(b.get("start_time") or now - CONTACT_WAY_LIST_DEFAULT_SPAN)
    if start > end:
        raise ApiError(40058, "start_time is after end_time")
    rows = [
        {"config_id": config_id}
        for config_id, at in sorted(s.contact_way_created.items(), key=lambda kv: (kv[1], kv[0]))
        if config_id in s.contact_ways
        and not s.contact_ways[config_id].get("is_temp")
        and max(start, CONTACT_WAY_LIST_EPOCH) <= at <= end
    ]
    page, next_cursor = _page(rows, str(b.get("cursor") or ""), int(b.get("limit") or 100), 1000)
    return {"contact_way": page, "next_cursor": next_cursor}


@route("externalcontact/update_contact_way")
def update_contact_way(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    way = _way(s, b)
    changed = {**way, **{k: b[k] for k in _WAY_UPDATABLE if k in b}}
    _check_way(changed)  # all or nothing
    way.update(changed)
    return {}


@route("externalcontact/del_contact_way")
def del_contact_way(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    config_id = _way(s, b)["config_id"]
    s.contact_ways.pop(config_id)
    s.contact_way_created.pop(config_id, None)
    return {}


# -- welcome, mass send, moments ---------------------------------------------------------------


@route("externalcontact/send_welcome_msg")
def send_welcome_msg(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    code = s.welcome_codes.get(_arg(b, "welcome_code"))
    if code is None or code["used"] or s.clock() - code["issued_at"] > WELCOME_CODE_TTL:
        raise ApiError(41051, "externaluser has started chatting")
    code["used"] = True
    s.welcome_messages.append({**code, "text": b.get("text"), "attachments": b.get("attachments")})
    return {}


@route("externalcontact/add_msg_template")
def add_msg_template(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    chat_type = b.get("chat_type", "single")
    sender = b.get("sender")
    recipients: dict[str, dict[str, int]] = {}
    fail_list: list[str] = []
    if chat_type == "group":
        for chat_id in _arg(b, "chat_id_list"):
            recipients.setdefault(_arg(b, "sender"), {})[chat_id] = 0
    else:
        targets = b.get("external_userid") or [
            e for e, c in sorted(s.contacts.items()) if sender in c["follow"]
        ]
        if not targets:
            raise ApiError(41048, "external_userid and sender cannot both be empty")
        for ext in targets:
            follows = list(s.contacts.get(ext, {}).get("follow", {}))
            staff = sender if sender in follows else (None if sender else next(iter(follows), None))
            if staff is None:
                fail_list.append(ext)
            else:
                recipients.setdefault(staff, {})[ext] = 0
    msgid = s.new_id("msg")
    s.tasks[msgid] = MassSendTask(msgid, chat_type, {"text": b.get("text")}, recipients)
    return {"msgid": msgid, "fail_list": fail_list}


def _task(s: FakeState, b: Mapping[str, Any]) -> MassSendTask:
    task = s.tasks.get(_arg(b, "msgid"))
    if task is None:
        raise ApiError(41063, "invalid msgid")
    return task


@route("externalcontact/get_groupmsg_task")
def get_groupmsg_task(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    task = _task(s, b)
    rows = [
        {
            "userid": u,
            "status": 2 if u in task.send_time else 0,
            **({"send_time": task.send_time[u]} if u in task.send_time else {}),
        }
        for u in sorted(task.recipients)
    ]
    page, next_cursor = _page(rows, str(b.get("cursor", "")), int(b.get("limit", 500)), 1000)
    return {"task_list": page, "next_cursor": next_cursor}


@route("externalcontact/get_groupmsg_send_result")
def get_groupmsg_send_result(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    task = _task(s, b)
    userid = _arg(b, "userid")
    key = "chat_id" if task.chat_type == "group" else "external_userid"
    rows = [
        {key: r, "userid": userid, "status": st, **({"send_time": task.send_time[userid]} if st == 1 else {})}
        for r, st in sorted(task.recipients.get(userid, {}).items())
    ]
    page, next_cursor = _page(rows, str(b.get("cursor", "")), int(b.get("limit", 500)), 1000)
    return {"send_list": page, "next_cursor": next_cursor}


@route("externalcontact/add_moment_task")
def add_moment_task(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    if not b.get("text") and not b.get("attachments"):
        raise ApiError(41059, "text and attachments cannot both be empty")
    jobid = s.new_id("job")
    s.moments[jobid] = {"status": 1, "body": dict(b)}
    return {"jobid": jobid}


@route("externalcontact/get_moment_task_result")
def get_moment_task_result(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    job = s.moments.get(_arg(q, "jobid"))
    if job is None:
        raise ApiError(40058, "invalid jobid")
    answer: dict[str, Any] = {"status": job["status"], "type": "add_moment_task"}
    if job["status"] == 3:
        answer["result"] = {
            "errcode": 0,
            "errmsg": "ok",
            "moment_id": job["moment_id"],
            "invalid_sender_list": {},
            "invalid_external_contact_list": {},
        }
    return answer


APP_MESSAGE_TYPES = ("text", "image", "voice", "video", "file", "textcard", "news", "markdown")


@route("message/send")
def message_send(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    msgtype = b.get("msgtype")
    if msgtype not in APP_MESSAGE_TYPES or not isinstance(b.get(msgtype), Mapping):
        raise ApiError(40008, f"invalid message type {msgtype!r}")
    if msgtype == "news" and not 1 <= len(b["news"].get("articles") or ()) <= 8:
        raise ApiError(40058, "news needs 1 to 8 articles")
    if msgtype in ("image", "file", "video") and not b[msgtype].get("media_id"):
        raise ApiError(40007, "invalid media_id")
    members = str(_arg(b, "touser")).split("|")
    invalid = [m for m in members if m not in s.staff]
    now = s.clock()
    for member in members:
        if member in invalid:
            continue
        if s.app_message_allowed(member, now):
            s.app_messages[member].append(now)
            s.app_message_bodies.append((member, msgtype, dict(b[msgtype])))
        else:  # WeCom drops the excess without telling the caller
            s.dropped_app_messages.append((member, str(b.get("text"))))
    return {"invaliduser": "|".join(invalid), "msgid": s.new_id("am")}


# -- tags ----------------------------------------------------------------------------------------


@route("externalcontact/get_corp_tag_list")
def get_corp_tag_list(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    tag_ids, group_ids = set(b.get("tag_id") or ()), set(b.get("group_id") or ())
    groups = []
    for group in s.tag_groups:
        if group_ids and group["group_id"] not in group_ids:
            continue
        tags = [t for t in group["tag"] if not tag_ids or t["id"] in tag_ids]
        if tags or not tag_ids:
            groups.append({**group, "tag": tags})
    return {"tag_group": groups}


@route("externalcontact/add_corp_tag")
def add_corp_tag(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    group = next(
        (
            g
            for g in s.tag_groups
            if g["group_id"] == b.get("group_id") or g["group_name"] == b.get("group_name")
        ),
        None,
    )
    if group is None:
        group = {
            "group_id": s.new_id("etg"),
            "group_name": _arg(b, "group_name"),
            "create_time": int(s.clock()),
            "tag": [],
        }
        s.tag_groups.append(group)
    added = [
        {"id": s.new_id("et"), "name": t["name"], "create_time": int(s.clock())} for t in b.get("tag", [])
    ]
    group["tag"].extend(added)
    return {"tag_group": {**group, "tag": added}}


@route("externalcontact/del_corp_tag")
def del_corp_tag(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    tag_ids, group_ids = set(b.get("tag_id") or ()), set(b.get("group_id") or ())
    s.tag_groups = [g for g in s.tag_groups if g["group_id"] not in group_ids]
    for group in s.tag_groups:
        group["tag"] = [t for t in group["tag"] if t["id"] not in tag_ids]
    return {}


@route("externalcontact/mark_tag")
def mark_tag(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    userid, ext = _arg(b, "userid"), _arg(b, "external_userid")
    if not s.follows(userid, ext):
        raise ApiError(84061, "not external contact")
    if not b.get("add_tag") and not b.get("remove_tag"):
        raise ApiError(40058, "add_tag and remove_tag cannot both be empty")
    known = {t["id"] for g in s.tag_groups for t in g["tag"]}
    for tag in [*(b.get("add_tag") or []), *(b.get("remove_tag") or [])]:
        if tag not in known:
            raise ApiError(40068, "invalid tagid")
    follow = s.contacts[ext]["follow"][userid]
    follow["tag_id"] = sorted(
        (set(follow["tag_id"]) | set(b.get("add_tag") or [])) - set(b.get("remove_tag") or [])
    )
    return {}


# -- customer groups ----------------------------------------------------------------------------


@route("externalcontact/groupchat/list")
def groupchat_list(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    owners = set((b.get("owner_filter") or {}).get("userid_list") or ())
    rows = [
        {"chat_id": c, "status": 0} for c, g in sorted(s.groups.items()) if not owners or g["owner"] in owners
    ]
    page, next_cursor = _page(rows, str(b.get("cursor", "")), int(b.get("limit", 100)), 1000)
    return {"group_chat_list": page, "next_cursor": next_cursor}


@route("externalcontact/groupchat/get")
def groupchat_get(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    group = s.groups.get(_arg(b, "chat_id"))
    if group is None:
        raise ApiError(40050, "chatid not found")
    return {"group_chat": dict(group)}
