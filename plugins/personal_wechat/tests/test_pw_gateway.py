"""The gateway port over real gRPC: the Wechaty adapter against the fake puppet service."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from sopflow_personal_wechat.adapters.wechaty import WechatyGateway
from sopflow_personal_wechat.fake import FakeClock, FakePuppetService
from sopflow_personal_wechat.fake.scenario import CONTACTS, ROOM, SELF_ID, TOKEN
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


def test_the_adapter_is_a_gateway_port(gateway: WechatyGateway) -> None:
    assert isinstance(gateway, GatewayPort)
    assert gateway.can_post_moments is False


def test_login_state_contacts_and_a_contacts_payload(gateway: WechatyGateway) -> None:
    assert gateway.login_state().logged_in
    assert set(gateway.contacts()) == {SELF_ID, *(c.wxid for c in CONTACTS)}
    li = gateway.contact(LI)
    assert (li.name, li.alias, li.gender, li.city) == ("李女士", "li_mama", "female", "上海")


def test_every_payload_kind_reaches_the_contact(
    fake: FakePuppetService, gateway: WechatyGateway, clock: FakeClock
) -> None:
    payloads = [
        Payload("text", text="您好"),
        Payload("image", url="https://example.com/a.png"),
        Payload("file", url="https://example.com/guide.pdf"),
        Payload("link", url="https://example.com/p", title="护理指南", description="三分钟读完"),
        Payload("miniprogram", url="pages/index", title="商城", media_id="wx1234"),
    ]
    ids = []
    for payload in payloads:
        ids.append(gateway.send(LI, payload))
        clock.advance(5)
    sent = fake.state.account(TOKEN).sent
    assert [d.id for d in sent] == ids
    assert [d.kind for d in sent] == ["text", "file", "file", "link", "miniprogram"]
    assert json.loads(sent[1].content)["remoteUrl"] == "https://example.com/a.png"
    assert json.loads(sent[3].content) == {
        "title": "护理指南",
        "url": "https://example.com/p",
        "description": "三分钟读完",
    }
    assert {d.conversation_id for d in sent} == {LI}


def test_rooms_members_and_invite(gateway: WechatyGateway) -> None:
    assert gateway.rooms() == [ROOM.id]
    gateway.invite(ROOM.id, CONTACTS[1].wxid)
    assert gateway.room(ROOM.id).member_ids == (SELF_ID, LI, CONTACTS[1].wxid)
    assert gateway.send(ROOM.id, Payload("text", text="群公告"))


def test_the_event_stream_carries_each_kind(fake: FakePuppetService, gateway: WechatyGateway) -> None:
    account = fake.state.account(TOKEN)
    newcomer = Contact("wxid_new_zhao", name="赵同学")
    request = fake.state.request_friend(account, newcomer, hello="我是扫码来的")
    fake.state.receive_message(account, LI, "价格多少")
    fake.state.join_room(account, Room(ROOM.id, ROOM.topic), [newcomer.wxid], inviter=LI)
    fake.state.heartbeat(account)
    fake.state.logout(account)
    fake.state.login(account)
    first, *events = list(gateway.events(idle_timeout=0.5))
    assert (first.kind, first.subject) == ("login", SELF_ID)  # a new stream learns who is logged in
    kinds = [e.kind for e in events]
    assert kinds == ["friend_request", "message", "room_join", "heartbeat", "logout", "scan", "login"]
    assert events[0].id == request.id and gateway.friend_request(request.id).hello == "我是扫码来的"
    assert (events[1].subject, events[1].text) == (LI, "价格多少")
    assert (events[2].room_id, events[2].members) == (ROOM.id, (newcomer.wxid,))
    assert events[5].qr_url.startswith("https://login.weixin.qq.com/")
    assert gateway.self_id == SELF_ID  # the login event names the account
    gateway.accept_friend(request.id)
    assert account.accepted == [newcomer.wxid] and newcomer.wxid in gateway.contacts()


def test_a_wrong_token_is_refused_naming_the_setting(fake: FakePuppetService) -> None:
    wrong = WechatyGateway(fake.endpoint, Secret("not-the-token-000"), tls=False, timeout=1.0)
    with pytest.raises(GatewayAuthRejected, match=r"secrets\.token") as info:
        wrong.contacts()
    assert "not-the-token-000" not in str(info.value) and "not-the-token-000" not in repr(wrong)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_gateway_names_the_endpoint() -> None:
    port = _free_port()
    gone = WechatyGateway(f"127.0.0.1:{port}", Secret(TOKEN), tls=False, timeout=1.0)
    with pytest.raises(GatewayUnreachable, match=r"config\.endpoint") as info:
        gone.send(LI, Payload("text", text="hi"))
    assert info.value.retry_after


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


def test_the_wrong_protocol_on_the_port_is_unreachable(http1_port: int) -> None:
    web = WechatyGateway(f"127.0.0.1:{http1_port}", Secret(TOKEN), tls=False, timeout=1.0)
    with pytest.raises(GatewayUnreachable, match=r"config\.endpoint"):
        web.contacts()


def test_tls_against_a_plaintext_service_is_unreachable(fake: FakePuppetService) -> None:
    tls = WechatyGateway(fake.endpoint, Secret(TOKEN), tls=True, timeout=1.0)
    with pytest.raises(GatewayUnreachable, match="tls"):
        tls.contacts()


def test_risk_control_restricts_then_logs_the_account_out(
    fake: FakePuppetService, gateway: WechatyGateway
) -> None:
    """Sends beyond the tolerance are refused; the third refusal logs the account out."""
    fake.state.account(TOKEN).tolerance.per_minute = 1
    gateway.send(LI, Payload("text", text="1"))
    for _ in range(2):
        with pytest.raises(GatewayRestricted) as info:
            gateway.send(LI, Payload("text", text="too soon"))
        assert info.value.retry_after and info.value.retry_after > 0
    with pytest.raises(GatewayRestricted):
        gateway.send(LI, Payload("text", text="too soon"))
    with pytest.raises(GatewayLoggedOut):
        gateway.send(LI, Payload("text", text="after"))
    state = gateway.login_state()
    assert not state.logged_in and state.qr_url.startswith("https://login.weixin.qq.com/")
    assert len(fake.state.account(TOKEN).sent) == 1


def test_an_answer_lost_after_the_send_is_ambiguous(fake: FakePuppetService, gateway: WechatyGateway) -> None:
    fake.stall_next("MessageSendText")
    with pytest.raises(AmbiguousSendError):
        gateway.send(LI, Payload("text", text="hi"))
    assert len(fake.state.account(TOKEN).sent) == 1  # it did go out: never resend blindly
