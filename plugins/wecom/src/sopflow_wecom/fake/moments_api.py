"""The fake WeCom's moments (客户朋友圈) as the corp reads them back.

``get_moment_list`` (document 93333): the moments created between
``start_time`` and ``end_time`` (at most 30 days apart), ``filter_type`` 0 the
corp's, 1 members' own, 2 both (the default), cursor paging, ``limit`` ≤ 100.
``get_moment_task``: which members a corp moment went to and whether they
published it.  ``get_moment_comments``: one member's likes and comments on a
moment, each with the customer's ``external_userid`` (or a colleague's
``userid``) and ``create_time``.

A moment gets here through ``post_moment`` (``scenario.py``: a member posts one
or publishes a corp task) and its interactions through ``like_moment`` /
``comment_moment``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sopflow_wecom.fake.routing import arg, page, route
from sopflow_wecom.fake.state import ApiError, FakeState

MAX_WINDOW = 30 * 86_400
MAX_LIMIT = 100


def _moment(s: FakeState, b: Mapping[str, Any]) -> dict[str, Any]:
    found = s.posted_moments.get(arg(b, "moment_id"))
    if found is None:
        raise ApiError(41062, "invalid moment_id")
    return found


@route("externalcontact/get_moment_list")
def get_moment_list(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    start, end = int(arg(b, "start_time")), int(arg(b, "end_time"))
    if start > end or end - start > MAX_WINDOW:
        raise ApiError(40058, "start_time..end_time is at most 30 days")
    filter_type = int(b.get("filter_type", 2))
    kinds = {0: {0}, 1: {1}}.get(filter_type, {0, 1})
    creator = b.get("creator")
    rows = [
        {k: v for k, v in m.items() if k not in ("interactions", "publishers")}
        for _, m in sorted(s.posted_moments.items(), key=lambda kv: (-kv[1]["create_time"], kv[0]))
        if start <= m["create_time"] <= end
        and m["create_type"] in kinds
        and (not creator or m.get("creator") == creator)
    ]
    limit = int(b.get("limit") or MAX_LIMIT)
    found, next_cursor = page(rows, str(b.get("cursor") or ""), limit, MAX_LIMIT)
    return {"moment_list": found, "next_cursor": next_cursor}


@route("externalcontact/get_moment_task")
def get_moment_task(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    moment = _moment(s, b)
    rows = [{"userid": u, "publish_status": 1} for u in moment["publishers"]]
    limit = int(b.get("limit") or 1000)
    found, next_cursor = page(rows, str(b.get("cursor") or ""), limit, 1000)
    return {"task_list": found, "next_cursor": next_cursor}


@route("externalcontact/get_moment_comments")
def get_moment_comments(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    moment = _moment(s, b)
    userid = arg(b, "userid")
    mine = moment["interactions"].get(userid, {"comment": [], "like": []})
    return {"comment_list": list(mine["comment"]), "like_list": list(mine["like"])}
