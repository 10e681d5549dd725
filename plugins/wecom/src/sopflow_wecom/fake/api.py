"""The fake WeCom's API handlers for customers, contact ways, sends and groups.

Behaviour follows WeCom's documentation where a client depends on it: mass
sends wait for the member's confirmation and respect the per-customer cap,
welcome codes are single use within 20 s, pages carry ``next_cursor``, times
are whole seconds.  Document numbers below are pages of
developer.work.weixin.qq.com/document/path/<number>.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sopflow_wecom.fake.routing import arg as _arg
from sopflow_wecom.fake.routing import now_s, route
from sopflow_wecom.fake.routing import page as _page
from sopflow_wecom.fake.state import (
    CONTACT_WAY_LIST_DEFAULT_SPAN,
    CONTACT_WAY_LIST_EPOCH,
    WELCOME_CODE_TTL,
    ApiError,
    FakeState,
    MassSendTask,
)

#: get_groupmsg_list_v2: the window is at most a month (document 93338).
GROUPMSG_LIST_MAX_SPAN = 31 * 86_400
#: attachments per mass send or welcome message (documents 92135, 92599).
MAX_ATTACHMENTS = 9


# -- customers --------------------------------------------------------------------------


@route("externalcontact/get_follow_user_list")
def get_follow_user_list(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    return {"follow_user": sorted(s.staff)}


@route("externalcontact/list")
def list_contacts(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    userid = _arg(q, "userid")
    if userid not in s.staff:
        raise ApiError(60111, "userid not found")
    found = sorted(e for e, c in s.contacts.items() if userid in c["follow"])
    if not found:
        # Document 92113 answers a member without customers with 84061, not an empty list.
        raise ApiError(84061, "not external contact")
    return {"external_userid": found}


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
    # fail_info lists members without a licence to call the API for; the fake
    # licenses every member, so the list is always there and empty.
    return {
        "external_contact_list": page,
        "next_cursor": next_cursor,
        "fail_info": {"unlicensed_userid_list": []},
    }


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
    "is_exclusive",
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
        # get_contact_way (document 92228) always carries style and is_exclusive;
        # the value for a way made without a style is not documented: 1, the first.
        "style": b.get("style", 1),
        "is_exclusive": bool(b.get("is_exclusive", False)),
        **{k: b[k] for k in ("expires_in", "chat_expires_in", "unionid", "conclusions") if k in b},
    }
    _check_way(way)
    answer = {"config_id": config_id}
    if way["scene"] == 2:  # a QR code only for the QR scene
        way["qr_code"] = answer["qr_code"] = f"https://wework.qpic.cn/fake/{config_id}"
    s.contact_ways[config_id] = way
    s.contact_way_created[config_id] = now_s(s)
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
    now = now_s(s)
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


def _content(b: Mapping[str, Any]) -> dict[str, Any]:
    """A send's ``text`` and ``attachments``, refused when both are empty (documents
    92135 and 92599 name no errcode for it; 40058 is WeCom's "invalid parameter")."""
    text = b.get("text") if isinstance(b.get("text"), Mapping) and b["text"].get("content") else None
    attachments = list(b.get("attachments") or [])
    if text is None and not attachments:
        raise ApiError(40058, "text and attachments cannot both be empty")
    if len(attachments) > MAX_ATTACHMENTS:
        raise ApiError(40058, f"attachments holds at most {MAX_ATTACHMENTS} items")
    return {**({"text": dict(text)} if text else {}), **({"attachments": attachments} if attachments else {})}


