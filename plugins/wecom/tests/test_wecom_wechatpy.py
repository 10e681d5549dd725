"""The fake WeCom checked by a client we did not write: wechatpy 1.8.18.

Our own client and the fake were written from the same reading of WeCom's
documentation, so a misunderstanding would be repeated on both sides and every
test would pass.  wechatpy (``wechatpy.enterprise``) was written against the real
API by others; here it drives the fake over real HTTP, for every endpoint both
have, and the answers are checked for the shapes wechatpy's users (and WeCom's
documentation) expect.  Endpoints wechatpy 1.8.18 has no method for go through
its generic ``client.post``/``client.get``, which still runs its token handling
and errcode checks.

wechatpy's ``fetch_access_token`` hard-codes WeCom's host; ``FakeWeComClient``
points it (and ``API_BASE_URL``) at the fake, the way its API allows: a subclass.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import xmltodict
from sopflow_wecom.fake import FakeClock, FakeWeCom
from wechatpy.enterprise import WeChatClient
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.exceptions import WeChatClientException
from wecom_support import CALLBACK_AES_KEY, CALLBACK_TOKEN

DAY = 86_400


class FakeWeComClient(WeChatClient):
    """wechatpy's WeCom client, talking to a ``FakeWeCom`` instead of qyapi.weixin.qq.com."""

    def __init__(self, fake: FakeWeCom, secret: str | None = None, **kwargs: Any) -> None:
        super().__init__(fake.corp_id, fake.secret if secret is None else secret, **kwargs)
        self.API_BASE_URL = fake.base_url + "/"

    def fetch_access_token(self) -> dict[str, Any]:
        return self._fetch_access_token(
            url=self.API_BASE_URL + "gettoken", params={"corpid": self.corp_id, "corpsecret": self.secret}
        )


@pytest.fixture
def clock() -> FakeClock:
    # A clock between whole seconds, as a real one almost always is: WeCom works in
    # whole seconds, and a fake that compares floats with ints shows it here.
    return FakeClock(start=1_700_000_000.6)


@pytest.fixture
def wechat(fake: FakeWeCom) -> Iterator[FakeWeComClient]:
    client = FakeWeComClient(fake, timeout=5)
    yield client
    client._http.close()


def errcode_of(call: Any, *args: Any, **kwargs: Any) -> int | None:
    with pytest.raises(WeChatClientException) as caught:
        call(*args, **kwargs)
    return caught.value.errcode


# -- tokens ----------------------------------------------------------------------------------------


def test_token_fetched_cached_and_refetched_after_expiry(fake: FakeWeCom, wechat: FakeWeComClient) -> None:
    assert wechat.external_contact.get_follow_user_list()["follow_user"] == []
    token = wechat.session.get(wechat.access_token_key)
    assert token and fake.count("gettoken") == 1
    fake.expire_tokens()  # 42001: wechatpy fetches a new token and repeats the call
    assert wechat.external_contact.get_follow_user_list()["errcode"] == 0
    assert fake.count("gettoken") == 2
    assert wechat.session.get(wechat.access_token_key) != token


def test_token_errors(fake: FakeWeCom) -> None:
    assert errcode_of(FakeWeComClient(fake, secret="wrong-secret").fetch_access_token) == 40001
    other = FakeWeComClient(fake)
    other.corp_id = "wwunknowncorp"
    assert errcode_of(other.fetch_access_token) == 40013


# -- customers -------------------------------------------------------------------------------------


def test_follow_users_list_and_detail(fake: FakeWeCom, wechat: FakeWeComClient) -> None:
    [tag] = fake.create_corp_tags("级别", "VIP")
    fake.seed_contact("zhangsan", "wmA", "客户A", state="poster", tag_ids=[tag])
    fake.add_staff("lisi")
    assert wechat.external_contact.get_follow_user_list()["follow_user"] == ["lisi", "zhangsan"]
    assert wechat.external_contact.list("zhangsan")["external_userid"] == ["wmA"]

    detail = wechat.external_contact.get("wmA")
    assert {"external_userid", "name", "type", "gender"} <= set(detail["external_contact"])
    [follow] = detail["follow_user"]
    assert {"userid", "remark", "description", "createtime", "tags", "remark_corp_name"} <= set(follow)
    assert {"remark_mobiles", "add_way", "oper_userid", "state"} <= set(follow)
    assert follow["tags"] == [{"group_name": "级别", "tag_name": "VIP", "tag_id": tag, "type": 1}]
    assert follow["state"] == "poster"
    assert errcode_of(wechat.external_contact.get, "wmNOBODY") == 84061


