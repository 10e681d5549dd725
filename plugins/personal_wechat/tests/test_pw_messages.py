"""Every kind of message a customer sends, and room leaves, over real sockets: the
port level against both adapters (``kit``: gRPC to the fake puppet service, nng to
the fake WeChatFerry), then through sopflow's API as ``message.received`` and
``group.left`` events, replays included."""

from __future__ import annotations

from typing import Any

import pytest
from grpclib.const import Status
from pw_support import Kit, intake_via_api
from sopflow_personal_wechat.fake.scenario import CONTACTS, ROOM, SELF_ID, TOKEN
from sopflow_personal_wechat.port import Contact, GatewayEvent

LI, WANG = CONTACTS[0].wxid, CONTACTS[1].wxid
#: one message of each kind, with the fields the scenario gives it
KINDS: list[tuple[str, str, dict[str, Any]]] = [
    ("text", "价格多少", {}),
    ("image", "", {"name": "a.jpg", "size": 2048}),
    ("file", "", {"name": "报价单.pdf", "size": 52_100, "ext": "pdf"}),
    ("voice", "", {"duration_ms": 3200}),
    ("video", "", {"seconds": 12, "size": 900_000}),
    (
        "link",
        "",
        {"title": "护理指南", "url": "https://example.com/p", "description": "三分钟读完", "thumb_url": ""},
    ),
    ("mini_program", "", {"title": "商城", "app_id": "wx1234567890", "page_path": "pages/index"}),
    ("location", "", {"label": "上海市静安区南京西路1号", "name": "静安寺", "lat": 31.22, "lon": 121.45}),
    ("emoji", "", {"md5": "d41d8cd98f00b204", "url": "https://emoji.example/1.gif"}),
    ("contact_card", "", {"contact_id": "wxid_friend_x", "name": "小王"}),
    ("other", "", {}),
]


def _messages(kit: Kit) -> list[GatewayEvent]:
    return [e for e in kit.gateway.events(idle_timeout=0.5) if e.kind == "message"]


def _send_all(kit: Kit, room_id: str = "") -> None:
    for kind, text, fields in KINDS:
        kit.state.receive_message(kit.account, LI, text, room_id, kind=kind, **fields)


def test_every_kind_of_message_arrives_with_its_fields(kit: Kit) -> None:
    _send_all(kit)
    got = {e.message_kind: e for e in _messages(kit)}
    assert list(got) == [k for k, _, _ in KINDS]  # in order, one event each
    assert all(e.subject == LI and e.room_id == "" and e.id for e in got.values())
    assert got["text"].text == "价格多少" and got["text"].fields == {}
    # links and mini programs read as their title; a file as its name; a location as its label
    assert got["link"].text == "护理指南"
    assert {k: got["link"].fields[k] for k in ("url", "description")} == {
        "url": "https://example.com/p",
        "description": "三分钟读完",
    }
    assert got["mini_program"].text == "商城"
    assert (got["mini_program"].fields["app_id"], got["mini_program"].fields["page_path"]) == (
        "wx1234567890",
        "pages/index",
    )
    assert got["file"].text == "报价单.pdf" and got["file"].fields["name"] == "报价单.pdf"
    where = got["location"]
    assert where.text == "上海市静安区南京西路1号" and where.fields["name"] == "静安寺"
    assert where.fields["lat"] == pytest.approx(31.22) and where.fields["lon"] == pytest.approx(121.45)
    assert got["contact_card"].fields["contact_id"] == "wxid_friend_x"
    # media is never fetched: each gives the handle its gateway fetches it with
    for kind in ("image", "file", "voice", "video"):
        assert got[kind].fields["media_id"] and got[kind].text in ("", "报价单.pdf")
    if kit.adapter == "wechaty":  # MessageImage / MessageFile take the message id
        assert got["image"].fields["media_id"] == got["image"].id
        assert got["other"].fields == {"wechaty_type": "MESSAGE_TYPE_TRANSFER"}
    else:  # FUNC_DOWNLOAD_ATTACH takes the id, the thumb and the extra (the file's path)
        assert got["image"].fields["path"].endswith("a.jpg") and got["image"].fields["thumb"]
        assert got["image"].fields["size"] == 2048
        assert (got["file"].fields["size"], got["file"].fields["ext"]) == (52_100, "pdf")
        assert got["voice"].fields["duration_ms"] == 3200 and got["video"].fields["seconds"] == 12
        assert got["emoji"].fields == {"md5": "d41d8cd98f00b204", "url": "https://emoji.example/1.gif"}
        assert got["contact_card"].text == "小王"
        assert got["other"].fields == {"wx_type": 49, "app_type": "2000"}


