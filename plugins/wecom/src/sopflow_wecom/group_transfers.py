"""A member's customer groups handed to another member (group 继承, document 92127).

``groupchat/onjob_transfer`` (the owner stays) and ``groupchat/transfer`` (the
owner left) take at most 100 groups a call and at most 300 of one original
owner's groups a day.  WeCom moves a group at once (no 24-hour wait), and a
moved group lists under its new owner, so the step is safe to repeat: a run
after a crash or on the next day lists the giver's remaining groups again.
Groups send from their owner of the moment (``channel.group_owner``), so a
moved group's touches go out from the taker with nothing else to change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sopflow_wecom.client import WeComClient

MAX_GROUPS_PER_CALL = 100
MAX_GROUPS_PER_OWNER_DAY = 300
_PATHS = {
    "onjob": "externalcontact/groupchat/onjob_transfer",
    "resigned": "externalcontact/groupchat/transfer",
}


def groups_of(client: WeComClient, owner: str) -> list[str]:
    """The chat ids of the groups ``owner`` owns (every page)."""
    chats: list[str] = []
    cursor = ""
    for _ in range(1000):
        page = client.groupchat_list(owner_userids=[owner], cursor=cursor, limit=1000)
        chats += [str(g["chat_id"]) for g in page.get("group_chat_list") or []]
        cursor = str(page.get("next_cursor") or "")
        if not cursor:
            return chats
    return chats


def transfer_groups(
    client: WeComClient, kind: str, handover: str, takeover: str, *, dry_run: bool = False
) -> Mapping[str, Any]:
    """Move up to today's 300 of ``handover``'s groups to ``takeover``: ``moved``,
    ``failed`` (``chat_id``, ``errcode``, ``errmsg``) and ``left`` (for another day)."""
    chats = groups_of(client, handover)
    today, later = chats[:MAX_GROUPS_PER_OWNER_DAY], chats[MAX_GROUPS_PER_OWNER_DAY:]
    if dry_run:
        return {"groups": today, "left": later}
    failed: list[dict[str, Any]] = []
    for i in range(0, len(today), MAX_GROUPS_PER_CALL):
        chunk = today[i : i + MAX_GROUPS_PER_CALL]
        answer = client.call("POST", _PATHS[kind], json={"chat_id_list": chunk, "new_owner": takeover})
        failed += [dict(f) for f in answer.get("failed_chat_list") or []]
    gone = {f.get("chat_id") for f in failed}
    return {"moved": [c for c in today if c not in gone], "failed": failed, "left": later}
