"""The gateway port: the one small protocol the channel and the intake speak.

Personal WeChat has no official API; automation goes through a gateway (a
Wechaty puppet service, WeChatFerry).  Each adapter (``adapters/``) turns its
wire protocol into this port, so the channel, the intake and the pacing never
know which gateway is behind an account.  Errors come out as the SDK's error
tree: a gateway that cannot be reached is ``GatewayUnreachable`` (retriable,
nothing sent), a refused token ``GatewayAuthRejected`` (fatal, fix the
setting), the platform's risk control ``GatewayRestricted``, a logged-out
account ``GatewayLoggedOut``, and an answer lost after the request left
``AmbiguousSendError`` (a personal-account send has no idempotency key).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

import attrs
from sopflow_sdk import FatalError, RetriableError

EventKind = Literal[
    "message",
    "friend_request",
    "room_join",
    "room_leave",
    "unfriended",
    "login",
    "logout",
    "heartbeat",
    "scan",
]
#: What a received message is (``GatewayEvent.message_kind``), whichever gateway said it.
MessageKind = Literal[
    "text",
    "image",
    "file",
    "voice",
    "video",
    "link",
    "mini_program",
    "location",
    "emoji",
    "contact_card",
    "other",
]
#: What a send can carry: one call each.
PayloadKind = Literal["text", "image", "file", "link", "miniprogram"]


class GatewayUnreachable(RetriableError):
    """The gateway did not answer (refused, wrong protocol on the port, down): nothing was sent."""


class GatewayAuthRejected(FatalError):
    """The gateway refused the account's token: fix ``secrets.token``."""


class GatewayRestricted(RetriableError):
    """The platform's risk control refused the call (操作过于频繁, a send restriction)."""


class GatewayLoggedOut(RetriableError):
    """The account is not logged in: someone has to scan the QR code again."""


#: WeChat's words in a chat (and a puppet's send error) when the contact deleted the account
NOT_FRIEND = re.compile(r"开启了朋友验证，?你还不是他[（(]她[)）]朋友")


class NotAFriend(FatalError):
    """The contact deleted the account (WeChat: 开启了朋友验证，你还不是他（她）朋友): a send
    to them cannot succeed until they add the account again, so it is never retried."""

    def __init__(self, contact_id: str, detail: str = "") -> None:
        super().__init__(
            f"{contact_id} deleted this WeChat account (no longer a friend); the send is not retried",
            internal_message=f"not a friend: {contact_id}: {detail}"[:300],
        )
        self.contact_id, self.detail = contact_id, detail


@attrs.frozen
class Contact:
    """A contact's payload; gender and city only when the gateway knows them."""

    wxid: str
    name: str = ""
    alias: str = ""
    remark: str = ""
    gender: Literal["male", "female", ""] = ""
    city: str = ""
    friend: bool = True
    #: phone numbers the gateway knows (Wechaty's ``phone``): shared keys to other channels
    phones: tuple[str, ...] = ()


@attrs.frozen
class FriendRequest:
    id: str
    contact_id: str
    hello: str = ""
    scene: str = ""


@attrs.frozen
class Room:
    id: str
    topic: str = ""
    owner_id: str = ""
    member_ids: tuple[str, ...] = ()


@attrs.frozen
class LoginState:
    """``qr_url`` is the QR login link while logged out (when the gateway has one)."""

    logged_in: bool
    self_id: str = ""
    qr_url: str = ""


@attrs.frozen
class GatewayEvent:
    """One event from the stream.  ``subject`` is who it is about: a message's
    sender, a friend request's contact, a join's inviter, a leave's remover (empty
    when a member left by themselves or the gateway does not say), the contact of
    ``unfriended`` (a contact who deleted the account).  A message's
    ``message_kind`` says what it is and ``fields`` holds what the gateway gives
    for that kind (a link's title and url, a file's name, a handle to fetch media
    with: media is never downloaded here)."""

    kind: EventKind
    id: str = ""
    subject: str = ""
    room_id: str = ""
    text: str = ""
    members: tuple[str, ...] = ()
    timestamp: float = 0.0
    qr_url: str = ""
    message_kind: MessageKind = "text"
    fields: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class Payload:
    """One thing to send: ``text`` or a card/media described by its fields."""

    kind: PayloadKind
    text: str = ""
    url: str = ""
    title: str = ""
    description: str = ""
    media_id: str = ""


@runtime_checkable
class GatewayPort(Protocol):
    """What an adapter offers.  ``can_post_moments`` is a declared capability: a
    gateway that cannot post moments says so, and the channel skips the touch."""

    name: str
    can_post_moments: bool

    def login_state(self) -> LoginState: ...

    def contacts(self) -> list[str]: ...

    def contact(self, wxid: str) -> Contact: ...

    def friend_requests(self) -> list[FriendRequest]: ...

    def accept_friend(self, request_id: str) -> None: ...

    def send(self, conversation_id: str, payload: Payload) -> str:
        """Send to a contact (wxid) or a room (``…@chatroom``); the gateway's message id."""
        ...

    def post_moment(self, text: str, media: Sequence[Payload] = ()) -> str: ...

    def rooms(self) -> list[str]: ...

    def room(self, room_id: str) -> Room: ...

    def invite(self, room_id: str, wxid: str) -> None: ...

    def events(self, idle_timeout: float = 1.0) -> Iterator[GatewayEvent]:
        """The event stream; it ends after ``idle_timeout`` seconds without an event."""
        ...

    def close(self) -> None: ...