def test_a_group_message_of_any_kind_names_its_room(kit: Kit) -> None:
    kit.state.receive_message(kit.account, LI, room_id=ROOM.id, kind="image", name="b.jpg")
    [event] = _messages(kit)
    assert (event.message_kind, event.subject, event.room_id) == ("image", LI, ROOM.id)


def test_a_service_without_message_location_gives_the_label_alone(kit: Kit) -> None:
    """MessageLocation came after puppet.proto 0.20: a service that lacks it answers
    UNIMPLEMENTED and the location keeps the message's text as its label."""
    if kit.adapter != "wechaty":
        pytest.skip("WeChatFerry's location is in the message itself")
    kit.fake.fail_next("MessageLocation", Status.UNIMPLEMENTED, "Method not found")
    kit.state.receive_message(kit.account, LI, kind="location", label="南京西路1号", lat=31.2, lon=121.4)
    [event] = _messages(kit)
    assert (event.message_kind, event.text, event.fields["lat"]) == ("location", "南京西路1号", None)


def test_a_quote_is_the_text_the_customer_typed(kit: Kit) -> None:
    kit.state.receive_message(kit.account, LI, "就要这个", kind="quote", quoted_id="77", quoted_text="A款")
    kit.state.receive_message(kit.account, LI, kind="quote", title="就要这个", quoted_id="77")
    events = _messages(kit)
    assert [e.message_kind for e in events] == ["text", "text"]
    if kit.adapter == "wcferry":  # appmsg 57: the title is the reply, refermsg what it quotes
        assert events[1].text == "就要这个" and events[1].fields["quote_of"] == "77"


def test_room_leaves_removed_by_the_account_by_another_and_a_quit(kit: Kit) -> None:
    room = kit.account.rooms[ROOM.id]
    kit.account.rooms[ROOM.id] = type(room)(room.id, room.topic, room.owner_id, (SELF_ID, LI, WANG))
    kit.state.leave_room(kit.account, ROOM.id, [LI], remover=SELF_ID)
    kit.state.add_contact(kit.account, Contact("wxid_zhao", name="赵同学"))
    kit.account.rooms[ROOM.id] = type(room)(room.id, room.topic, room.owner_id, (SELF_ID, WANG, "wxid_zhao"))
    kit.state.leave_room(kit.account, ROOM.id, ["wxid_zhao"], remover=WANG)
    kit.state.leave_room(kit.account, ROOM.id, [WANG])
    events = [e for e in kit.gateway.events(idle_timeout=0.5) if e.kind == "room_leave"]
    assert [(e.room_id, e.members) for e in events] == [
        (ROOM.id, (LI,)),
        (ROOM.id, ("wxid_zhao",)),
        (ROOM.id, (WANG,)),
    ]
    assert [e.subject for e in events][:2] == [SELF_ID, WANG]
    assert events[2].subject in ("", WANG)  # a quit: nobody removed them


# -- through sopflow ---------------------------------------------------------------------------------


def _replay(app_fake: Any) -> None:
    """The gateway offers its whole stream again (a reconnect after a crash)."""
    app_fake.state.account(TOKEN).streamed = 0


