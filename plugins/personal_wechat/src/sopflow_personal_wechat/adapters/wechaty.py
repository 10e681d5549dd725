"""The Wechaty Puppet Service adapter: Wechaty's gRPC protocol, revision 0.20.

It speaks ``wechaty.Puppet`` with Wechaty's own published Python stubs
(``wechaty-grpc`` 0.20.19: betterproto messages, a grpclib client), so no
message is written by hand.  0.20 is the revision those stubs carry; the
calls used here (Ding, Contact*, Friendship*, MessageSend*, Room*, Event) keep
their numbers and fields in the newer 1.x ``.proto``.  The token travels as
``authorization: Wechaty <token>`` metadata; ``tls=False`` is the
documented ``WECHATY_PUPPET_SERVICE_NO_SSL_UNSAFE_CLIENT`` switch.

grpclib is asyncio; the channel and the intake are synchronous, so each
adapter runs one event loop in a daemon thread and waits on each call with a
deadline.  A call opens its own HTTP/2 connection: sends are seconds apart
(pacing), and a fresh connection makes "the gateway went down" a plain
connection refusal rather than a half-dead stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import threading
import weakref
from collections.abc import Coroutine, Iterator, Sequence
from typing import Any

from grpclib.client import Channel as GrpcChannel
from grpclib.const import Status
from grpclib.exceptions import GRPCError, ProtocolError, StreamTerminatedError
from sopflow_sdk import AmbiguousSendError, Secret, SkippableError
from wechaty_grpc.wechaty import puppet as pb

from sopflow_personal_wechat.adapters import wechaty_messages as wm
from sopflow_personal_wechat.port import (
    NOT_FRIEND,
    Contact,
    FriendRequest,
    GatewayAuthRejected,
    GatewayEvent,
    GatewayLoggedOut,
    GatewayRestricted,
    GatewayUnreachable,
    LoginState,
    NotAFriend,
    Payload,
    Room,
)

#: how long the stream's first message may take (Wechaty's client waits as long)
CONNECT_WAIT = 5.0
EVENT_KINDS = {
    pb.EventType.EVENT_TYPE_MESSAGE: "message",
    pb.EventType.EVENT_TYPE_FRIENDSHIP: "friend_request",
    pb.EventType.EVENT_TYPE_ROOM_JOIN: "room_join",
    pb.EventType.EVENT_TYPE_ROOM_LEAVE: "room_leave",
    pb.EventType.EVENT_TYPE_LOGIN: "login",
    pb.EventType.EVENT_TYPE_LOGOUT: "logout",
    pb.EventType.EVENT_TYPE_HEARTBEAT: "heartbeat",
    pb.EventType.EVENT_TYPE_SCAN: "scan",
}
GENDERS = {pb.ContactGender.CONTACT_GENDER_MALE: "male", pb.ContactGender.CONTACT_GENDER_FEMALE: "female"}
#: seconds a restricted account is told to wait when the gateway gives no time
RESTRICTED_RETRY = 3600


class WechatyGateway:
    """``WechatyGateway("host:port", Secret(token), tls=False)``."""

    name = "wechaty"
    #: puppet.proto has no moments (朋友圈) call
    can_post_moments = False

    def __init__(self, endpoint: str, token: Secret, *, tls: bool = True, timeout: float = 10.0) -> None:
        host, _, port = endpoint.rpartition(":")
        self.host, self.port, self.tls, self.timeout = host.strip("[]"), int(port), tls, timeout
        self._token = token
        self.self_id = ""
        self._unary: GrpcChannel | None = None  # the unary calls' connection (``_call``)
        self._io = _LoopThread()
        self._loop = self._io.loop
        # a gateway nobody closed still closes its connections when collected or at exit
        self._finalizer = weakref.finalize(self, self._io.shutdown)

    def __repr__(self) -> str:
        return f"<WechatyGateway {self.host}:{self.port} tls={self.tls}>"

    # -- plumbing ------------------------------------------------------------------------------

    def _channel(self) -> GrpcChannel:
        channel = GrpcChannel(self.host, self.port, ssl=ssl.create_default_context() if self.tls else None)
        self._io.channels.add(channel)
        return channel

    def _metadata(self) -> dict[str, str]:
        return {"authorization": f"Wechaty {self._token.reveal()}"}

    def _run(self, coro: Coroutine[Any, Any, Any], *, sending: bool = False) -> Any:
        try:
            return asyncio.run_coroutine_threadsafe(coro, self._loop).result(self.timeout + 1)
        except GRPCError as exc:
            raise self._grpc_error(exc) from None
        except TimeoutError:
            if sending:
                raise AmbiguousSendError(
                    "the puppet service took the send and did not answer in time: "
                    "it may have been delivered, so it is not sent again",
                    internal_message="wechaty send: deadline exceeded",
                ) from None
            raise GatewayUnreachable(
                f"the puppet service at config.endpoint ({self.host}:{self.port}) did not answer in time",
                retry_after=60,
            ) from None
        except (ConnectionError, OSError, ProtocolError, StreamTerminatedError, ssl.SSLError) as exc:
            raise self._unreachable(exc) from None

    def _unreachable(self, exc: BaseException) -> GatewayUnreachable:
        return GatewayUnreachable(
            f"no Wechaty puppet service answers at config.endpoint ({self.host}:{self.port}): "
            f"{type(exc).__name__}; check the endpoint, the tls switch and that the service runs",
            retry_after=60,
        )

    def _grpc_error(self, exc: GRPCError) -> Exception:
        detail = str(exc.message or "")
        if NOT_FRIEND.search(detail):  # WeChat's own words when the contact deleted the account
            return NotAFriend("", detail)
        if exc.status is Status.UNAUTHENTICATED:
            return GatewayAuthRejected(
                "the puppet service refused secrets.token: set the account's current token"
            )
        if exc.status is Status.RESOURCE_EXHAUSTED:
            return GatewayRestricted(f"WeChat restricted the account: {detail}", retry_after=RESTRICTED_RETRY)
        if exc.status is Status.FAILED_PRECONDITION and "logged out" in detail:
            return GatewayLoggedOut(
                "the account is logged out of WeChat: scan its QR code again", retry_after=300
            )
        if exc.status is Status.NOT_FOUND:
            return SkippableError(f"the gateway does not know that contact or room: {detail}")
        if exc.status in (Status.UNAVAILABLE, Status.UNIMPLEMENTED):
            return GatewayUnreachable(
                f"the puppet service cannot do this now ({exc.status.name})", retry_after=60
            )
        return GatewayUnreachable(f"the puppet service failed ({exc.status.name}): {detail}", retry_after=60)

    async def _call(self, method: str, **kwargs: Any) -> Any:
        # One HTTP/2 connection for every unary call (made on the loop's thread, used
        # only there): a new connection per call cost a TCP and HTTP/2 handshake per
        # send.  grpclib reconnects on the next call once the connection is lost; on a
        # connection failure it is dropped here too, so the next call starts afresh.
        if self._unary is None:
            self._unary = self._channel()
        try:
            stub = wm.Puppet(self._unary, metadata=self._metadata(), timeout=self.timeout)
            return await getattr(stub, method)(**kwargs)
        except (ConnectionError, OSError, ProtocolError, StreamTerminatedError, ssl.SSLError):
            self._drop_unary()
            raise

    def _drop_unary(self) -> None:
        if self._unary is not None:
            self._io.close(self._unary)
            self._unary = None

    def call(self, method: str, *, sending: bool = False, **kwargs: Any) -> Any:
        return self._run(self._call(method, **kwargs), sending=sending)

    # -- the port ------------------------------------------------------------------------------

    def login_state(self) -> LoginState:
        """Logged in when the contact list answers (0.20 has no CurrentUser call: the
        account's own id comes with the login event, remembered in ``self_id``)."""
        try:
            self.call("contact_list")
            return LoginState(True, self.self_id)
        except GatewayLoggedOut:
            return LoginState(False, qr_url=self.call("contact_self_qr_code").qrcode)

    def contacts(self) -> list[str]:
        return list(self.call("contact_list").ids)

    def contact(self, wxid: str) -> Contact:
        c = self.call("contact_payload", id=wxid)
        gender = GENDERS.get(c.gender, "")
        return Contact(
            c.id,
            name=c.name,
            alias=c.weixin,
            remark=c.alias,
            gender=gender,
            city=c.city,
            friend=c.friend,
            phones=tuple(p for p in c.phone if p),
        )

    def friend_requests(self) -> list[FriendRequest]:
        return []  # puppet.proto 0.20 lists none: requests arrive as friendship events

    def friend_request(self, request_id: str) -> FriendRequest:
        f = self.call("friendship_payload", id=request_id)
        return FriendRequest(
            f.id, f.contact_id, f.hello, str(f.scene.name if hasattr(f.scene, "name") else f.scene)
        )

    def accept_friend(self, request_id: str) -> None:
        self.call("friendship_accept", id=request_id)

    def send(self, conversation_id: str, payload: Payload) -> str:
        try:
            return self._send(conversation_id, payload)
        except NotAFriend as exc:  # the service's error names no one: the conversation is who
            raise NotAFriend(conversation_id, exc.detail) from None

    def _send(self, conversation_id: str, payload: Payload) -> str:
        if payload.kind == "text":
            reply = self.call(
                "message_send_text", sending=True, conversation_id=conversation_id, text=payload.text
            )
        elif payload.kind == "link":
            card = {
                "title": payload.title or payload.url,
                "url": payload.url,
                "description": payload.description,
            }
            reply = self.call(
                "message_send_url",
                sending=True,
                conversation_id=conversation_id,
                url_link=json.dumps(card, ensure_ascii=False),
            )
        elif payload.kind == "miniprogram":
            card = {
                "title": payload.title,
                "pagePath": payload.url,
                "appid": payload.media_id,
                "description": payload.description,
            }
            reply = self.call(
                "message_send_mini_program",
                sending=True,
                conversation_id=conversation_id,
                mini_program=json.dumps(card, ensure_ascii=False),
            )
        else:  # image, file, video: a FileBox by URL (FileBox's JSON form, boxType 2)
            name = payload.url.rsplit("/", 1)[-1] or payload.media_id
            box = {"boxType": 2, "name": name, "remoteUrl": payload.url}
            reply = self.call(
                "message_send_file", sending=True, conversation_id=conversation_id, filebox=json.dumps(box)
            )
        return reply.id or ""

    def post_moment(self, text: str, media: Sequence[Payload] = ()) -> str:
        raise SkippableError("the Wechaty puppet service protocol has no moments (朋友圈) call")

    def rooms(self) -> list[str]:
        return list(self.call("room_list").ids)

    def room(self, room_id: str) -> Room:
        r = self.call("room_payload", id=room_id)
        return Room(r.id, r.topic, r.owner_id, tuple(r.member_ids))

    def invite(self, room_id: str, wxid: str) -> None:
        self.call("room_add", id=room_id, contact_id=wxid)

    def events(self, idle_timeout: float = 1.0) -> Iterator[GatewayEvent]:
        """Events until none came for ``idle_timeout`` seconds (the stream is then closed)."""
        queue: asyncio.Queue[Any] = asyncio.Queue()

        async def pump() -> None:
            channel = self._channel()
            try:
                stub = wm.Puppet(channel, metadata=self._metadata())
                async for event in stub.event():
                    await queue.put(event)
            except Exception as exc:  # handed to the reader, which maps it
                await queue.put(exc)
            finally:
                self._io.close(channel)

        task = asyncio.run_coroutine_threadsafe(pump(), self._loop)
        # idle time counts once the stream is open: Wechaty's service sends a heartbeat
        # first, and its own client waits up to 5 s for it (a connect on a loaded host)
        wait = max(idle_timeout, min(CONNECT_WAIT, self.timeout))
        try:
            while True:
                try:
                    item = self._run(asyncio.wait_for(queue.get(), wait))
                    wait = idle_timeout
                except GatewayUnreachable:
                    return  # idle
                if isinstance(item, GRPCError):
                    raise self._grpc_error(item)
                if isinstance(item, Exception):
                    raise self._unreachable(item)
                event = self._event(item)
                if event is not None:
                    yield event
        finally:
            task.cancel()

    def _event(self, item: pb.EventResponse) -> GatewayEvent | None:
        kind = EVENT_KINDS.get(item.type)
        if kind is None:
            return None
        data = json.loads(item.payload or "{}")
        if kind == "message":
            m = self.call("message_payload", id=data["messageId"])
            message_kind, text, fields = wm.decode(self.call, m)
            return GatewayEvent(
                "message",
                m.id,
                m.from_id,
                m.room_id,
                text,
                timestamp=float(m.timestamp),
                message_kind=message_kind,
                fields=fields,
            )
        if kind == "friend_request":
            return GatewayEvent("friend_request", data["friendshipId"])
        if kind in ("room_join", "room_leave"):  # EventRoomJoinPayload / EventRoomLeavePayload
            members = data.get("inviteeIdList") or data.get("removeeIdList") or []
            return GatewayEvent(
                kind,
                subject=data.get("inviterId") or data.get("removerId") or "",
                room_id=data["roomId"],
                members=tuple(members),
                timestamp=float(data.get("timestamp") or 0),
            )
        if kind == "scan":
            return GatewayEvent("scan", qr_url=data.get("qrcode", ""))
        if kind == "login":
            self.self_id = data.get("contactId", "")
        return GatewayEvent(kind, subject=data.get("contactId", ""), text=str(data.get("data", "")))

    def close(self) -> None:
        self._unary = None
        self._finalizer()


class _LoopThread:
    """The gateway's event loop on its own thread, and the connections made on it.

    Kept apart from the gateway so that ``weakref.finalize`` can shut it down
    without holding the gateway alive."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.channels: set[GrpcChannel] = set()
        self.thread = threading.Thread(target=self.loop.run_forever, name="wechaty-gateway", daemon=True)
        self.thread.start()

    def close(self, channel: GrpcChannel) -> None:
        self.channels.discard(channel)
        channel.close()

    async def _cancel_all(self) -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)  # their ``finally`` closes streams
        for channel in list(self.channels):
            self.close(channel)

    def shutdown(self) -> None:
        """Cancel what runs, close every connection, stop and close the loop."""
        if self.loop.is_closed():
            return
        if threading.current_thread() is self.thread:  # collected on the loop itself: just stop it
            self.loop.stop()
            return
        if self.thread.is_alive():
            with contextlib.suppress(TimeoutError, RuntimeError):
                asyncio.run_coroutine_threadsafe(self._cancel_all(), self.loop).result(5)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
        if not self.loop.is_running():
            self.loop.close()
