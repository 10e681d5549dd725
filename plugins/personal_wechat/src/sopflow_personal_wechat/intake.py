"""The gateway's event stream as sopflow events.

- A friend request is accepted when the account's ``auto_accept_friends`` says
  so, within the pacing's own daily friends cap; it becomes ``customer.added``
  (identity channel ``personal_wechat``, staff = the account's own wxid), so
  new-customer SOPs start as they do for WeCom.  A request the cap holds back
  waits in plugin state and is accepted on a later run, in arrival order.
- A message from a contact becomes ``message.received`` (keyword rules, replies
  for reply-wait steps); the account's own messages are not the customer's.
- A room join becomes ``group.joined`` for each new member.
- Login, logout, scan (QR URL) and heartbeat update the account's health row;
  a logout pauses its sends until the re-login.

Idempotency keys come from the gateway's own ids, so an event seen twice (a
reconnecting stream) is a duplicate, not a second enrolment.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from typing import Any

from sopflow_sdk import Host, Identity, IngestEvent, Relation, SkippableError, SopflowError

from sopflow_personal_wechat.channel import CHANNEL, ROOM_CHANNEL, PersonalWeChatChannel
from sopflow_personal_wechat.port import GatewayEvent

log = logging.getLogger("sopflow_personal_wechat")

#: plugin-state prefix of friend requests waiting for the daily friends cap
PENDING = "pending_friend:"
GROUP_JOINED = "group.joined"


def _iso(ts: float) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts else None


def run(host: Host, account: Any, channel: PersonalWeChatChannel, idle_timeout: float = 1.0) -> int:
    """Accept waiting friend requests, then read the stream until it is idle; events ingested."""
    ingested = accept_waiting(host, account, channel)
    for event in channel.gateway.events(idle_timeout=idle_timeout):
        ingested += handle(host, account, channel, event)
    return ingested


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
    return 0


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