def test_each_kind_is_a_message_received_with_its_kind_and_a_replay_is_a_no_op(
    api: Any, app_fake: Any, account_id: int
) -> None:
    for kind, text, fields in KINDS:
        app_fake.state.receive_message(app_fake.state.account(TOKEN), LI, text, kind=kind, **fields)
    assert intake_via_api(api, account_id) == len(KINDS)
    received = api.get("/api/v1/events?type=message.received").json()["items"]
    payloads = {e["payload"]["kind"]: e["payload"] for e in received}
    assert set(payloads) == {k for k, _, _ in KINDS}
    assert payloads["text"]["text"] == "价格多少"
    assert (payloads["link"]["text"], payloads["link"]["url"]) == ("护理指南", "https://example.com/p")
    assert (payloads["mini_program"]["text"], payloads["mini_program"]["app_id"]) == ("商城", "wx1234567890")
    assert payloads["location"]["label"] == "上海市静安区南京西路1号"
    assert payloads["image"]["media_id"] and payloads["image"]["text"] == ""
    assert all(p["message_id"] for p in payloads.values())
    _replay(app_fake)
    assert intake_via_api(api, account_id) == 0
    assert len(api.get("/api/v1/events?type=message.received").json()["items"]) == len(KINDS)


def test_a_keyword_rule_sees_a_link_by_its_title_and_not_an_image(
    api: Any, app_fake: Any, account_id: int
) -> None:
    """A keyword rule reads ``payload.text``: a link card's title matches; an image
    (no text in either protocol) matches nothing."""
    made = api.post(
        "/api/v1/keyword-rules",
        json={"name": "报价", "keywords": ["报价"], "actions": [{"type": "add_tag", "tag": "问报价"}]},
    )
    assert made.status_code == 201, made.text
    account = app_fake.state.account(TOKEN)
    app_fake.state.receive_message(account, WANG, kind="image", name="报价.jpg")
    app_fake.state.receive_message(account, LI, kind="link", title="报价单下载", url="https://example.com/q")
    assert intake_via_api(api, account_id) == 2
    tags = {
        c["identities"][0]["external_id"]: c["tags"]
        for c in api.get("/api/v1/customers?channel=personal_wechat").json()["items"]
    }
    assert tags == {LI: ["问报价"], WANG: []}


def test_room_leaves_are_group_left_per_member_and_a_replay_is_a_no_op(
    api: Any, app_fake: Any, account_id: int
) -> None:
    state, account = app_fake.state, app_fake.state.account(TOKEN)
    room = account.rooms[ROOM.id]
    account.rooms[ROOM.id] = type(room)(room.id, room.topic, room.owner_id, (SELF_ID, LI, WANG))
    state.leave_room(account, ROOM.id, [LI, WANG], remover=SELF_ID)
    state.add_contact(account, Contact("wxid_zhao", name="赵同学"))
    account.rooms[ROOM.id] = type(room)(room.id, room.topic, room.owner_id, (SELF_ID, "wxid_zhao"))
    state.leave_room(account, ROOM.id, ["wxid_zhao"])  # a quit
    assert intake_via_api(api, account_id) == 3
    left = api.get("/api/v1/events?type=group.left").json()["items"]
    assert {e["payload"]["room_id"] for e in left} == {ROOM.id}
    removers = {e["customer_id"]: e["payload"]["remover"] for e in left}
    customers = api.get("/api/v1/customers?channel=personal_wechat").json()["items"]
    by_wxid = {c["identities"][0]["external_id"]: c["id"] for c in customers}
    assert removers == {by_wxid[LI]: SELF_ID, by_wxid[WANG]: SELF_ID, by_wxid["wxid_zhao"]: None}
    _replay(app_fake)
    assert intake_via_api(api, account_id) == 0
    assert len(api.get("/api/v1/events?type=group.left").json()["items"]) == 3