def test_customer_list_of_a_member_without_customers_is_84061(
    fake: FakeWeCom, wechat: FakeWeComClient
) -> None:
    """Document 92113: a member with customer contact but no customers answers 84061."""
    fake.add_staff("lisi")
    assert errcode_of(wechat.external_contact.list, "lisi") == 84061
    assert errcode_of(wechat.external_contact.list, "nobody") == 60111


def test_batch_get_by_user(fake: FakeWeCom, wechat: FakeWeComClient) -> None:
    fake.seed_contact("zhangsan", "wmA")
    fake.seed_contact("lisi", "wmA")
    answer = wechat.post(
        "externalcontact/batch/get_by_user", data={"userid_list": ["zhangsan", "lisi"], "limit": 1}
    )
    [item] = answer["external_contact_list"]
    assert item["external_contact"]["external_userid"] == "wmA"
    assert {"userid", "remark", "description", "createtime", "tag_id", "remark_corp_name"} <= set(
        item["follow_info"]
    )
    assert answer["next_cursor"]
    assert answer["fail_info"] == {"unlicensed_userid_list": []}
    rest = wechat.post(
        "externalcontact/batch/get_by_user",
        data={"userid_list": ["zhangsan", "lisi"], "cursor": answer["next_cursor"]},
    )
    assert [i["follow_info"]["userid"] for i in rest["external_contact_list"]] == ["lisi"]
    assert rest["next_cursor"] == ""


# -- contact ways ----------------------------------------------------------------------------------


def test_contact_way_lifecycle(fake: FakeWeCom, wechat: FakeWeComClient) -> None:
    fake.add_staff("zhangsan")
    made = wechat.external_contact.add_contact_way(1, 2, state="poster", user=["zhangsan"])
    config_id = made["config_id"]
    assert made["qr_code"]
    way = wechat.external_contact.get_contact_way(config_id)["contact_way"]
    assert way["config_id"] == config_id and way["state"] == "poster" and way["user"] == ["zhangsan"]
    assert {"type", "scene", "style", "remark", "skip_verify", "qr_code", "party", "is_temp"} <= set(way)
    assert way["is_exclusive"] is False
    wechat.external_contact.update_contact_way(config_id, "海报", state="poster2", user=["zhangsan"])
    way = wechat.external_contact.get_contact_way(config_id)["contact_way"]
    assert (way["remark"], way["state"]) == ("海报", "poster2")
    wechat.external_contact.del_contact_way(config_id)
    assert errcode_of(wechat.external_contact.get_contact_way, config_id) == 40058


def test_list_contact_way_includes_a_way_made_this_second(fake: FakeWeCom, wechat: FakeWeComClient) -> None:
    """Document 92228 works in whole seconds: the default window ends now, and a way
    created in the current second is in it."""
    fake.add_staff("zhangsan")
    config_id = wechat.external_contact.add_contact_way(1, 2, user=["zhangsan"])["config_id"]
    listed = wechat.post("externalcontact/list_contact_way", data={})
    assert listed["contact_way"] == [{"config_id": config_id}]
    now = int(fake.clock())
    explicit = wechat.post("externalcontact/list_contact_way", data={"start_time": now, "end_time": now})
    assert explicit["contact_way"] == [{"config_id": config_id}]


# -- welcome and mass sends --------------------------------------------------------------------------


def test_welcome_message_once(fake: FakeWeCom, wechat: FakeWeComClient) -> None:
    code = fake.add_customer("zhangsan", "wmA")
    assert code is not None
    template = {"welcome_code": code, "text": {"content": "你好"}}
    assert wechat.external_contact.send_welcome_msg(template)["errcode"] == 0
    assert errcode_of(wechat.external_contact.send_welcome_msg, template) == 41051


