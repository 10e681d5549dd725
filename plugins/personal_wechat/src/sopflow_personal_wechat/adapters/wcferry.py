"""The WeChatFerry adapter: the ``wcferry`` client's own protocol, nng Pair1 + protobuf.

WeChatFerry injects into a Windows PC WeChat and serves two nng ``Pair1``
sockets: commands on ``tcp://host:port`` (a ``wcf_pb2.Request`` in, a
``wcf_pb2.Response`` out) and messages on ``port + 1`` (``Response.wxmsg``
pushed after ``FUNC_ENABLE_RECV_TXT``).  The messages are the ``wcf_pb2``
module the ``wcferry`` PyPI package carries (39.x, for PC WeChat 3.9.12),
the sockets are ``pynng``'s: nothing on the wire is written by hand.  We speak
it directly rather than through ``wcferry.Wcf`` because that class starts the
Windows injector unless given a host, waits for a login with ``sleep`` and
exits the process when a dial fails; and directly rather than through one of
the HTTP front-ends because each of those is another unmaintained process to
run, while this protocol is the one they all wrap.

The protocol has no token (run it on a private network only), no moments
call, and no login/logout events: the adapter asks ``FUNC_IS_LOGIN`` when a
stream starts and reports heartbeat, logout and the QR URL from the answer.
A refused send comes back as a non-zero ``status`` with no reason; while the
account is logged in that is treated as the platform's restriction, the safe
reading for an account that must not be banned.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from typing import Any

import pynng
from sopflow_sdk import AmbiguousSendError, SkippableError
from wcferry import wcf_pb2 as pb

from sopflow_personal_wechat.adapters import wcferry_messages as wm
from sopflow_personal_wechat.port import (
    Contact,
    FriendRequest,
    GatewayEvent,
    GatewayLoggedOut,
    GatewayRestricted,
    GatewayUnreachable,
    LoginState,
    Payload,
    Room,
)

#: WxMsg types (FUNC_GET_MSG_TYPES): 1 text, 37 friend verification, 10000 system notice
TEXT, FRIEND_REQUEST, SYSTEM = 1, 37, 10000
MINI_PROGRAM_XML = 0x21
GENDERS = {1: "male", 2: "female"}
RESTRICTED_RETRY = 3600


def encode_request(fields: dict[str, Any]) -> str:
    """A friend request's id carries what accepting it needs (v3, v4, scene), so any
    worker can accept it later without this process's memory."""
    return base64.urlsafe_b64encode(json.dumps(fields, ensure_ascii=False).encode()).decode()


def decode_request(request_id: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(request_id.encode()))