@route("externalcontact/send_welcome_msg")
def send_welcome_msg(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    code = s.welcome_codes.get(_arg(b, "welcome_code"))
    content = _content(b)
    if code is None or code["used"] or s.clock() - code["issued_at"] > WELCOME_CODE_TTL:
        raise ApiError(41051, "externaluser has started chatting")
    code["used"] = True
    s.welcome_messages.append(
        {**code, "text": content.get("text"), "attachments": content.get("attachments")}
    )
    return {}


@route("externalcontact/add_msg_template")
def add_msg_template(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    chat_type = b.get("chat_type", "single")
    sender = b.get("sender")
    content = _content(b)
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
    s.tasks[msgid] = MassSendTask(msgid, chat_type, content, recipients, created_at=now_s(s))
    return {"msgid": msgid, "fail_list": fail_list}


@route("externalcontact/get_groupmsg_list_v2")
def get_groupmsg_list_v2(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    """Document 93338: the mass sends created in ``[start_time, end_time]`` (at most a
    month apart), newest first.  Tasks made through the API are the corp's
    (``create_type`` 0, ``filter_type`` 0 or 2) and carry no ``creator``."""
    start, end = int(_arg(b, "start_time")), int(_arg(b, "end_time"))
    if start > end or end - start > GROUPMSG_LIST_MAX_SPAN:
        raise ApiError(40058, "start_time..end_time is at most one month")
    chat_type = b.get("chat_type") or "single"
    if int(b.get("filter_type", 2)) == 1 or b.get("creator"):
        rows: list[dict[str, Any]] = []  # no member-made tasks in the fake
    else:
        rows = [
            {"msgid": t.msgid, "create_type": 0, "create_time": t.created_at, **t.content}
            for t in sorted(s.tasks.values(), key=lambda t: (-t.created_at, t.msgid))
            if t.chat_type == chat_type and start <= t.created_at <= end
        ]
    limit = int(b.get("limit") or 50)
    page, next_cursor = _page(rows, str(b.get("cursor") or ""), limit if 0 < limit <= 100 else 50, 100)
    return {"group_msg_list": page, "next_cursor": next_cursor}


def _task(s: FakeState, b: Mapping[str, Any]) -> MassSendTask:
    task = s.tasks.get(_arg(b, "msgid"))
    if task is None:
        raise ApiError(41063, "invalid msgid")
    return task


@route("externalcontact/cancel_groupmsg_send")
def cancel_groupmsg_send(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    """Document 97610 (停止企业群发): members who have not sent the task can no longer."""
    _task(s, b).cancelled = True
    return {}


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
        # Document 96351 (get_moment_task_result): senders outside the app's range and tags that are not corp
        # tags come back in these two objects (empty lists when all were valid).
        answer["result"] = {
            "errcode": 0,
            "errmsg": "ok",
            "moment_id": job["moment_id"],
            "invalid_sender_list": {"user_list": [], "department_list": []},
            "invalid_external_contact_list": {"tag_list": []},
        }
    return answer


APP_MESSAGE_TYPES = (
    "text",
    "image",
    "voice",
    "video",
    "file",
    "textcard",
    "news",
    "mpnews",
    "markdown",
    "template_card",
)


def _ids(value: Any) -> list[str]:
    return [p.strip() for p in str(value or "").split("|") if p.strip()]


@route("message/send")
def message_send(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    """Document 90236.  Recipients are members (``touser``), departments (``toparty``)
    and member tags (``totag``); the invalid ones are reported and the rest
    receive the message, and when none is valid the call fails with 81013."""
    if str(b.get("agentid", "")) != str(s.agent_id):
        raise ApiError(40056, "invalid agentid")
    msgtype = b.get("msgtype")
    if msgtype not in APP_MESSAGE_TYPES or not isinstance(b.get(msgtype), Mapping):
        raise ApiError(40008, f"invalid message type {msgtype!r}")
    if msgtype == "news" and not 1 <= len(b["news"].get("articles") or ()) <= 8:
        raise ApiError(40058, "news needs 1 to 8 articles")
    if msgtype in ("image", "file", "video") and not b[msgtype].get("media_id"):
        raise ApiError(40007, "invalid media_id")
    users, parties, tags = _ids(b.get("touser")), _ids(b.get("toparty")), _ids(b.get("totag"))
    if not users and not parties and not tags:
        raise ApiError(40058, "touser, toparty and totag cannot all be empty")
    if users == ["@all"]:
        users, parties, tags = sorted(s.staff), [], []
    invalid_users = [m for m in users if m not in s.staff]
    invalid_parties = [p for p in parties if p not in s.departments]
    invalid_tags = list(tags)  # the fake has no member tags (通讯录标签)
    members = [m for m in users if m in s.staff]
    members += sorted(
        m
        for m, info in s.staff.items()
        if m not in members and set(map(str, info["department"])) & set(parties)
    )
    if not members:
        # "如果全部接收人无权限或不存在，则本次调用返回失败，errcode为81013" (formerly 82001)
        raise ApiError(81013, "user & party & tag all invalid")
    now = s.clock()
    for member in members:
        if s.app_message_allowed(member, now):
            s.app_messages[member].append(now)
            s.app_message_bodies.append((member, msgtype, dict(b[msgtype])))
        else:  # WeCom drops the excess without telling the caller
            s.dropped_app_messages.append((member, str(b.get("text"))))
    answer = {
        "invaliduser": "|".join(invalid_users),
        "invalidparty": "|".join(invalid_parties),
        "invalidtag": "|".join(invalid_tags),
        "unlicenseduser": "",
        "msgid": s.new_id("am"),
    }
    if msgtype == "template_card":  # only interactive cards get one, to update the card later
        answer["response_code"] = s.new_id("rc")
    return answer


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
    """Document 92122: members carry join time and scene, the inviter when a member
    invited them, their group nickname and (with ``need_name``) their name."""
    group = s.groups.get(_arg(b, "chat_id"))
    if group is None:
        raise ApiError(40050, "chatid not found")
    need_name = bool(b.get("need_name"))
    members = [
        {**{k: v for k, v in m.items() if k != "name"}, **({"name": m["name"]} if need_name else {})}
        for m in group["member_list"]
    ]
    return {"group_chat": {**group, "member_list": members}}
