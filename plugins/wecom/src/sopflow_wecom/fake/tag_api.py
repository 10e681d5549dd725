"""The fake WeCom's corp tag library (企业客户标签): list, add, edit, delete, mark.

All of it is document 92117 (developer.work.weixin.qq.com/document/path/92117)
except ``mark_tag`` (92118).  Groups and tags carry an ``order`` (larger first in
WeCom's clients; the fake keeps creation order); a deleted tag is still
answered for when asked for by id, flagged ``deleted``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sopflow_wecom.fake.routing import arg, route
from sopflow_wecom.fake.state import ApiError, FakeState

#: characters in a tag or group name (document 92117)
MAX_TAG_NAME = 30


def _listed(group: Mapping[str, Any], tags: list[dict[str, Any]], by_id: bool) -> dict[str, Any]:
    # ``deleted`` is only in answers to a query by tag_id or group_id
    extra = {"deleted": False} if by_id else {}
    return {**group, **extra, "tag": [{**t, **extra} for t in tags]}


@route("externalcontact/get_corp_tag_list")
def get_corp_tag_list(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    """Everything, or the groups named by ``group_id``, or the tags named by
    ``tag_id``; "同时传递tag_id和group_id时，忽略tag_id，仅以group_id作为过滤条件"."""
    tag_ids, group_ids = set(b.get("tag_id") or ()), set(b.get("group_id") or ())
    if group_ids:
        return {"tag_group": [_listed(g, g["tag"], True) for g in s.tag_groups if g["group_id"] in group_ids]}
    if not tag_ids:
        return {"tag_group": [_listed(g, g["tag"], False) for g in s.tag_groups]}
    groups: dict[str, dict[str, Any]] = {}
    for group in s.tag_groups:
        tags = [t for t in group["tag"] if t["id"] in tag_ids]
        if tags:
            groups[group["group_id"]] = _listed(group, tags, True)
    for tag_id in sorted(tag_ids & set(s.deleted_tags)):
        group_id, group_name, tag = s.deleted_tags[tag_id]
        found = groups.setdefault(group_id, {"group_id": group_id, "group_name": group_name, "tag": []})
        found.setdefault("deleted", not any(g["group_id"] == group_id for g in s.tag_groups))
        found["tag"].append({**tag, "deleted": True})
    return {"tag_group": list(groups.values())}


def _name(value: Any) -> str:
    name = str(value or "").strip()
    if not 0 < len(name) <= MAX_TAG_NAME:
        raise ApiError(40072, f"a tag name is 1 to {MAX_TAG_NAME} characters")
    return name


@route("externalcontact/add_corp_tag")
def add_corp_tag(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    """With ``group_id``: add to that group (its name and order are ignored); else
    to the group named ``group_name``, made if missing.  No empty groups; a name
    already in the group is refused (40071); the same name twice is made once."""
    wanted = list(dict.fromkeys(_name(t.get("name")) for t in b.get("tag") or ()))
    if not wanted:
        raise ApiError(41018, "missing tag.name: a tag group cannot be empty")
    if b.get("group_id"):
        group = next((g for g in s.tag_groups if g["group_id"] == b["group_id"]), None)
        if group is None:  # the documented answer is not given; WeCom's "invalid tagid"
            raise ApiError(40068, "invalid group_id")
    else:
        name = _name(arg(b, "group_name"))
        group = next((g for g in s.tag_groups if g["group_name"] == name), None)
    if group is not None and {t["name"] for t in group["tag"]} & set(wanted):
        raise ApiError(40071, "tag name already exists in the group")
    if group is None:
        group = s.new_tag_group(_name(b["group_name"]), int(b.get("order") or 0))
    orders = {str(t.get("name") or "").strip(): int(t.get("order") or 0) for t in b.get("tag") or ()}
    added = [s.new_tag(name, orders.get(name, 0)) for name in wanted]
    group["tag"].extend(added)
    return {"tag_group": {**group, "tag": added}}


@route("externalcontact/edit_corp_tag")
def edit_corp_tag(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    """Rename or reorder one tag or group (``id`` is either)."""
    target_id = arg(b, "id")
    for group in s.tag_groups:
        targets = (
            [group] if group["group_id"] == target_id else [t for t in group["tag"] if t["id"] == target_id]
        )
        if not targets:
            continue
        target = targets[0]
        if "name" in b and b["name"] is not None:
            name = _name(b["name"])
            siblings = s.tag_groups if target is group else group["tag"]
            key = "group_name" if target is group else "name"
            if any(o is not target and o[key] == name for o in siblings):
                raise ApiError(40071, "name already exists")
            target[key] = name
        if b.get("order") is not None:
            target["order"] = int(b["order"])
        return {}
    raise ApiError(40068, "invalid tagid")


@route("externalcontact/del_corp_tag")
def del_corp_tag(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    """ "tag_id和group_id不可同时为空"; an id that names nothing is refused and nothing
    is deleted; the deleted tags leave every customer."""
    tag_ids, group_ids = set(b.get("tag_id") or ()), set(b.get("group_id") or ())
    if not tag_ids and not group_ids:
        raise ApiError(40058, "tag_id and group_id cannot both be empty")
    known_tags = {t["id"] for g in s.tag_groups for t in g["tag"]}
    known_groups = {g["group_id"] for g in s.tag_groups}
    if tag_ids - known_tags or group_ids - known_groups:
        raise ApiError(40068, "invalid tagid")
    s.remove_corp_tags(tag_ids, group_ids)
    return {}


@route("externalcontact/mark_tag")
def mark_tag(s: FakeState, q: Mapping[str, str], b: Mapping[str, Any]) -> Mapping[str, Any]:
    userid, ext = arg(b, "userid"), arg(b, "external_userid")
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
