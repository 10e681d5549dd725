"""A fake Wechaty Puppet Service: Wechaty's gRPC ``wechaty.Puppet`` service on 127.0.0.1.

The messages are Wechaty's own (``wechaty-grpc`` 0.20.19: betterproto classes
generated from ``wechaty/puppet.proto``) and the server is grpclib's, so the
bytes on the socket are the protocol's, not ours.  It answers the calls the
adapter makes, checks the token the way the puppet service does (the
``authorization: Wechaty <token>`` metadata), streams events as
``EventResponse(type, payload=JSON)`` and refuses sends the risk control
refuses (``RESOURCE_EXHAUSTED``).  Faults for tests: ``fail_next``,
``stall_next`` (the call is carried out, the answer never comes) and ``stop``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from grpclib.const import Cardinality, Handler, Status
from grpclib.exceptions import GRPCError
from grpclib.server import Server, Stream
from wechaty_grpc.wechaty import puppet as pb

from sopflow_personal_wechat.adapters import wechaty_messages as wm
from sopflow_personal_wechat.fake.clock import FakeClock
from sopflow_personal_wechat.fake.state import FakeAccount, GatewayState, LoggedOut, NotFriend, Restricted

EVENT_TYPES = {
    "heartbeat": pb.EventType.EVENT_TYPE_HEARTBEAT,
    "message": pb.EventType.EVENT_TYPE_MESSAGE,
    "friendship": pb.EventType.EVENT_TYPE_FRIENDSHIP,
    "room-join": pb.EventType.EVENT_TYPE_ROOM_JOIN,
    "room-leave": pb.EventType.EVENT_TYPE_ROOM_LEAVE,
    "scan": pb.EventType.EVENT_TYPE_SCAN,
    "login": pb.EventType.EVENT_TYPE_LOGIN,
    "logout": pb.EventType.EVENT_TYPE_LOGOUT,
}
T = pb.MessageType
#: the fake's message kinds as puppet.proto's MessageType (a quote is text to a puppet)
MESSAGE_TYPES = {
    "text": T.MESSAGE_TYPE_TEXT,
    "quote": T.MESSAGE_TYPE_TEXT,
    "image": T.MESSAGE_TYPE_IMAGE,
    "file": T.MESSAGE_TYPE_ATTACHMENT,
    "voice": T.MESSAGE_TYPE_AUDIO,
    "video": T.MESSAGE_TYPE_VIDEO,
    "link": T.MESSAGE_TYPE_URL,
    "mini_program": T.MESSAGE_TYPE_MINI_PROGRAM,
    "location": T.MESSAGE_TYPE_LOCATION,
    "emoji": T.MESSAGE_TYPE_EMOTICON,
    "contact_card": T.MESSAGE_TYPE_CONTACT,
    "other": T.MESSAGE_TYPE_TRANSFER,
}
GENDER = {"male": pb.ContactGender.CONTACT_GENDER_MALE, "female": pb.ContactGender.CONTACT_GENDER_FEMALE}
#: real seconds before a stream's end within which its events are offered again
RESEND_WINDOW = 0.5
#: the payload of the heartbeat that opens every event stream (as Wechaty's service words it)
CONNECTED = json.dumps({"data": "Wechaty Puppet gRPC stream connect successfully"})
#: The calls a send is made of (what ``sent`` counts).
SEND_METHODS = ("MessageSendText", "MessageSendFile", "MessageSendUrl", "MessageSendMiniProgram")


class FakePuppetService:
    """``with FakePuppetService() as fake:`` serves on ``fake.endpoint`` until the block ends."""

    def __init__(self, clock: Callable[[], float] | None = None, state: GatewayState | None = None) -> None:
        self.clock = clock or FakeClock()
        self.state = state or GatewayState(self.clock)
        self.calls: list[str] = []
        self._faults: dict[str, tuple[str, Status, str]] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-puppet", daemon=True)
        self._server: Server | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def add_account(self, token: str, self_id: str, name: str = "", **tolerance: Any) -> FakeAccount:
        return self.state.add_account(token, self_id, name, **tolerance)

    def fail_next(self, method: str, status: Status, message: str) -> None:
        self._faults[method] = ("fail", status, message)

    def stall_next(self, method: str) -> None:
        """Carry out the next ``method`` call, then never answer it."""
        self._faults[method] = ("stall", Status.OK, "")

    def start(self) -> FakePuppetService:
        self._thread.start()

        async def serve() -> Server:
            server = Server([self])  # made on its loop: grpclib binds the running loop
            await server.start("127.0.0.1", self.port)
            return server

        self._server = asyncio.run_coroutine_threadsafe(serve(), self._loop).result(10)
        self.port = self._server._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    def stop(self) -> None:
        """Close the port (a gateway that went down); ``start`` cannot reopen this object."""
        server, self._server = self._server, None
        if server is not None:

            async def shut() -> None:  # on the server's loop: asyncio is not thread-safe
                server.close()
                await server.wait_closed()

            asyncio.run_coroutine_threadsafe(shut(), self._loop).result(10)

    def __enter__(self) -> FakePuppetService:
        return self if self._thread.is_alive() else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    # -- grpclib's service interface -----------------------------------------------------------

    def __mapping__(self) -> dict[str, Handler]:
        unary = Cardinality.UNARY_UNARY
        table: dict[str, tuple[Any, Cardinality, type, type]] = {
            "Ding": (self.ding, unary, pb.DingRequest, pb.DingResponse),
            "ContactList": (self.contact_list, unary, pb.ContactListRequest, pb.ContactListResponse),
            "ContactPayload": (
                self.contact_payload,
                unary,
                pb.ContactPayloadRequest,
                pb.ContactPayloadResponse,
            ),
            "ContactSelfQRCode": (
                self.self_qr,
                unary,
                pb.ContactSelfQrCodeRequest,
                pb.ContactSelfQrCodeResponse,
            ),
            "FriendshipPayload": (
                self.friendship_payload,
                unary,
                pb.FriendshipPayloadRequest,
                pb.FriendshipPayloadResponse,
            ),
            "FriendshipAccept": (
                self.friendship_accept,
                unary,
                pb.FriendshipAcceptRequest,
                pb.FriendshipAcceptResponse,
            ),
            "MessagePayload": (
                self.message_payload,
                unary,
                pb.MessagePayloadRequest,
                pb.MessagePayloadResponse,
            ),
            "MessageUrl": (self.message_url, unary, pb.MessageUrlRequest, pb.MessageUrlResponse),
            "MessageMiniProgram": (
                self.message_mini_program,
                unary,
                pb.MessageMiniProgramRequest,
                pb.MessageMiniProgramResponse,
            ),
            "MessageContact": (
                self.message_contact,
                unary,
                pb.MessageContactRequest,
                pb.MessageContactResponse,
            ),
            "MessageLocation": (
                self.message_location,
                unary,
                wm.MessageLocationRequest,
                wm.MessageLocationResponse,
            ),
            "MessageSendText": (self.send_text, unary, pb.MessageSendTextRequest, pb.MessageSendTextResponse),
            "MessageSendFile": (self.send_file, unary, pb.MessageSendFileRequest, pb.MessageSendFileResponse),
            "MessageSendUrl": (self.send_url, unary, pb.MessageSendUrlRequest, pb.MessageSendUrlResponse),
            "MessageSendMiniProgram": (
                self.send_mini,
                unary,
                pb.MessageSendMiniProgramRequest,
                pb.MessageSendMiniProgramResponse,
            ),
            "RoomList": (self.room_list, unary, pb.RoomListRequest, pb.RoomListResponse),
            "RoomPayload": (self.room_payload, unary, pb.RoomPayloadRequest, pb.RoomPayloadResponse),
            "RoomAdd": (self.room_add, unary, pb.RoomAddRequest, pb.RoomAddResponse),
            "Event": (self.event, Cardinality.UNARY_STREAM, pb.EventRequest, pb.EventResponse),
        }
        return {
            f"/wechaty.Puppet/{name}": Handler(self._wrap(name, fn, card), card, req, resp)
            for name, (fn, card, req, resp) in table.items()
        }

    def _wrap(self, name: str, fn: Any, cardinality: Cardinality) -> Any:
        async def handle(stream: Stream) -> None:
            self.calls.append(name)
            account = self._authorize(stream)
            request = await stream.recv_message()
            if cardinality is Cardinality.UNARY_STREAM:
                await fn(stream, account, request)
                return
            fault = self._faults.pop(name, None)
            if fault and fault[0] == "fail":
                raise GRPCError(fault[1], fault[2])
            try:
                response = fn(account, request)
            except Restricted as exc:
                raise GRPCError(Status.RESOURCE_EXHAUSTED, str(exc)) from None
            except LoggedOut as exc:
                raise GRPCError(Status.FAILED_PRECONDITION, f"logged out: {exc}") from None
            except KeyError as exc:
                raise GRPCError(Status.NOT_FOUND, f"unknown id {exc}") from None
            except NotFriend as exc:  # the puppet's send error carries WeChat's notice
                raise GRPCError(Status.FAILED_PRECONDITION, str(exc)) from None
            if fault and fault[0] == "stall":
                await asyncio.sleep(3600)  # the call happened; its answer is lost
            await stream.send_message(response)

        return handle

    def _authorize(self, stream: Stream) -> FakeAccount:
        header = str(stream.metadata.get("authorization", "")) if stream.metadata else ""
        scheme, _, token = header.partition(" ")
        account = self.state.account(token) if scheme.lower() == "wechaty" else None
        if account is None:
            raise GRPCError(Status.UNAUTHENTICATED, "token not found or not valid")
        return account

    # -- the calls -----------------------------------------------------------------------------

    def ding(self, account: FakeAccount, request: pb.DingRequest) -> pb.DingResponse:
        self.state.emit(account, "dong", {"data": request.data})
        return pb.DingResponse()

    def self_qr(self, account: FakeAccount, request: Any) -> Any:
        return pb.ContactSelfQrCodeResponse(qrcode=account.qr_url)

    def contact_list(self, account: FakeAccount, request: Any) -> pb.ContactListResponse:
        self.state.require_login(account)
        return pb.ContactListResponse(ids=[c for c, v in account.contacts.items() if v.friend])

    def contact_payload(self, account: FakeAccount, request: Any) -> pb.ContactPayloadResponse:
        c = account.contacts[request.id]
        return pb.ContactPayloadResponse(
            id=c.wxid,
            name=c.name,
            alias=c.remark,
            weixin=c.alias,
            city=c.city,
            friend=c.friend,
            phone=list(c.phones),
            gender=GENDER.get(c.gender, pb.ContactGender.CONTACT_GENDER_UNSPECIFIED),
            type=pb.ContactType.CONTACT_TYPE_PERSONAL,
        )

    def friendship_payload(self, account: FakeAccount, request: Any) -> pb.FriendshipPayloadResponse:
        fr = account.friend_requests[request.id]
        return pb.FriendshipPayloadResponse(
            id=fr.id,
            contact_id=fr.contact_id,
            hello=fr.hello,
            type=pb.FriendshipType.FRIENDSHIP_TYPE_RECEIVE,
            scene=pb.FriendshipSceneType.FRIENDSHIP_SCENE_TYPE_QRCODE,
        )

    def friendship_accept(self, account: FakeAccount, request: Any) -> pb.FriendshipAcceptResponse:
        self.state.accept(account, request.id)
        return pb.FriendshipAcceptResponse()

    def message_payload(self, account: FakeAccount, request: Any) -> pb.MessagePayloadResponse:
        m = account.messages[request.id]
        kind, fields = m.get("kind", "text"), m.get("fields", {})
        text = m["text"] or (fields.get("label", "") if kind == "location" else "")
        return pb.MessagePayloadResponse(
            id=m["id"],
            filename=fields.get("name", "") if kind in ("file", "image", "video", "voice") else "",
            text=text,
            timestamp=m["timestamp"],
            type=MESSAGE_TYPES[kind],
            from_id=m["from"],
            room_id=m["room"],
            to_id=m["to"] if not m["room"] else "",
        )

    def message_url(self, account: FakeAccount, request: Any) -> pb.MessageUrlResponse:
        f = account.messages[request.id]["fields"]
        card = {
            "title": f.get("title", ""),
            "url": f.get("url", ""),
            "description": f.get("description", ""),
            "thumbnailUrl": f.get("thumb_url", ""),
        }
        return pb.MessageUrlResponse(url_link=json.dumps(card, ensure_ascii=False))

    def message_mini_program(self, account: FakeAccount, request: Any) -> pb.MessageMiniProgramResponse:
        f = account.messages[request.id]["fields"]
        card = {
            "appid": f.get("app_id", ""),
            "title": f.get("title", ""),
            "pagePath": f.get("page_path", ""),
            "username": f.get("username", ""),
            "description": f.get("description", ""),
        }
        return pb.MessageMiniProgramResponse(mini_program=json.dumps(card, ensure_ascii=False))

    def message_contact(self, account: FakeAccount, request: Any) -> pb.MessageContactResponse:
        return pb.MessageContactResponse(id=account.messages[request.id]["fields"].get("contact_id", ""))

    def message_location(self, account: FakeAccount, request: Any) -> wm.MessageLocationResponse:
        f = account.messages[request.id]["fields"]
        where = wm.LocationPayload(
            address=f.get("label", ""), name=f.get("name", ""), latitude=f["lat"], longitude=f["lon"]
        )
        return wm.MessageLocationResponse(location=where)

    def send_text(self, account: FakeAccount, request: Any) -> pb.MessageSendTextResponse:
        return pb.MessageSendTextResponse(
            id=self.state.deliver(account, request.conversation_id, "text", request.text)
        )

    def send_file(self, account: FakeAccount, request: Any) -> pb.MessageSendFileResponse:
        return pb.MessageSendFileResponse(
            id=self.state.deliver(account, request.conversation_id, "file", request.filebox)
        )

    def send_url(self, account: FakeAccount, request: Any) -> pb.MessageSendUrlResponse:
        return pb.MessageSendUrlResponse(
            id=self.state.deliver(account, request.conversation_id, "link", request.url_link)
        )

    def send_mini(self, account: FakeAccount, request: Any) -> pb.MessageSendMiniProgramResponse:
        return pb.MessageSendMiniProgramResponse(
            id=self.state.deliver(account, request.conversation_id, "miniprogram", request.mini_program)
        )

    def room_list(self, account: FakeAccount, request: Any) -> pb.RoomListResponse:
        self.state.require_login(account)
        return pb.RoomListResponse(ids=list(account.rooms))

    def room_payload(self, account: FakeAccount, request: Any) -> pb.RoomPayloadResponse:
        r = account.rooms[request.id]
        return pb.RoomPayloadResponse(
            id=r.id, topic=r.topic, owner_id=r.owner_id, member_ids=list(r.member_ids)
        )

    def room_add(self, account: FakeAccount, request: Any) -> pb.RoomAddResponse:
        self.state.require_login(account)
        import attrs  # local: only this call rewrites a room

        room = account.rooms[request.id]
        account.rooms[room.id] = attrs.evolve(room, member_ids=(*room.member_ids, request.contact_id))
        return pb.RoomAddResponse()

    async def event(self, stream: Stream, account: FakeAccount, request: Any) -> None:
        """Events until the client goes.  Each event goes to one stream, from the first
        not yet streamed, so a listener that reconnects misses nothing (the real service
        streams only while a client is connected: run the listener continuously).  When
        a stream ends, what it sent in its last ``RESEND_WINDOW`` seconds is offered
        again: it may have gone to a client that had already stopped reading (the
        intake de-duplicates on the gateway's ids)."""
        loop = asyncio.get_running_loop()
        await asyncio.sleep(account.stream_delay)
        # what Wechaty's own puppet service sends first on every stream: its client
        # waits for this heartbeat (5 s at most) before it counts the stream as open
        await stream.send_message(pb.EventResponse(type=pb.EventType.EVENT_TYPE_HEARTBEAT, payload=CONNECTED))
        if account.logged_in:  # a new stream first learns who is logged in
            login = json.dumps({"contactId": account.self_id})
            await stream.send_message(pb.EventResponse(type=pb.EventType.EVENT_TYPE_LOGIN, payload=login))
        recent: list[tuple[int, float]] = []
        try:
            while True:
                index = account.streamed
                got = await loop.run_in_executor(None, self.state.wait_event, account, index, 0.2)
                if got is None or account.streamed != index:
                    continue
                kind, payload = got
                account.streamed = index + 1
                recent.append((index, time.monotonic()))
                if kind in EVENT_TYPES:
                    await stream.send_message(
                        pb.EventResponse(type=EVENT_TYPES[kind], payload=json.dumps(payload))
                    )
        finally:
            late = [i for i, at in recent if time.monotonic() - at < RESEND_WINDOW]
            if late:
                account.streamed = min(account.streamed, late[0])