class WcferryGateway:
    """``WcferryGateway("host:port")``: the command port; messages come on port + 1."""

    name = "wcferry"
    can_post_moments = False  # refresh_pyq reads moments; nothing posts them

    def __init__(self, endpoint: str, *, timeout: float = 10.0) -> None:
        host, _, port = endpoint.rpartition(":")
        self.host, self.port, self.timeout = host.strip("[]"), int(port), timeout
        self.self_id = ""

    def __repr__(self) -> str:
        return f"<WcferryGateway {self.host}:{self.port}>"

    # -- plumbing ------------------------------------------------------------------------------

    def _url(self, port: int) -> str:
        return f"tcp://{self.host}:{port}"

    def _unreachable(self, exc: BaseException) -> GatewayUnreachable:
        return GatewayUnreachable(
            f"no WeChatFerry answers at config.endpoint ({self.host}:{self.port}): {type(exc).__name__}; "
            "check the endpoint (the command port, 10086 by default) and that wcf.exe runs",
            retry_after=60,
        )

    def call(self, func: int, *, sending: bool = False, **fields: Any) -> pb.Response:
        """One request and its answer on the endpoint's command connection."""
        request = pb.Request(func=func, **fields)
        raw = _link(self._url(self.port), self.timeout).request(request.SerializeToString(), sending, self)
        response = pb.Response()
        try:
            response.ParseFromString(raw)
        except Exception as exc:  # not protobuf: another protocol on the port
            _drop(self._url(self.port))
            raise self._unreachable(exc) from None
        return response

    def _sent(self, response: pb.Response) -> str:
        if response.status == 0:
            return ""
        if not self.login_state().logged_in:
            raise GatewayLoggedOut(
                "the account is logged out of WeChat: scan its QR code again", retry_after=300
            )
        raise GatewayRestricted(
            f"WeChatFerry refused the send (status {response.status}); treated as a restriction",
            retry_after=RESTRICTED_RETRY,
        )

    # -- the port ------------------------------------------------------------------------------

    def login_state(self) -> LoginState:
        if self.call(pb.FUNC_IS_LOGIN).status == 1:
            self.self_id = self.call(pb.FUNC_GET_SELF_WXID).str
            return LoginState(True, self.self_id)
        return LoginState(False, qr_url=self.call(pb.FUNC_REFRESH_QRCODE).str)

    def _contacts(self) -> list[Any]:
        return list(self.call(pb.FUNC_GET_CONTACTS).contacts.contacts)

    def contacts(self) -> list[str]:
        return [c.wxid for c in self._contacts() if not c.wxid.endswith("@chatroom")]

    def contact(self, wxid: str) -> Contact:
        for c in self._contacts():
            if c.wxid == wxid:
                return Contact(
                    c.wxid,
                    name=c.name,
                    alias=c.code,
                    remark=c.remark,
                    gender=GENDERS.get(c.gender, ""),
                    city=c.city,
                )  # type: ignore[arg-type]
        raise SkippableError(f"WeChatFerry does not know contact {wxid}")

    def friend_requests(self) -> list[FriendRequest]:
        return []  # requests arrive as type-37 messages only

    def friend_request(self, request_id: str) -> FriendRequest:
        f = decode_request(request_id)
        return FriendRequest(request_id, f["wxid"], f.get("hello", ""), str(f.get("scene", "")))

    def accept_friend(self, request_id: str) -> None:
        f = decode_request(request_id)
        verification = pb.Verification(v3=f["v3"], v4=f["v4"], scene=int(f.get("scene") or 30))
        if self.call(pb.FUNC_ACCEPT_FRIEND, v=verification).status != 1:
            raise SkippableError(
                "WeChatFerry could not accept the friend request (expired or already a friend)"
            )

    def send(self, conversation_id: str, payload: Payload) -> str:
        if payload.kind == "text":
            reply = self.call(
                pb.FUNC_SEND_TXT, sending=True, txt=pb.TextMsg(msg=payload.text, receiver=conversation_id)
            )
        elif payload.kind == "link":
            card = pb.RichText(
                title=payload.title or payload.url,
                digest=payload.description,
                url=payload.url,
                receiver=conversation_id,
            )
            reply = self.call(pb.FUNC_SEND_RICH_TXT, sending=True, rt=card)
        elif payload.kind == "miniprogram":
            xml = mini_program_xml(payload)
            reply = self.call(
                pb.FUNC_SEND_XML,
                sending=True,
                xml=pb.XmlMsg(receiver=conversation_id, content=xml, type=MINI_PROGRAM_XML),
            )
        else:  # the file must be readable on WeChatFerry's Windows host (a path or a URL it can fetch)
            func = pb.FUNC_SEND_IMG if payload.kind == "image" else pb.FUNC_SEND_FILE
            reply = self.call(func, sending=True, file=pb.PathMsg(path=payload.url, receiver=conversation_id))
        self._sent(reply)
        return reply.str or f"wcf:{conversation_id}"

    def post_moment(self, text: str, media: Sequence[Payload] = ()) -> str:
        raise SkippableError("WeChatFerry cannot post moments (朋友圈): it only reads them")

    def rooms(self) -> list[str]:
        return [c.wxid for c in self._contacts() if c.wxid.endswith("@chatroom")]

    def room(self, room_id: str) -> Room:
        topic = next((c.name for c in self._contacts() if c.wxid == room_id), "")
        return Room(room_id, topic, "", tuple(self._room_members(room_id)))

    def _room_members(self, room_id: str) -> dict[str, str]:
        """wxid → name from WeChat's own database (``ChatRoom.RoomData``), as wcferry reads them."""
        sql = f"SELECT RoomData FROM ChatRoom WHERE ChatRoomName = '{room_id.replace(chr(39), '')}';"
        rows = self.call(pb.FUNC_EXEC_DB_QUERY, query=pb.DbQuery(db="MicroMsg.db", sql=sql)).rows.rows
        if not rows or not rows[0].fields:
            return {}
        data = pb.RoomData()
        data.ParseFromString(rows[0].fields[0].content)
        return {m.wxid: m.name for m in data.members}

    def invite(self, room_id: str, wxid: str) -> None:
        if self.call(pb.FUNC_INV_ROOM_MEMBERS, m=pb.MemberMgmt(roomid=room_id, wxids=wxid)).status != 1:
            raise SkippableError(f"WeChatFerry could not invite {wxid} to {room_id}")

    def events(self, idle_timeout: float = 1.0) -> Iterator[GatewayEvent]:
        """Login state first (heartbeat, or logout and the QR URL), then the pushed
        messages until none came for ``idle_timeout`` seconds."""
        state = self.login_state()
        if not state.logged_in:
            yield GatewayEvent("logout")
            yield GatewayEvent("scan", qr_url=state.qr_url)
            return
        yield GatewayEvent("login", subject=state.self_id)
        yield GatewayEvent("heartbeat", subject=state.self_id)
        if self.call(pb.FUNC_ENABLE_RECV_TXT, flag=False).status != 0:
            raise GatewayUnreachable("WeChatFerry refused to push messages", retry_after=60)
        try:
            with pynng.Pair1(recv_timeout=int(idle_timeout * 1000)) as sock:
                sock.dial(self._url(self.port + 1), block=True)
                while True:
                    try:
                        raw = sock.recv()
                    except pynng.Timeout:
                        return
                    response = pb.Response()
                    response.ParseFromString(raw)
                    yield from self._event(response.wxmsg)
        except pynng.NNGException as exc:
            raise self._unreachable(exc) from None
        finally:
            self.call(pb.FUNC_DISABLE_RECV_TXT)

    def _event(self, msg: Any) -> Iterator[GatewayEvent]:
        if msg.type == FRIEND_REQUEST:
            yield GatewayEvent("friend_request", friend_request_id(msg.content))
        elif msg.type == SYSTEM:
            yield from self._notice(msg)
        elif not msg.is_self:
            kind, text, fields = wm.decode(msg)
            yield GatewayEvent(
                "message",
                str(msg.id),
                msg.sender,
                msg.roomid if msg.is_group else "",
                text,
                timestamp=float(msg.ts),
                message_kind=kind,
                fields=fields,
            )

    def _notice(self, msg: Any) -> Iterator[GatewayEvent]:
        """A system notice (type 10000): a join or leave in a room, a contact who deleted us."""
        left = wm.left_names(msg.content) if msg.is_group else None
        if msg.is_group and wm.JOINED.search(msg.content):
            inviter, joined = wm.joined_names(msg.content)
            by_name = {name: wxid for wxid, name in self._room_members(msg.roomid).items()}
            yield GatewayEvent(
                "room_join",
                subject=by_name.get(inviter, ""),
                room_id=msg.roomid,
                members=tuple(by_name[n] for n in joined if n in by_name),
                timestamp=float(msg.ts),
            )
        elif left is not None:
            remover, names = left
            by_name = self._names(msg.roomid)
            yield GatewayEvent(
                "room_leave",
                str(msg.id),
                subject=self.self_id if remover == "" else by_name.get(remover or "", ""),
                room_id=msg.roomid,
                members=tuple(by_name[n] for n in names if n in by_name),
                timestamp=float(msg.ts),
            )
        elif not msg.is_group and wm.is_not_friend(msg.content):
            yield GatewayEvent(
                "unfriended", str(msg.id), msg.roomid or msg.sender, text=msg.content, timestamp=float(msg.ts)
            )

    def _names(self, room_id: str) -> dict[str, str]:
        """name → wxid for a leave notice: a member who left is no longer in the room's
        list, so the account's contacts (their names and remarks) are asked too."""
        contacts = self._contacts()
        names = {c.remark: c.wxid for c in contacts if c.remark}
        names.update({c.name: c.wxid for c in contacts if c.name})
        names.update({name: wxid for wxid, name in self._room_members(room_id).items() if name})
        return names

    def close(self) -> None:
        pass