def test_welcome_message_needs_content(fake: FakeWeCom, wechat: FakeWeComClient) -> None:
    """Document 92599: text and attachments cannot both be empty."""
    code = fake.add_customer("zhangsan", "wmA")
    assert errcode_of(wechat.external_contact.send_welcome_msg, {"welcome_code": code}) == 40058
    assert wechat.external_contact.send_welcome_msg({"welcome_code": code, "text": {"content": "hi"}})


def test_mass_send_task_results_and_list(fake: FakeWeCom, wechat: FakeWeComClient) -> None:
    fake.seed_contact("zhangsan", "wmA")
    link = {"msgtype": "link", "link": {"title": "新品", "url": "https://example.com/p"}}
    made = wechat.external_contact.add_msg_template(
        {"external_userid": ["wmA", "wmNOBODY"], "text": {"content": "上新了"}, "attachments": [link]}
    )
    msgid = made["msgid"]
    assert made["fail_list"] == ["wmNOBODY"]
    task = wechat.post("externalcontact/get_groupmsg_task", data={"msgid": msgid})
    assert task["task_list"] == [{"userid": "zhangsan", "status": 0}]
    fake.confirm(msgid, "zhangsan")
    result = wechat.post(
        "externalcontact/get_groupmsg_send_result", data={"msgid": msgid, "userid": "zhangsan"}
    )
    [row] = result["send_list"]
    assert (row["external_userid"], row["userid"], row["status"]) == ("wmA", "zhangsan", 1)
    assert isinstance(row["send_time"], int)

    now = int(fake.clock())
    listed = wechat.post(
        "externalcontact/get_groupmsg_list_v2",
        data={"chat_type": "single", "start_time": now - DAY, "end_time": now + 1},
    )
    [record] = listed["group_msg_list"]
    assert record["msgid"] == msgid and record["create_type"] == 0
    assert record["text"] == {"content": "上新了"} and record["attachments"] == [link]
    assert isinstance(record["create_time"], int) and listed["next_cursor"] == ""


def test_mass_send_needs_content(fake: FakeWeCom, wechat: FakeWeComClient) -> None:
    """Document 92135: text and attachments cannot both be empty."""
    fake.seed_contact("zhangsan", "wmA")
    assert errcode_of(wechat.external_contact.add_msg_template, {"external_userid": ["wmA"]}) == 40058


def test_groupmsg_list_window_is_at_most_a_month(fake: FakeWeCom, wechat: FakeWeComClient) -> None:
    now = int(fake.clock())
    window = {"chat_type": "single", "start_time": now - 40 * DAY, "end_time": now}
    assert errcode_of(wechat.post, "externalcontact/get_groupmsg_list_v2", data=window) == 40058


# -- app messages ----------------------------------------------------------------------------------


def test_app_message_reports_invalid_recipients(fake: FakeWeCom, wechat: FakeWeComClient) -> None:
    """Document 90236: partly invalid recipients are reported, the rest receive it."""
    fake.add_staff("zhangsan")
    sent = wechat.message.send(
        fake.agent_id,
        ["zhangsan", "ghost"],
        party_ids=["77"],
        tag_ids=["88"],
        msg={"msgtype": "text", "text": {"content": "提醒"}},
    )
    assert sent["invaliduser"] == "ghost"
    assert sent["invalidparty"] == "77" and sent["invalidtag"] == "88"
    assert sent["unlicenseduser"] == "" and sent["msgid"]
    assert [m for m, _, _ in fake.app_message_bodies] == ["zhangsan"]


def test_app_message_to_a_department(fake: FakeWeCom, wechat: FakeWeComClient) -> None:
    fake.add_staff("zhangsan")
    fake.add_staff("lisi")
    sent = wechat.message.send(
        fake.agent_id, "", party_ids="1", msg={"msgtype": "text", "text": {"content": "x"}}
    )
    assert sent["invalidparty"] == ""
    assert sorted(m for m, _, _ in fake.app_message_bodies) == ["lisi", "zhangsan"]


def test_app_message_with_no_valid_recipient_is_81013(fake: FakeWeCom, wechat: FakeWeComClient) -> None:
    fake.add_staff("zhangsan")
    assert errcode_of(wechat.message.send_text, fake.agent_id, ["ghost"], "x") == 81013
    assert fake.app_message_bodies == []


