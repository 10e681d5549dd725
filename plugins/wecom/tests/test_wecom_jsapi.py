"""The sidebar's backend pieces: WeCom's JS-SDK signature (against the published
example), the cached jsapi tickets within WeCom's fetch limits, and the OAuth
code exchange, over real HTTP against the fake WeCom."""

from __future__ import annotations

from typing import Any

import pytest
from sopflow_sdk import FatalError, RetriableError, SopflowError
from sopflow_wecom.jsapi import JsapiTickets, TicketFetchLog, js_signature
from sopflow_wecom.oauth import authorize_url, member_from_code

# WeCom's published example (document 90506, "JS-SDK使用权限签名算法")
EXAMPLE = {
    "ticket": "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg",
    "noncestr": "Wm3WZYTPz0wzccnW",
    "timestamp": 1414587457,
    "url": "http://mp.weixin.qq.com?params=value",
}
EXAMPLE_SIGNATURE = "0f9de62fce790f9a083d5c99e95740ceb90c27ed"


def test_the_signature_matches_wecoms_published_example() -> None:
    assert js_signature(**EXAMPLE) == EXAMPLE_SIGNATURE
    # the page's fragment is not part of what is signed
    assert js_signature(**{**EXAMPLE, "url": EXAMPLE["url"] + "#/customer/7"}) == EXAMPLE_SIGNATURE
    assert js_signature(**{**EXAMPLE, "url": EXAMPLE["url"] + "&x=1"}) != EXAMPLE_SIGNATURE


def test_tickets_are_cached_until_shortly_before_they_expire(fake: Any, clock: Any, client: Any) -> None:
    tickets = JsapiTickets(client, 1000002)
    first = tickets.configs("https://sop.example.com/sidebar?x=1#top", noncestr="n0nce", timestamp=1700000000)
    second = tickets.configs("https://sop.example.com/sidebar?x=1", noncestr="n0nce", timestamp=1700000000)
    assert first == second
    assert fake.count("get_jsapi_ticket") == 1 and fake.count("ticket/get") == 1
    corp = tickets.corp_ticket().reveal()
    assert corp in fake.tickets and first["config"]["signature"] == js_signature(
        corp, "n0nce", 1700000000, "https://sop.example.com/sidebar?x=1"
    )
    assert first["agentConfig"]["jsApiList"] == ["getCurExternalContact"]
    assert first["agentConfig"]["signature"] != first["config"]["signature"]
    clock.advance(7200 - 301)
    tickets.corp_ticket()
    assert fake.count("get_jsapi_ticket") == 1
    clock.advance(2)  # within 300 s of WeCom's expiry: fetched again
    assert tickets.corp_ticket().reveal() != corp
    assert fake.count("get_jsapi_ticket") == 2
    assert corp not in repr(tickets)


def test_fetches_past_wecoms_hourly_limit_are_refused_before_wecom_sees_them(
    fake: Any, clock: Any, client: Any
) -> None:
    log = TicketFetchLog(clock, app_limit=3)
    tickets = JsapiTickets(client, 1000002, fetch_log=log)
    for _ in range(3):  # an invalidation storm: every call fetches
        tickets._corp.invalidate()
        tickets.corp_ticket()
    tickets._corp.invalidate()
    with pytest.raises(RetriableError) as refused:
        tickets.corp_ticket()
    assert "3 jsapi_ticket fetches an hour per app" in refused.value.user_message
    assert 0 < refused.value.retry_after <= 3600
    assert fake.count("get_jsapi_ticket") == 3
    clock.advance(3601)
    tickets.corp_ticket()  # the hour has passed
    assert fake.count("get_jsapi_ticket") == 4


def test_the_fake_answers_45009_past_100_ticket_fetches_an_hour(client: Any) -> None:
    for _ in range(100):
        client.call("GET", "get_jsapi_ticket")
    with pytest.raises(SopflowError) as refused:
        client.call("GET", "get_jsapi_ticket")
    assert getattr(refused.value, "errcode", None) == 45009


def test_an_oauth_code_gives_the_member_once(fake: Any, clock: Any, client: Any) -> None:
    fake.add_staff("zhangsan")
    code = fake.oauth_code("zhangsan")
    assert member_from_code(client, code) == "zhangsan"
    with pytest.raises(SopflowError) as reused:
        member_from_code(client, code)  # a code is good once
    assert getattr(reused.value, "errcode", None) == 40029
    late = fake.oauth_code("zhangsan")
    clock.advance(301)
    with pytest.raises(SopflowError):
        member_from_code(client, late)
    with pytest.raises(FatalError, match="not a member"):
        member_from_code(client, fake.oauth_code("outsider-openid"))
    with pytest.raises(FatalError, match="missing"):
        member_from_code(client, "")


def test_the_authorize_url_asks_for_a_silent_code() -> None:
    url = authorize_url("wwcorp", 1000002, "https://sop.example.com/sidebar?a=1", state="s1")
    assert url.startswith("https://open.weixin.qq.com/connect/oauth2/authorize?appid=wwcorp&")
    assert "redirect_uri=https%3A%2F%2Fsop.example.com%2Fsidebar%3Fa%3D1" in url
    assert "scope=snsapi_base" in url and "agentid=1000002" in url and url.endswith("#wechat_redirect")
