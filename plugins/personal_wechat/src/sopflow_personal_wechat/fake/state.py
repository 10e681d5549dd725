"""What a fake gateway knows: logged-in accounts, their contacts, friend
requests and rooms, every delivery, and the platform's risk control.

Both fakes (the puppet service and the WeChatFerry endpoint) serve this one
state, so one scenario reads the same over either wire protocol.  The record
of deliveries (``FakeAccount.sent``) is the witness the pacing tests count.

Risk control is a model, not WeChat's secret algorithm: an account that sends
more than ``Tolerance.per_minute`` messages in any 60 seconds, or more than
``Tolerance.daily`` in 24 hours, is refused (the gateway's restriction error)
and, after ``logout_after`` refusals, logged out.  (A touch of a text and nine
pictures is ten messages in a row, which people do.)
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from typing import Any

import attrs

from sopflow_personal_wechat.port import Contact, FriendRequest, Room


class Restricted(Exception):
    """The risk control refused a send."""


class LoggedOut(Exception):
    """The account is not logged in."""


class NotFriend(Exception):
    """The contact deleted the account: WeChat's notice is the exception's text."""


def not_friend_notice(name: str) -> str:
    """What WeChat shows in the chat of a contact who deleted the account, after a send."""
    return (
        f"{name}开启了朋友验证，你还不是他（她）朋友。请先发送朋友验证请求，对方验证通过后，才能聊天。"
        '<a href="weixin://findfriend/verifycontact">发送朋友验证</a>'
    )


@attrs.define
class Tolerance:
    per_minute: int = 20
    daily: int = 1000
    logout_after: int = 3


@attrs.define
class Delivery:
    id: str
    conversation_id: str
    kind: str
    content: str
    at: float


@attrs.define
class FakeAccount:
    """One WeChat account behind the gateway."""

    token: str
    self_id: str
    name: str
    clock: Callable[[], float]
    tolerance: Tolerance = attrs.field(factory=Tolerance)
    logged_in: bool = True
    qr_url: str = ""
    contacts: dict[str, Contact] = attrs.field(factory=dict)
    friend_requests: dict[str, FriendRequest] = attrs.field(factory=dict)
    accepted: list[str] = attrs.field(factory=list)
    #: accepted requests, kept so a replayed stream can show them again
    answered: dict[str, FriendRequest] = attrs.field(factory=dict)
    rooms: dict[str, Room] = attrs.field(factory=dict)
    sent: list[Delivery] = attrs.field(factory=list)
    refusals: int = 0
    events: list[tuple[str, dict[str, Any]]] = attrs.field(factory=list)
    streamed: int = 0  # events handed to a client stream so far
    #: real seconds a new event stream takes to open (a slow gateway or a loaded host)
    stream_delay: float = 0.0
    messages: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    #: contacts who deleted the account: a send to them is refused as WeChat refuses it
    deleted_by: set[str] = attrs.field(factory=set)


class GatewayState:
    """Every account of a fake gateway, safe to use from test and server threads."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.accounts: dict[str, FakeAccount] = {}
        self.changed = threading.Condition()
        self._ids = itertools.count(1)

    def next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}"

    def add_account(self, token: str, self_id: str, name: str = "", **tolerance: Any) -> FakeAccount:
        account = FakeAccount(token, self_id, name or self_id, self.clock, Tolerance(**tolerance))
        account.contacts[self_id] = Contact(self_id, name=account.name)
        self.accounts[token] = account
        return account

    def rotate_token(self, token: str, new_token: str) -> FakeAccount:
        """The operator issued a new token: the old one is refused from now on."""
        account = self.accounts.pop(token)
        account.token = new_token
        self.accounts[new_token] = account
        return account

    def account(self, token: str) -> FakeAccount | None:
        return self.accounts.get(token)

    def emit(self, account: FakeAccount, kind: str, payload: dict[str, Any]) -> None:
        with self.changed:
            account.events.append((kind, payload))
            self.changed.notify_all()

    def wait_event(
        self, account: FakeAccount, index: int, timeout: float
    ) -> tuple[str, dict[str, Any]] | None:
        """The ``index``-th event, waiting up to ``timeout`` (real seconds: a socket's wait)."""
        with self.changed:
            self.changed.wait_for(lambda: len(account.events) > index, timeout=timeout)
            return account.events[index] if len(account.events) > index else None

    # -- scenario steps a test (or a demo) drives ----------------------------------------------

    def add_contact(self, account: FakeAccount, contact: Contact) -> None:
        account.contacts[contact.wxid] = contact

    def request_friend(self, account: FakeAccount, contact: Contact, hello: str = "") -> FriendRequest:
        request = FriendRequest(self.next_id("fr"), contact.wxid, hello, "qrcode")
        account.friend_requests[request.id] = request
        account.contacts.setdefault(contact.wxid, attrs.evolve(contact, friend=False))
        self.emit(account, "friendship", {"friendshipId": request.id})
        return request

    def receive_message(
        self,
        account: FakeAccount,
        sender: str,
        text: str = "",
        room_id: str = "",
        kind: str = "text",
        **fields: Any,
    ) -> str:
        """A message from ``sender``: ``kind`` is text, image, file, voice, video, link,
        mini_program, location, emoji, contact_card, quote or other, with its fields
        (file: name/size/ext; link: title/url/description/thumb_url; mini_program:
        title/app_id/page_path/username; location: label/name/lat/lon; voice:
        duration_ms; video: seconds; emoji: md5/url; contact_card: contact_id/name;
        quote: quoted_id/quoted_text), rendered by each fake in its own protocol."""
        message_id = self.next_id("msg")
        account.messages[message_id] = {
            "id": message_id,
            "from": sender,
            "to": account.self_id,
            "room": room_id,
            "text": text,
            "timestamp": int(self.clock()),
            "kind": kind,
            "fields": fields,
        }
        self.emit(account, "message", {"messageId": message_id})
        return message_id

    def join_room(self, account: FakeAccount, room: Room, invitees: list[str], inviter: str = "") -> None:
        old = account.rooms.get(room.id, room)
        members = tuple(dict.fromkeys([*old.member_ids, *room.member_ids, *invitees]))
        account.rooms[room.id] = attrs.evolve(room, member_ids=members)
        self.emit(
            account,
            "room-join",
            {
                "roomId": room.id,
                "inviteeIdList": invitees,
                "inviterId": inviter,
                "timestamp": int(self.clock()),
            },
        )

    def leave_room(self, account: FakeAccount, room_id: str, members: list[str], remover: str = "") -> None:
        """``members`` left ``room_id``: removed by ``remover`` (the account's own wxid when
        the account removed them), or quit by themselves when ``remover`` is empty."""
        room = account.rooms[room_id]
        kept = tuple(m for m in room.member_ids if m not in members)
        account.rooms[room_id] = attrs.evolve(room, member_ids=kept)
        self.emit(
            account,
            "room-leave",
            {
                "roomId": room_id,
                "removeeIdList": members,
                "removerId": remover or (members[0] if len(members) == 1 else ""),
                "timestamp": int(self.clock()),
            },
        )

    def delete_account(self, account: FakeAccount, wxid: str) -> None:
        """The contact deletes the account (WeChat tells nobody): sends to them now fail."""
        account.deleted_by.add(wxid)

    def logout(self, account: FakeAccount, reason: str = "logged out") -> None:
        account.logged_in = False
        account.qr_url = f"https://login.weixin.qq.com/l/{self.next_id('qr')}"
        self.emit(account, "logout", {"contactId": account.self_id, "data": reason})
        self.emit(account, "scan", {"qrcode": account.qr_url, "status": 2})

    def login(self, account: FakeAccount) -> None:
        account.logged_in, account.qr_url, account.refusals = True, "", 0
        self.emit(account, "login", {"contactId": account.self_id})

    def heartbeat(self, account: FakeAccount) -> None:
        self.emit(account, "heartbeat", {"data": json.dumps({"at": self.clock()})})

    # -- what the wire servers call ------------------------------------------------------------

    def require_login(self, account: FakeAccount) -> None:
        if not account.logged_in:
            raise LoggedOut(f"{account.self_id} is not logged in: scan {account.qr_url}")

    def deliver(self, account: FakeAccount, conversation_id: str, kind: str, content: str) -> str:
        """One send through the risk control; the delivery's message id."""
        self.require_login(account)
        now = self.clock()
        day = [d for d in account.sent if d.at > now - 86_400]
        minute = [d for d in day if d.at > now - 60]
        if len(minute) >= account.tolerance.per_minute or len(day) >= account.tolerance.daily:
            account.refusals += 1
            if account.refusals >= account.tolerance.logout_after:
                self.logout(account, "restricted by risk control")
            raise Restricted("操作过于频繁，请稍后再试 (the account sends too often)")
        known = conversation_id in account.contacts or conversation_id in account.rooms
        if not known:
            raise KeyError(conversation_id)
        if conversation_id in account.deleted_by:
            raise NotFriend(not_friend_notice(account.contacts[conversation_id].name or conversation_id))
        delivery = Delivery(self.next_id("sent"), conversation_id, kind, content, now)
        account.sent.append(delivery)
        return delivery.id

    def accept(self, account: FakeAccount, request_id: str) -> None:
        self.require_login(account)
        request = account.friend_requests.pop(request_id)
        account.answered[request_id] = request
        contact = account.contacts[request.contact_id]
        account.contacts[contact.wxid] = attrs.evolve(contact, friend=True)
        account.deleted_by.discard(contact.wxid)  # added again
        account.accepted.append(contact.wxid)