def test_app_message_checks_the_agentid(fake: FakeWeCom, wechat: FakeWeComClient) -> None:
    fake.add_staff("zhangsan")
    assert errcode_of(wechat.message.send_text, 42, ["zhangsan"], "x") == 40056
    assert fake.app_message_bodies == []


# -- corp tags -------------------------------------------------------------------------------------


def test_corp_tag_lifecycle(fake: FakeWeCom, wechat: FakeWeComClient) -> None:
    made = wechat.external_contact.add_corp_tag(
        None, "级别", 5, [{"name": "VIP", "order": 2}, {"name": "普通"}]
    )
    group = made["tag_group"]
    assert {"group_id", "group_name", "create_time", "order"} <= set(group)
    vip, plain = (t["id"] for t in group["tag"])
    assert all({"id", "name", "create_time", "order"} <= set(t) for t in group["tag"])

    listed = wechat.external_contact.get_corp_tag_list()["tag_group"]
    assert [(g["group_name"], g["order"]) for g in listed] == [("级别", 5)]
    assert [(t["name"], t["order"]) for t in listed[0]["tag"]] == [("VIP", 2), ("普通", 0)]

    wechat.external_contact.edit_corp_tag(vip, "VIP客户", 9)
    [only] = wechat.external_contact.get_corp_tag_list([vip])["tag_group"]
    assert [(t["name"], t["order"], t["deleted"]) for t in only["tag"]] == [("VIP客户", 9, False)]
    assert errcode_of(wechat.external_contact.edit_corp_tag, "etNOPE", "x", None) == 40068

    fake.seed_contact("zhangsan", "wmA")
    wechat.external_contact.mark_tag("zhangsan", "wmA", add_tag=[vip, plain])
    wechat.external_contact.mark_tag("zhangsan", "wmA", remove_tag=[plain])
    tags = wechat.external_contact.get("wmA")["follow_user"][0]["tags"]
    assert [t["tag_id"] for t in tags] == [vip]


def test_del_corp_tag_follows_the_documentation(fake: FakeWeCom, wechat: FakeWeComClient) -> None:
    """Document 92117: a deleted tag leaves customers; a group whose tags are all
    deleted goes too; tag_id and group_id cannot both be empty."""
    group = wechat.external_contact.add_corp_tag(None, "级别", None, [{"name": "VIP"}, {"name": "普通"}])
    vip, plain = (t["id"] for t in group["tag_group"]["tag"])
    fake.seed_contact("zhangsan", "wmA", tag_ids=[vip, plain])

    wechat.external_contact.del_corp_tag(tag_id=[vip])
    follow = wechat.post("externalcontact/batch/get_by_user", data={"userid_list": ["zhangsan"]})
    assert follow["external_contact_list"][0]["follow_info"]["tag_id"] == [plain]

    wechat.external_contact.del_corp_tag(tag_id=[plain])
    assert wechat.external_contact.get_corp_tag_list()["tag_group"] == []
    [gone] = wechat.external_contact.get_corp_tag_list([vip])["tag_group"]
    assert gone["tag"][0]["deleted"] is True

    assert errcode_of(wechat.external_contact.del_corp_tag) == 40058
    assert errcode_of(wechat.external_contact.del_corp_tag, tag_id=["etNOPE"]) == 40068


def test_corp_tag_list_filters(fake: FakeWeCom, wechat: FakeWeComClient) -> None:
    """Document 92117: with both tag_id and group_id, tag_id is ignored."""
    a = wechat.external_contact.add_corp_tag(None, "A", None, [{"name": "a1"}, {"name": "a2"}])["tag_group"]
    b = wechat.external_contact.add_corp_tag(None, "B", None, [{"name": "b1"}])["tag_group"]
    by_group = wechat.post(
        "externalcontact/get_corp_tag_list", data={"group_id": [a["group_id"]], "tag_id": [b["tag"][0]["id"]]}
    )["tag_group"]
    assert [(g["group_name"], len(g["tag"])) for g in by_group] == [("A", 2)]


