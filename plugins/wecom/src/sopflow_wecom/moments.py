"""Customers' likes and comments on the corp's moments (客户朋友圈) as events.

WeCom sends no callback for them, so a periodic job (``wecom.moments_poll``)
reads them: ``get_moment_list`` for the moments created in the last 30 days
(WeCom's widest window, cursor paging), for each the members who published it
(the creator of a member's own moment; ``get_moment_task`` for a corp one), and
``get_moment_comments`` for each of those members.  Every like by a customer is
one ``moment.liked`` event, every comment one ``moment.commented`` (identity:
the customer's ``external_userid``, staff: the member), keyed so that reading
them again is a duplicate: a like by (corp, moment, member, customer), a comment
also by its ``create_time``.  Likes and comments by colleagues (``userid``) are
not customers' and are left out.

Interactions older than the account's first poll are history, not triggers: the
first poll stores its time (plugin state ``moments.<account>.since``) and only
what happens from then on becomes an event.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from sopflow_sdk import ChannelAccountView, Host, Identity, IngestEvent, JobSpec, SopflowError

from sopflow_wecom.channel import account_channel
from sopflow_wecom.client import WeComClient
from sopflow_wecom.events import CHANNEL

log = logging.getLogger("sopflow_wecom.moments")

JOB = "wecom.moments_poll"
EVERY_SECONDS = 900
#: ``get_moment_list``'s widest window
WINDOW = 30 * 86_400
LIKED, COMMENTED = "moment.liked", "moment.commented"  # described in events.EVENT_DESCRIPTIONS
#: bounds on one poll's pages (100 moments, 1000 members a page)
MAX_PAGES = 1000


def _since_key(account_id: int) -> str:
    return f"moments.{account_id}.since"


def _pages(
    client: WeComClient, path: str, body: Mapping[str, Any], field: str
) -> Iterator[Mapping[str, Any]]:
    cursor = ""
    for _ in range(MAX_PAGES):
        page = client.call("POST", path, json={**body, **({"cursor": cursor} if cursor else {})})
        yield from page.get(field) or []
        cursor = str(page.get("next_cursor") or "")
        if not cursor:
            return


def moments(client: WeComClient, start: int, end: int) -> Iterator[Mapping[str, Any]]:
    """Every moment created in ``[start, end]`` (at most 30 days), newest first."""
    body = {"start_time": start, "end_time": end, "filter_type": 2, "limit": 100}
    yield from _pages(client, "externalcontact/get_moment_list", body, "moment_list")


def publishers(client: WeComClient, moment: Mapping[str, Any]) -> list[str]:
    """The members whose customers saw the moment."""
    if int(moment.get("create_type", 0)) == 1:
        return [str(moment["creator"])] if moment.get("creator") else []
    body = {"moment_id": moment["moment_id"], "limit": 1000}
    return [
        str(t["userid"])
        for t in _pages(client, "externalcontact/get_moment_task", body, "task_list")
        if int(t.get("publish_status", 0)) == 1
    ]


def _key(kind: str, *parts: Any) -> str:
    material = "\x1f".join(str(p) for p in parts)
    return f"wecom:{kind}:" + hashlib.sha256(material.encode("utf-8")).hexdigest()


def interaction_events(
    corp_id: str, moment: Mapping[str, Any], userid: str, answer: Mapping[str, Any], since: int
) -> list[IngestEvent]:
    """One member's ``get_moment_comments`` answer as events (customers only, from ``since``)."""
    moment_id = str(moment["moment_id"])
    text = str((moment.get("text") or {}).get("content") or "")[:200]
    out = []
    for kind, rows in ((LIKED, answer.get("like_list")), (COMMENTED, answer.get("comment_list"))):
        for row in rows or []:
            ext, at = row.get("external_userid"), int(row.get("create_time") or 0)
            if not ext or at < since:
                continue
            parts = (corp_id, moment_id, userid, ext) + ((at,) if kind == COMMENTED else ())
            out.append(
                IngestEvent(
                    type=kind,
                    identity=Identity(channel=CHANNEL, external_id=str(ext), staff_external_id=userid),
                    idempotency_key=_key(kind, *parts),
                    occurred_at=datetime.fromtimestamp(at, tz=UTC).isoformat(),
                    payload={
                        "corp_id": corp_id,
                        "moment_id": moment_id,
                        "staff_userid": userid,
                        "moment_text": text,
                        "moment_create_type": int(moment.get("create_type", 0)),
                    },
                )
            )
    return out


def poll_account(host: Host, account: ChannelAccountView) -> int:
    """Read the account's moments and ingest the new interactions; returns how many
    events were created (the others were duplicates)."""
    client = account_channel(account).client
    corp_id = str(account.config.get("corp_id") or "")
    now = int(host.now().timestamp())
    state = host.state(account.tenant_id)
    since = state.get(_since_key(account.id))
    if since is None:
        state.set(_since_key(account.id), now)
        since = now
    created = 0
    for moment in moments(client, max(now - WINDOW, 0), now):
        for userid in publishers(client, moment):
            body = {"moment_id": moment["moment_id"], "userid": userid}
            answer = client.call("POST", "externalcontact/get_moment_comments", json=body)
            events = interaction_events(corp_id, moment, userid, answer, int(since))
            if events:
                outcomes = host.ingest(account.tenant_id, events)
                created += sum(1 for o in outcomes if o.get("status") == "created")
    return created


def poll_job(host: Host, account_id: int | None = None) -> None:
    """Every WeCom account (or one); one account's failure does not stop the others."""
    accounts = [host.channel_account(account_id)] if account_id else host.channel_accounts(CHANNEL)
    for account in accounts:
        if account is None or account.channel != CHANNEL:
            continue
        try:
            poll_account(host, account)
        except SopflowError as exc:
            log.warning("wecom moments of account %s not read: %s", account.id, exc)


def job_spec() -> JobSpec:
    return JobSpec(
        name=JOB,
        fn=poll_job,
        every_seconds=EVERY_SECONDS,
        description="Read the corp's moments of the last 30 days and their likes and comments: "
        "moment.liked / moment.commented events, once each",
    )
