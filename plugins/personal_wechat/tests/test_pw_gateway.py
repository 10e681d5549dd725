"""The gateway port over real sockets: each test runs against both adapters, the
Wechaty one over gRPC to the fake puppet service and the WeChatFerry one over
nng Pair1 to the fake WeChatFerry endpoint (the ``kit`` fixture)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from pw_support import Kit
from sopflow_personal_wechat.adapters.wcferry import WcferryGateway
from sopflow_personal_wechat.adapters.wechaty import WechatyGateway
from sopflow_personal_wechat.fake import FakeClock, FakePuppetService
from sopflow_personal_wechat.fake.scenario import CONTACTS, ROOM, SELF_ID, TOKEN, start_fake
from sopflow_personal_wechat.port import (
    Contact,
    GatewayAuthRejected,
    GatewayLoggedOut,
    GatewayPort,
    GatewayRestricted,
    GatewayUnreachable,
    Payload,
    Room,
)
from sopflow_sdk import AmbiguousSendError, Secret

LI = CONTACTS[0].wxid
NEWCOMER = Contact("wxid_new_zhao", name="赵同学")


def test_the_adapter_is_a_gateway_port(kit: Kit) -> None:
    assert isinstance(kit.gateway, GatewayPort)
    assert kit.gateway.can_post_moments is False  # neither protocol has a call that posts moments


def test_login_state_contacts_and_a_contacts_payload(kit: Kit) -> None:
    assert kit.gateway.login_state().logged_in
    assert set(kit.gateway.contacts()) == {SELF_ID, *(c.wxid for c in CONTACTS)}
    li = kit.gateway.contact(LI)
    assert (li.wxid, li.name, li.alias, li.gender, li.city) == (LI, "李女士", "li_mama", "female", "上海")


def test_every_payload_kind_reaches_the_contact(kit: Kit, clock: FakeClock) -> None:
    payloads = [
        Payload("text", text="您好"),
        Payload("image", url="https://example.com/a.png"),
        Payload("file", url="https://example.com/guide.pdf"),
        Payload("link", url="https://example.com/p", title="护理指南", description="三分钟读完"),
        Payload("miniprogram", url="pages/index", title="商城", media_id="wx1234"),
    ]
    for payload in payloads:
        kit.gateway.send(LI, payload)
    sent = kit.account.sent
    assert {d.conversation_id for d in sent} == {LI} and len(sent) == 5
    assert sent[0].content == "您好"
    if kit.adapter == "wechaty":  # media is a FileBox; cards are Wechaty's UrlLink / MiniProgram JSON
        assert [d.kind for d in sent] == ["text", "file", "file", "link", "miniprogram"]
        assert json.loads(sent[1].content)["remoteUrl"] == "https://example.com/a.png"
        assert json.loads(sent[3].content)["title"] == "护理指南"
    else:  # image and file by path or URL, a rich-text link card, a type-33 appmsg
        assert [d.kind for d in sent] == ["text", "image", "file", "link", "miniprogram"]
        assert sent[1].content == "https://example.com/a.png" and sent[3].content == "https://example.com/p"
        assert "<pagepath>pages/index</pagepath>" in sent[4].content


def test_rooms_members_and_invite(kit: Kit) -> None:
    assert kit.gateway.rooms() == [ROOM.id]
    kit.gateway.invite(ROOM.id, CONTACTS[1].wxid)
    assert kit.gateway.room(ROOM.id).member_ids == (SELF_ID, LI, CONTACTS[1].wxid)
    assert kit.gateway.send(ROOM.id, Payload("text", text="群公告"))


def test_friend_requests_messages_and_room_joins_arrive(kit: Kit) -> None:
    request = kit.state.request_friend(kit.account, NEWCOMER, hello="我是扫码来的")
    kit.state.receive_message(kit.account, LI, "价格多少")
    kit.state.join_room(kit.account, Room(ROOM.id, ROOM.topic), [NEWCOMER.wxid], inviter=LI)
    events = [e for e in kit.gateway.events(idle_timeout=0.5) if e.kind not in ("login", "heartbeat")]
    assert [e.kind for e in events] == ["friend_request", "message", "room_join"]
    assert kit.gateway.self_id == SELF_ID  # the account names itself when a stream starts
    asked = kit.gateway.friend_request(events[0].id)
    assert (asked.contact_id, asked.hello) == (NEWCOMER.wxid, "我是扫码来的")
    assert (events[1].subject, events[1].text, events[1].room_id) == (LI, "价格多少", "")
    assert (events[2].room_id, events[2].members) == (ROOM.id, (NEWCOMER.wxid,))
    kit.gateway.accept_friend(events[0].id)
    assert kit.account.accepted == [NEWCOMER.wxid] and request.id not in kit.account.friend_requests
    assert NEWCOMER.wxid in kit.gateway.contacts()


def test_a_stream_reports_the_login_heartbeat_logout_and_qr(kit: Kit) -> None:
    kit.state.heartbeat(kit.account)
    kinds = [e.kind for e in kit.gateway.events(idle_timeout=0.3)]
    assert "login" in kinds[:2] and "heartbeat" in kinds  # Wechaty's stream opens with a heartbeat
    kit.state.logout(kit.account)
    after = list(kit.gateway.events(idle_timeout=0.3))
    assert [e.kind for e in after if e.kind in ("logout", "scan")] == ["logout", "scan"]
    [scan] = [e for e in after if e.kind == "scan"]
    assert scan.qr_url.startswith("https://login.weixin.qq.com/")
    state = kit.gateway.login_state()
    assert not state.logged_in and state.qr_url == scan.qr_url


def test_risk_control_restricts_then_logs_the_account_out(kit: Kit) -> None:
    """Sends beyond the tolerance are refused; the third refusal logs the account out."""
    kit.account.tolerance.per_minute = 1
    kit.gateway.send(LI, Payload("text", text="1"))
    for _ in range(2):
        with pytest.raises(GatewayRestricted) as info:
            kit.gateway.send(LI, Payload("text", text="too soon"))
        assert info.value.retry_after and info.value.retry_after > 0
    # the third refusal logs it out: Wechaty says restricted, WeChatFerry's bare status reads as logged out
    with pytest.raises(GatewayRestricted if kit.adapter == "wechaty" else GatewayLoggedOut):
        kit.gateway.send(LI, Payload("text", text="too soon"))
    with pytest.raises(GatewayLoggedOut):
        kit.gateway.send(LI, Payload("text", text="after"))
    assert [d.content for d in kit.account.sent] == ["1"]


def test_an_answer_lost_after_the_send_is_ambiguous(kit: Kit) -> None:
    kit.stall_next_text()
    with pytest.raises(AmbiguousSendError):
        kit.gateway.send(LI, Payload("text", text="hi"))
    assert len(kit.account.sent) == 1  # it did go out: never resend blindly


def test_a_stopped_gateway_is_unreachable_naming_the_endpoint(kit: Kit) -> None:
    kit.fake.stop()
    with pytest.raises(GatewayUnreachable, match=r"config\.endpoint") as info:
        kit.gateway.send(LI, Payload("text", text="hi"))
    assert info.value.retry_after
    assert kit.account.sent == []


@pytest.fixture
def http1_port() -> Iterator[int]:
    class Plain(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<html>not grpc</html>")

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Plain)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


@pytest.mark.parametrize("adapter", ["wechaty", "wcferry"])
def test_the_wrong_protocol_on_the_port_is_unreachable(http1_port: int, adapter: str) -> None:
    endpoint = f"127.0.0.1:{http1_port}"
    gateway = (
        WechatyGateway(endpoint, Secret(TOKEN), tls=False, timeout=0.5)
        if adapter == "wechaty"
        else WcferryGateway(endpoint, timeout=0.5)
    )
    with pytest.raises(GatewayUnreachable, match=r"config\.endpoint"):
        gateway.contacts()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("adapter", ["wechaty", "wcferry"])
def test_nothing_listening_is_unreachable(adapter: str) -> None:
    endpoint = f"127.0.0.1:{_free_port()}"
    gateway = (
        WechatyGateway(endpoint, Secret(TOKEN), tls=False, timeout=0.5)
        if adapter == "wechaty"
        else WcferryGateway(endpoint, timeout=0.5)
    )
    with pytest.raises(GatewayUnreachable, match=r"config\.endpoint"):
        gateway.send(LI, Payload("text", text="hi"))


# -- Wechaty only: the token and the TLS switch (WeChatFerry has neither) -----------------------------


def test_a_wrong_token_is_refused_naming_the_setting(fake: FakePuppetService) -> None:
    wrong = WechatyGateway(fake.endpoint, Secret("not-the-token-000"), tls=False, timeout=1.0)
    with pytest.raises(GatewayAuthRejected, match=r"secrets\.token") as info:
        wrong.contacts()
    assert "not-the-token-000" not in str(info.value) and "not-the-token-000" not in repr(wrong)


def test_tls_against_a_plaintext_service_is_unreachable(fake: FakePuppetService) -> None:
    tls = WechatyGateway(fake.endpoint, Secret(TOKEN), tls=True, timeout=1.0)
    with pytest.raises(GatewayUnreachable, match="tls"):
        tls.contacts()


def test_idle_time_counts_from_when_the_stream_is_open() -> None:
    """A stream slow to open (a loaded host) does not end a short intake before its first event."""
    fake = start_fake(FakeClock())
    gateway = WechatyGateway(fake.endpoint, Secret(TOKEN), tls=False)
    try:
        account = fake.state.account(TOKEN)
        account.stream_delay = 0.6
        fake.state.request_friend(account, NEWCOMER, hello="hi")
        kinds = [e.kind for e in gateway.events(idle_timeout=0.1)]
        assert kinds[0] == "heartbeat" and "friend_request" in kinds
    finally:
        gateway.close()
        fake.stop()