def test_add_corp_tag_refusals(fake: FakeWeCom, wechat: FakeWeComClient) -> None:
    group = wechat.external_contact.add_corp_tag(None, "级别", None, [{"name": "VIP"}, {"name": "VIP"}])
    assert [t["name"] for t in group["tag_group"]["tag"]] == ["VIP"]  # one of the same name
    group_id = group["tag_group"]["group_id"]
    add = wechat.external_contact.add_corp_tag
    assert errcode_of(add, group_id, None, None, [{"name": "VIP"}]) == 40071
    assert errcode_of(add, None, "空组", None, []) == 41018
    assert errcode_of(add, "etgNOPE", None, None, [{"name": "x"}]) == 40068


# -- customer groups -------------------------------------------------------------------------------


def test_groupchat_list_and_detail(fake: FakeWeCom, wechat: FakeWeComClient) -> None:
    fake.create_group("wrChat1", "zhangsan", "VIP群", members=["zhangsan", "wmA"])
    [row] = wechat.external_contact_group_chat.list_all()
    assert row == {"chat_id": "wrChat1", "status": 0}
    chat = wechat.post("externalcontact/groupchat/get", data={"chat_id": "wrChat1", "need_name": 1})[
        "group_chat"
    ]
    assert {"chat_id", "name", "owner", "create_time", "notice", "member_list"} <= set(chat)
    assert {"admin_list", "member_version"} <= set(chat)
    for member in chat["member_list"]:
        assert {"userid", "type", "join_time", "join_scene", "group_nickname", "name"} <= set(member)
    assert {m["type"] for m in chat["member_list"]} == {1, 2}
    assert errcode_of(wechat.external_contact_group_chat.get, "wrNOPE") == 40050


# -- moments ---------------------------------------------------------------------------------------


def test_moment_task_result_shape(fake: FakeWeCom, wechat: FakeWeComClient) -> None:
    jobid = wechat.post("externalcontact/add_moment_task", data={"text": {"content": "上新"}})["jobid"]
    assert wechat.get("externalcontact/get_moment_task_result", params={"jobid": jobid})["status"] == 1
    fake.confirm_moment(jobid)
    result = wechat.get("externalcontact/get_moment_task_result", params={"jobid": jobid})
    assert result["status"] == 3 and result["type"] == "add_moment_task"
    assert result["result"]["moment_id"]
    assert result["result"]["invalid_sender_list"] == {"user_list": [], "department_list": []}
    assert result["result"]["invalid_external_contact_list"] == {"tag_list": []}


# -- transfers -------------------------------------------------------------------------------------


def test_onjob_transfer_completes_after_a_day(
    fake: FakeWeCom, wechat: FakeWeComClient, clock: FakeClock
) -> None:
    fake.seed_contact("zhangsan", "wmA")
    fake.add_staff("lisi")
    body = {"handover_userid": "zhangsan", "takeover_userid": "lisi", "external_userid": ["wmA", "wmZ"]}
    answer = wechat.post("externalcontact/transfer_customer", data=body)
    assert answer["customer"] == [
        {"external_userid": "wmA", "errcode": 0},
        {"external_userid": "wmZ", "errcode": 84061},
    ]
    pair = {"handover_userid": "zhangsan", "takeover_userid": "lisi"}
    [row] = wechat.post("externalcontact/transfer_result", data=pair)["customer"]
    assert (row["external_userid"], row["status"]) == ("wmA", 2)
    clock.advance(DAY + 1)
    [row] = wechat.post("externalcontact/transfer_result", data=pair)["customer"]
    assert row["status"] == 1 and isinstance(row["takeover_time"], int)
    assert [f["userid"] for f in wechat.external_contact.get("wmA")["follow_user"]] == ["lisi"]


def test_resigned_members_customers(fake: FakeWeCom, wechat: FakeWeComClient) -> None:
    fake.seed_contact("wangwu", "wmA")
    fake.add_staff("lisi")
    fake.resign("wangwu")
    unassigned = wechat.external_contact.get_unassigned_list(0, 100)
    assert [(i["handover_userid"], i["external_userid"]) for i in unassigned["info"]] == [("wangwu", "wmA")]
    assert unassigned["is_last"] is True
    body = {"handover_userid": "wangwu", "takeover_userid": "lisi", "external_userid": ["wmA"]}
    answer = wechat.post("externalcontact/resigned/transfer_customer", data=body)
    assert answer["customer"] == [{"external_userid": "wmA", "errcode": 0}]
    pair = {"handover_userid": "wangwu", "takeover_userid": "lisi"}
    [row] = wechat.post("externalcontact/resigned/transfer_result", data=pair)["customer"]
    assert row["status"] == 2


