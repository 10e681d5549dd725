"""The gateway's event stream as sopflow events.

- A friend request is accepted when the account's ``auto_accept_friends`` says
  so, within the pacing's own daily friends cap; it becomes ``customer.added``
  (identity channel ``personal_wechat``, staff = the account's own wxid), so
  new-customer SOPs start as they do for WeCom.  A request the cap holds back
  waits in plugin state and is accepted on a later run, in arrival order.
- A message from a contact becomes ``message.received`` (keyword rules, replies
  for reply-wait steps), whatever its kind: ``payload.kind`` says which (text,
  image, file, voice, video, link, mini_program, location, emoji, contact_card,
  other) and the kind's fields come along; the account's own messages are not
  the customer's.
- A room join becomes ``group.joined`` for each new member, a room leave
  ``group.left`` for each member who left.
- A contact who deleted the account (WeChat's notice in their chat, or a send
  that failed for it: ``unfriended``) becomes one ``customer.churned``.
- Login, logout, scan (QR URL) and heartbeat update the account's health row;
  a logout pauses its sends until the re-login.

Idempotency keys come from the gateway's own ids, so an event seen twice (a
reconnecting stream) is a duplicate, not a second enrolment.
"""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import UTC, datetime
from typing import Any

from sopflow_sdk import Host, Identity, IngestEvent, Relation, SkippableError, SopflowError

from sopflow_personal_wechat import unfriended
from sopflow_personal_wechat.channel import CHANNEL, ROOM_CHANNEL, PersonalWeChatChannel
from sopflow_personal_wechat.port import GatewayEvent

log = logging.getLogger("sopflow_personal_wechat")

#: plugin-state prefix of friend requests waiting for the daily friends cap
PENDING = "pending_friend:"
GROUP_JOINED = "group.joined"
GROUP_LEFT = "group.left"
#: markup in WeChat's notices (its 发送朋友验证 link)
TAG = re.compile(r"<[^>]+>")


def _iso(ts: float) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts else None


def run(host: Host, account: Any, channel: PersonalWeChatChannel, idle_timeout: float = 1.0) -> int:
    """Accept waiting friend requests, read the stream until it is idle, then report the
    deletions failed sends found (the stream has named the account by then); events ingested."""
    ingested = accept_waiting(host, account, channel)
    for event in channel.gateway.events(idle_timeout=idle_timeout):
        ingested += handle(host, account, channel, event)
    return ingested + report_unfriended(host, account, channel)


def handle(host: Host, account: Any, channel: PersonalWeChatChannel, event: GatewayEvent) -> int:
    """One event; how many sopflow events it became."""
    pacer, key, self_id = channel.pacer, channel.key, _self_id(account, channel)
    if event.kind == "heartbeat":
        pacer.seen(key, last_heartbeat=pacer.clock())
    elif event.kind == "login":
        pacer.seen(key, logged_in=True, qr_url="", last_heartbeat=pacer.clock())
    elif event.kind == "logout":
        pacer.seen(key, logged_in=False)
    elif event.kind == "scan":
        pacer.seen(key, qr_url=event.qr_url)
    elif event.kind == "friend_request":
        if not account.config.get("auto_accept_friends", True):
            return 0
        digest = hashlib.sha256(event.id.encode()).hexdigest()[:16]  # a gateway's id may be long
        host.state(account.tenant_id).set(PENDING + f"{pacer.clock():017.3f}:{digest}", event.id)
        return accept_waiting(host, account, channel)
    elif event.kind == "message" and event.subject and event.subject != self_id:
        staff = self_id or None
        payload = {
            **event.fields,
            "kind": event.message_kind,
            "text": event.text,
            "message_id": event.id,
            **({"room_id": event.room_id} if event.room_id else {}),
        }
        return _ingest(
            host,
            account,
            IngestEvent(
                type="message.received",
                identity=Identity(CHANNEL, event.subject, staff),
                idempotency_key=f"personal_wechat:message:{event.id}",
                occurred_at=_iso(event.timestamp),
                payload=payload,
            ),
        )
    elif event.kind == "room_join":
        events = [
            IngestEvent(
                type=GROUP_JOINED,
                identity=Identity(CHANNEL, member, self_id or None),
                idempotency_key=f"personal_wechat:join:{event.room_id}:{member}:{int(event.timestamp)}",
                occurred_at=_iso(event.timestamp),
                payload={
                    "room_id": event.room_id,
                    "inviter": event.subject,
                    "room_identity_channel": ROOM_CHANNEL,
                },
            )
            for member in event.members
            if member != self_id
        ]
        return _ingest(host, account, *events)
    elif event.kind == "room_leave":
        return _ingest(host, account, *left(event, self_id))
    elif event.kind == "unfriended" and event.subject:
        reason = f"WeChat's notice {event.id}: {TAG.sub('', event.text)}"
        unfriended.record(
            channel.pacer.engine, channel.key, event.subject, event.timestamp or pacer.clock(), reason
        )
        return report_unfriended(host, account, channel)
    return 0


