"""Members joining and leaving, from WeCom's contacts callbacks (通讯录回调).

``change_contact`` with ``ChangeType`` ``delete_user`` (document 90970) says a
member left the corp: sopflow marks them as left (``host.staff_left``), which
holds their customers' touches until the customers are transferred (离职继承,
``transfers.py``).  ``create_user`` for the same userid says they are back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sopflow_sdk import Host

#: ChangeType → whether the member has left
_LEFT = {"delete_user": True, "create_user": False}


def member_change(msg: Mapping[str, Any]) -> tuple[str, bool] | None:
    """``(userid, left)`` for a contacts callback about a member leaving or joining."""
    if msg.get("MsgType") != "event" or msg.get("Event") != "change_contact":
        return None
    left = _LEFT.get(str(msg.get("ChangeType") or ""))
    userid = msg.get("UserID")
    if left is None or not isinstance(userid, str) or not userid:
        return None
    return userid, left


def apply_member_change(host: Host, tenant_id: int, msg: Mapping[str, Any]) -> bool:
    """Mark the member as left (or back) when ``msg`` says so; whether it did."""
    change = member_change(msg)
    if change is None:
        return False
    return host.staff_left(tenant_id, change[0], change[1])