def test_group_chat_transfer(fake: FakeWeCom, wechat: FakeWeComClient) -> None:
    fake.create_group("wrChat1", "zhangsan", "VIP群", members=["zhangsan", "wmA"])
    fake.add_staff("lisi")
    body = {"chat_id_list": ["wrChat1", "wrNOPE"], "new_owner": "lisi"}
    answer = wechat.post("externalcontact/groupchat/onjob_transfer", data=body)
    assert [(f["chat_id"], f["errcode"]) for f in answer["failed_chat_list"]] == [("wrNOPE", 40050)]
    assert wechat.external_contact_group_chat.get("wrChat1")["group_chat"]["owner"] == "lisi"


# -- unknown paths ---------------------------------------------------------------------------------


def test_an_unknown_api_invents_no_errcode(fake: FakeWeCom, wechat: FakeWeComClient) -> None:
    wechat.external_contact.get_follow_user_list()
    response = requests.get(f"{fake.base_url}/externalcontact/no_such_api", timeout=5)
    assert response.status_code == 404
    assert "errcode" not in response.text
    assert errcode_of(wechat.get, "externalcontact/no_such_api") is None


# -- callback crypto, both directions -------------------------------------------------------------------


@pytest.fixture
def wechatpy_receiver(fake: FakeWeCom) -> Iterator[list[str]]:
    """A callback URL whose handler is wechatpy's crypto: it answers the echostr
    handshake and decrypts every callback the fake sends."""
    crypto = WeChatCrypto(CALLBACK_TOKEN, CALLBACK_AES_KEY, fake.corp_id)
    received: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            q = dict(parse_qsl(urlsplit(self.path).query))
            if self.command == "GET":
                body = crypto.check_signature(q["msg_signature"], q["timestamp"], q["nonce"], q["echostr"])
            else:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(crypto.decrypt_message(raw, q["msg_signature"], q["timestamp"], q["nonce"]))
                body = ""
            data = body.encode() if isinstance(body, str) else body
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    fake.set_callback(f"http://127.0.0.1:{server.server_address[1]}/cb", CALLBACK_TOKEN, CALLBACK_AES_KEY)
    yield received
    server.shutdown()
    server.server_close()


def test_fake_callbacks_decrypt_with_wechatpy(fake: FakeWeCom, wechatpy_receiver: list[str]) -> None:
    assert fake.verify_callback_url()
    fake.add_customer("zhangsan", "wmA", state="poster")
    [xml] = wechatpy_receiver
    fields = xmltodict.parse(xml)["xml"]
    assert (fields["ChangeType"], fields["State"], fields["ExternalUserID"]) == (
        "add_external_contact",
        "poster",
        "wmA",
    )


def test_wechatpy_encrypted_callback_reaches_the_plugin(
    fake: FakeWeCom, callback_receiver: tuple[str, Any]
) -> None:
    url, host = callback_receiver
    crypto = WeChatCrypto(CALLBACK_TOKEN, CALLBACK_AES_KEY, fake.corp_id)
    plain = (
        f"<xml><ToUserName><![CDATA[{fake.corp_id}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{int(fake.clock())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[add_external_contact]]>"
        "</ChangeType><UserID><![CDATA[zhangsan]]></UserID><ExternalUserID><![CDATA[wmA]]></ExternalUserID>"
        "</xml>"
    )
    timestamp = str(int(fake.clock()))  # WeCom's time, which the receiver shares
    envelope = crypto.encrypt_message(plain, "1234567", timestamp)
    signature = xmltodict.parse(envelope)["xml"]["MsgSignature"]
    query = {"msg_signature": signature, "timestamp": timestamp, "nonce": "1234567"}
    # wechatpy builds the *reply* envelope; WeCom posts <Encrypt> inside the same <xml>
    response = requests.post(url, params=query, data=envelope.encode(), timeout=5)
    assert response.status_code == 200, response.text
    [(_, event)] = host.events
    assert (event.type, event.identity.external_id) == ("customer.added", "wmA")