class _Link:
    """One command connection, one request at a time.  WeChatFerry's Pair1 socket
    takes one peer and its answers carry no request id, so every channel of this
    process shares the connection, and a request whose answer is late closes it
    (a late answer must never be read as the next request's)."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url, self.ms = url, int(timeout * 1000)
        self.lock = threading.Lock()
        self.sock: pynng.Pair1 | None = None

    def request(self, data: bytes, sending: bool, gateway: WcferryGateway) -> bytes:
        with self.lock:
            try:
                if self.sock is None:
                    # a refused port answers at once; nng's own blocking dial would wait out its
                    # handshake (10 s) on a port that speaks another protocol
                    host, port = self.url.removeprefix("tcp://").rsplit(":", 1)
                    socket.create_connection((host, int(port)), timeout=self.ms / 1000).close()
                    self.sock = pynng.Pair1(send_timeout=self.ms, recv_timeout=self.ms)
                    self.sock.dial(self.url, block=False)
                self.sock.send(data)  # a timeout here: nothing left (no peer took it)
            except (pynng.NNGException, OSError) as exc:
                self.close()
                raise gateway._unreachable(exc) from None
            try:
                return bytes(self.sock.recv())
            except (pynng.NNGException, OSError) as exc:
                self.close()
                if sending:
                    raise AmbiguousSendError(
                        "WeChatFerry took the send and did not answer in time: it may have been "
                        "delivered, so it is not sent again",
                        internal_message=f"wcferry send: {type(exc).__name__}",
                    ) from None
                raise gateway._unreachable(exc) from None

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


_links: dict[str, _Link] = {}
_links_guard = threading.Lock()


def _link(url: str, timeout: float) -> _Link:
    with _links_guard:
        if url not in _links:
            _links[url] = _Link(url, timeout)
        return _links[url]


def _drop(url: str) -> None:
    with _links_guard:
        link = _links.pop(url, None)
    if link is not None:
        with link.lock:
            link.close()


def friend_request_id(content: str) -> str:
    """The type-37 message's ``<msg fromusername= encryptusername= ticket= scene= …/>``."""
    node = ET.fromstring(content)
    return encode_request(
        {
            "wxid": node.get("fromusername", ""),
            "v3": node.get("encryptusername", ""),
            "v4": node.get("ticket", ""),
            "scene": int(node.get("scene") or 30),
            "name": node.get("fromnickname", ""),
            "hello": node.get("content", ""),
        }
    )


def mini_program_xml(payload: Payload) -> str:
    """The appmsg (type 33) a mini-program card is."""
    msg = ET.Element("msg")
    app = ET.SubElement(msg, "appmsg")
    ET.SubElement(app, "title").text = payload.title
    ET.SubElement(app, "type").text = "33"
    info = ET.SubElement(app, "weappinfo")
    ET.SubElement(info, "pagepath").text = payload.url
    ET.SubElement(info, "appid").text = payload.media_id
    return ET.tostring(msg, encoding="unicode")
