"""A fake WeChatFerry endpoint: ``wcf_pb2`` over nng Pair1 on 127.0.0.1, as wcf.exe serves it.

The command socket (``port``) answers ``Request``s with ``Response``s; the
message socket (``port + 1``) pushes ``Response(wxmsg=…)`` while receiving is
enabled.  One WeChat account (a PC client serves one) from a ``GatewayState``:
its messages as type-1 ``WxMsg``, friend requests as type-37 verification XML,
room joins as type-10000 system notices, members in ``ChatRoom.RoomData`` for
``FUNC_EXEC_DB_QUERY``; other kinds of message, room leaves and the notice
WeChat shows after a send to a contact who deleted the account as
``fake.wcf_messages`` renders them.  A send the risk control refuses, or made
while logged out, answers a non-zero ``status`` as WeChatFerry does; a send to a
contact who deleted the account is taken (status 0) and that notice follows.  Faults for tests:
``stall_next`` (carried out, never answered) and ``stop``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import quoteattr

import pynng
from wcferry import wcf_pb2 as pb

from sopflow_personal_wechat.fake import wcf_messages
from sopflow_personal_wechat.fake.clock import FakeClock
from sopflow_personal_wechat.fake.state import FakeAccount, GatewayState, LoggedOut, NotFriend, Restricted

GENDER = {"male": 1, "female": 2}
#: ms a socket waits before it looks at ``stopping`` again
_POLL_MS = 100


def _two_free_ports() -> int:
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = int(a.getsockname()[1])
        with socket.socket() as b:
            try:
                b.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two consecutive free ports on 127.0.0.1")


class FakeWcferry:
    """``with FakeWcferry(state, token) as fake:`` serves ``fake.endpoint`` (the command port)."""

    def __init__(
        self, state: GatewayState | None = None, token: str = "", *, clock: Callable[[], float] | None = None
    ) -> None:
        self.state = state or GatewayState(clock or FakeClock())
        self.token = token
        self.calls: list[str] = []
        self._stall: set[int] = set()
        self._receiving = threading.Event()
        self._stopping = threading.Event()
        self.port = 0
        self._threads: list[threading.Thread] = []

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def account(self) -> FakeAccount:
        account = self.state.account(self.token)
        assert account is not None, "add the account to the state first"
        return account

    def stall_next(self, func: int) -> None:
        self._stall.add(func)

    def start(self) -> FakeWcferry:
        self.port = _two_free_ports()
        self._cmd = pynng.Pair1(recv_timeout=_POLL_MS, send_timeout=1000)
        self._cmd.listen(f"tcp://127.0.0.1:{self.port}")
        self._msg = pynng.Pair1(send_timeout=_POLL_MS)
        self._msg.listen(f"tcp://127.0.0.1:{self.port + 1}")
        for target, name in ((self._serve, "fake-wcf-cmd"), (self._push, "fake-wcf-msg")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        for thread in self._threads:
            thread.join(5)
        self._cmd.close()
        self._msg.close()

    def __enter__(self) -> FakeWcferry:
        return self if self._threads else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the command socket --------------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                raw = self._cmd.recv()
            except pynng.Timeout:
                continue
            except pynng.Closed:
                return
            request = pb.Request()
            request.ParseFromString(raw)
            self.calls.append(pb.Functions.Name(request.func))
            response = self.handle(request)
            if request.func in self._stall:
                self._stall.discard(request.func)
                continue  # carried out; the answer is lost
            with contextlib.suppress(pynng.NNGException):  # the client went away
                self._cmd.send(response.SerializeToString())

    def handle(self, request: pb.Request) -> pb.Response:
        """Long because it is the one dispatch table of the functions the fake serves."""
        account, func = self.account, request.func
        response = pb.Response(func=func)
        if func == pb.FUNC_IS_LOGIN:
            response.status = 1 if account.logged_in else 0
        elif func == pb.FUNC_GET_SELF_WXID:
            response.str = account.self_id
        elif func == pb.FUNC_REFRESH_QRCODE:
            response.str = "" if account.logged_in else account.qr_url
        elif func == pb.FUNC_GET_CONTACTS:
            for c in account.contacts.values():
                if c.friend:
                    response.contacts.contacts.add(
                        wxid=c.wxid,
                        code=c.alias,
                        remark=c.remark,
                        name=c.name,
                        city=c.city,
                        gender=GENDER.get(c.gender, 0),
                    )
            for r in account.rooms.values():
                response.contacts.contacts.add(wxid=r.id, name=r.topic)
        elif func in (
            pb.FUNC_SEND_TXT,
            pb.FUNC_SEND_IMG,
            pb.FUNC_SEND_FILE,
            pb.FUNC_SEND_RICH_TXT,
            pb.FUNC_SEND_XML,
        ):
            response.status = self._send(account, request)
        elif func == pb.FUNC_ACCEPT_FRIEND:
            response.status = self._accept(account, request.v)
        elif func == pb.FUNC_INV_ROOM_MEMBERS:
            room = account.rooms[request.m.roomid]
            import attrs

            account.rooms[room.id] = attrs.evolve(
                room, member_ids=(*room.member_ids, *request.m.wxids.split(","))
            )
            response.status = 1
        elif func == pb.FUNC_EXEC_DB_QUERY:
            self._query(account, request.query, response)
        elif func == pb.FUNC_ENABLE_RECV_TXT:
            self._receiving.set()
        elif func == pb.FUNC_DISABLE_RECV_TXT:
            self._receiving.clear()
        else:
            response.status = -1
        return response

    def _send(self, account: FakeAccount, request: pb.Request) -> int:
        kind = request.WhichOneof("msg")
        body: Any = getattr(request, kind)
        receiver = body.receiver
        content = {
            "txt": lambda: body.msg,
            "file": lambda: body.path,
            "rt": lambda: body.url,
            "xml": lambda: body.content,
        }[kind]()
        label = {
            pb.FUNC_SEND_TXT: "text",
            pb.FUNC_SEND_IMG: "image",
            pb.FUNC_SEND_FILE: "file",
            pb.FUNC_SEND_RICH_TXT: "link",
            pb.FUNC_SEND_XML: "miniprogram",
        }[request.func]
        try:
            self.state.deliver(account, receiver, label, content)
        except (Restricted, LoggedOut, KeyError):
            return -1
        except NotFriend as exc:  # PC WeChat takes the send; the chat then shows WeChat's notice
            notice = {"chat": receiver, "content": str(exc), "timestamp": int(self.state.clock())}
            self.state.emit(account, "wcf-notice", notice)
        return 0

    def _accept(self, account: FakeAccount, v: pb.Verification) -> int:
        request = next((r for r in account.friend_requests.values() if f"v3_{r.id}" == v.v3), None)
        if request is None or not account.logged_in or v.v4 != f"v4_{request.id}":
            return 0
        self.state.accept(account, request.id)
        return 1

    def _query(self, account: FakeAccount, query: pb.DbQuery, response: pb.Response) -> None:
        room_id = query.sql.split("ChatRoomName = '", 1)[-1].split("'", 1)[0]
        room = account.rooms.get(room_id)
        if "FROM ChatRoom" not in query.sql or room is None:
            return
        data = pb.RoomData()
        for wxid in room.member_ids:
            contact = account.contacts.get(wxid)
            data.members.add(wxid=wxid, name=contact.name if contact else "")
        row = response.rows.rows.add()
        row.fields.add(type=4, column="RoomData", content=data.SerializeToString())

    # -- the message socket --------------------------------------------------------------------

    def _push(self) -> None:
        while not self._stopping.is_set():
            if not self._receiving.wait(_POLL_MS / 1000):
                continue
            account = self.account
            index = account.streamed
            got = self.state.wait_event(account, index, _POLL_MS / 1000)
            if got is None or account.streamed != index:
                continue
            msg = self._wxmsg(account, index, *got)
            if msg is None:
                account.streamed = index + 1
                continue
            try:
                self._msg.send(pb.Response(func=pb.FUNC_ENABLE_RECV_TXT, wxmsg=msg).SerializeToString())
                account.streamed = index + 1
            except pynng.Timeout:
                continue  # no listener yet: keep it for the next
            except pynng.Closed:
                return

    def _wxmsg(self, account: FakeAccount, index: int, kind: str, payload: dict[str, Any]) -> pb.WxMsg | None:
        ts = int(payload.get("timestamp") or self.state.clock())  # a replay keeps its time
        if kind == "message":
            m = account.messages[payload["messageId"]]
            return wcf_messages.message(account, index, m, m["timestamp"])
        if kind in ("room-leave", "wcf-notice"):  # system notices in a room or a contact's chat
            chat = payload.get("roomId") or payload["chat"]
            notice = (
                wcf_messages.leave_notice(account, payload) if kind == "room-leave" else payload["content"]
            )
            return pb.WxMsg(
                id=index + 1,
                type=10000,
                ts=ts,
                sender=chat,
                roomid=chat,
                is_group=chat.endswith("@chatroom"),
                content=notice,
            )
        if kind == "friendship":
            fid = payload["friendshipId"]
            r = account.friend_requests.get(fid) or account.answered[fid]
            name = account.contacts[r.contact_id].name
            xml = (
                f"<msg fromusername={quoteattr(r.contact_id)} encryptusername={quoteattr('v3_' + r.id)} "
                f"fromnickname={quoteattr(name)} content={quoteattr(r.hello)} "
                f'ticket={quoteattr("v4_" + r.id)} scene="30" />'
            )
            return pb.WxMsg(id=index + 1, type=37, ts=ts, sender="fmessage", roomid="fmessage", content=xml)
        if kind == "room-join":
            name = lambda w: account.contacts[w].name if w in account.contacts else w  # noqa: E731
            names = "、".join(f'"{name(w)}"' for w in payload["inviteeIdList"])
            inviter = payload.get("inviterId") or account.self_id
            notice = f'"{name(inviter)}"邀请{names}加入了群聊'
            return pb.WxMsg(
                id=index + 1,
                type=10000,
                ts=ts,
                sender=payload["roomId"],
                roomid=payload["roomId"],
                is_group=True,
                content=notice,
            )
        return None  # login, logout, scan, heartbeat: WeChatFerry has no such messages