def report_unfriended(host: Host, account: Any, channel: PersonalWeChatChannel) -> int:
    """One ``customer.churned`` per contact noted as having deleted the account (by a
    failed send or WeChat's notice) and not reported yet; the identity names this
    account, so it is this relation that ends (they wait until the account's own id
    is known)."""
    engine, staff, done = channel.pacer.engine, _self_id(account, channel), 0
    for row in unfriended.unreported(engine, channel.key) if staff else ():
        done += _ingest(
            host,
            account,
            IngestEvent(
                type="customer.churned",
                identity=Identity(CHANNEL, row["contact_id"], staff),
                idempotency_key=unfriended.churn_key(channel.key, row["contact_id"], row["detected_at"]),
                occurred_at=_iso(row["detected_at"]),
                payload={"reason": "deleted_account", "detail": row["reason"]},
            ),
        )
        unfriended.mark_reported(engine, channel.key, row["contact_id"])
    return done


def left(event: GatewayEvent, self_id: str) -> list[IngestEvent]:
    """``group.left`` per member who left; ``remover`` when someone else removed them.
    The key is the room, the member and the gateway's notice id (else its time)."""
    notice = event.id or str(int(event.timestamp))
    return [
        IngestEvent(
            type=GROUP_LEFT,
            identity=Identity(CHANNEL, member, self_id or None),
            idempotency_key=f"personal_wechat:leave:{event.room_id}:{member}:{notice}",
            occurred_at=_iso(event.timestamp),
            payload={
                "room_id": event.room_id,
                "remover": event.subject if event.subject and event.subject != member else None,
                "room_identity_channel": ROOM_CHANNEL,
            },
        )
        for member in event.members
        if member != self_id
    ]


def accept_waiting(host: Host, account: Any, channel: PersonalWeChatChannel) -> int:
    """Accept the waiting friend requests, oldest first, while the friends cap admits them."""
    state = host.state(account.tenant_id)
    done = 0
    for name, request_id in sorted(state.items(PENDING).items()):
        if not channel.pacer.admit(channel.key, "friend", channel.policy).ok:
            break
        gateway = channel.gateway
        try:
            request = gateway.friend_request(request_id)
            gateway.accept_friend(request_id)
        except SkippableError as exc:  # expired, withdrawn, already a friend: nothing to wait for
            log.info("friend request dropped: %s", exc.user_message)  # an expected end, not a fault
            channel.pacer.refund(channel.key, "friend")
            state.delete(name)
            continue
        except SopflowError:  # the gateway is down or the account restricted: try on a later run
            channel.pacer.refund(channel.key, "friend")
            raise
        state.delete(name)
        unfriended.forget(channel.pacer.engine, channel.key, request.contact_id, channel.pacer.clock())
        contact = gateway.contact(request.contact_id)
        staff = _self_id(account, channel) or None
        done += _ingest(
            host,
            account,
            IngestEvent(
                type="customer.added",
                identity=Identity(CHANNEL, contact.wxid, staff),
                idempotency_key=f"personal_wechat:friend:{hashlib.sha256(request_id.encode()).hexdigest()[:32]}",
                display_name=contact.name or None,
                # this account's relation (source: the request's scene) and the keys to other channels
                relations=(Relation(staff, source=_scene(request.scene), remark=contact.remark or None),)
                if staff
                else (),
                shared_identities=tuple(Identity("phone", p) for p in contact.phones),
                payload={
                    "hello": request.hello,
                    "scene": request.scene,
                    "alias": contact.alias,
                    "remark": contact.remark,
                    "gender": contact.gender,
                    "city": contact.city,
                },
            ),
        )
    return done


def _scene(scene: str) -> str | None:
    return f"scene:{scene}"[:100] if scene else None


def _self_id(account: Any, channel: PersonalWeChatChannel) -> str:
    """The account's own wxid: what the gateway said, else ``config.self_wxid``."""
    config = getattr(account, "config", None) or {}
    return str(getattr(channel.gateway, "self_id", "") or config.get("self_wxid") or "")


def _ingest(host: Host, account: Any, *events: IngestEvent) -> int:
    if not events:
        return 0
    outcomes = host.ingest(account.tenant_id, list(events))
    return sum(1 for o in outcomes if o.get("status") == "created")
