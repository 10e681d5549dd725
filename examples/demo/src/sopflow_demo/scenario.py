"""What the demo sets up through the public HTTP API: the seeds' fields, live
QR codes, SOPs (seed 000's incubation, seed 001's sunscreen nurture with its
early-end rule and flow, both reading the orders plugin's ``orders.count``),
the shop scene (``shop.py``: a 有赞 shop and a hosted skin-type survey), and —
when the journeys API is present — the lifecycle journey with stage rules and
seed 003's keyword rules."""

from __future__ import annotations

from typing import Any

import attrs

from sopflow_demo.journey import install_journey
from sopflow_demo.shop import SURVEY_INVITE, install_shop
from sopflow_demo.world import ApiSession, World

STAFF = ("zhangsan", "lisi", "wangwu")
SOURCES = ("qr_spring_poster", "qr_livestream")

FIELDS = [
    {"key": "city", "type": "text", "label": "城市"},
    {"key": "intent", "type": "choice", "label": "意向", "choices": ["low", "medium", "high"]},
]


def _wecom(text: str, touchpoint: str = "private_chat") -> dict[str, Any]:
    return {"type": "send", "channel": "wecom", "touchpoint": touchpoint, "text": text}


#: The welcome message (欢迎语) as the customer adds the staff member: WeCom's code
#: is valid once, for 20 seconds.
WELCOME = {
    "kind": "new_customer",
    "target": {"sources": list(SOURCES)},
    "steps": [
        {
            "delay": "0m",
            "actions": [_wecom("{{ customer.display_name }}，欢迎！回复「资料」领取新人礼包", "welcome")],
        }
    ],
}

#: Seed 000: three days, six touches, private chat in the evening, moments in the morning.
INCUBATION = {
    "kind": "new_customer",
    "target": {"sources": list(SOURCES)},
    "early_end": {"field": "orders.count", "op": "gte", "value": 1},
    "on_early_end": {"tags_add": ["孵化转化"]},
    "on_complete": {"tags_add": ["孵化完成"]},
    "goal": {"event_type": "order.paid"},
    "goal_window_days": 7,
    "steps": [
        {
            "day": 0,
            "at": "20:00",
            "actions": [_wecom("{{ customer.display_name }}，欢迎！这是新人礼包的领取方式")],
        },
        {"day": 1, "at": "09:00", "actions": [_wecom("防晒小课堂：SPF 和 PA 怎么看", "moments")]},
        {"day": 1, "at": "20:00", "actions": [_wecom("{{ customer.display_name }}，试用装用了吗？")]},
        {"day": 2, "at": "09:00", "actions": [_wecom("买家秀：一周不晒黑", "moments")]},
        {"day": 2, "at": "20:00", "actions": [_wecom("今晚 8 点直播间有专属优惠券")]},
        {"day": 3, "at": "12:00", "actions": [_wecom("新人券明天到期，记得使用哦")]},
    ],
}

#: Seed 001: after buying sunscreen, day 5/10/15/30/40 at 10:00; ends early when the
#: customer buys again, and then flows into the repurchase care SOP.  The day-5
#: message links the hosted skin-type survey.
SUNSCREEN = {
    "kind": "nurture",
    "target": {"rule": {"field": "orders.count", "op": "gte", "value": 1}},
    "early_end": {"field": "orders.count", "op": "gte", "value": 2},
    "goal": {"event_type": "order.paid"},
    "goal_window_days": 40,
    "steps": [
        {"day": 5, "at": "10:00", "actions": [_wecom("用了 5 天，肤感还习惯吗" + SURVEY_INVITE)]},
        {"day": 10, "at": "10:00", "actions": [_wecom("出门前 15 分钟涂抹，效果更好")]},
        {"day": 15, "at": "10:00", "actions": [_wecom("半个月了，记得每 2 小时补涂")]},
        {"day": 30, "at": "10:00", "actions": [_wecom("一瓶大约用 30 天，需要补货吗？")]},
        {"day": 40, "at": "10:00", "actions": [_wecom("老客回购专享 8 折，今天有效")]},
    ],
}

REPURCHASE_CARE = {
    "kind": "nurture",
    "target": {"rule": {"tags": {"any_of": ["never-enters-directly"]}}},
    "steps": [{"delay": "1d", "actions": [_wecom("谢谢回购！送您一张会员日优惠券")]}],
}


@attrs.define
class Setup:
    tenant_id: int
    api: ApiSession
    api_key: str
    account_id: int
    live_codes: dict[str, str]
    sops: dict[str, int]
    journey_id: int | None = None
    keyword_sets: list[int] = attrs.Factory(list)
    #: hidden SOPs that send stage reminders to staff (not mass sends)
    reminder_sops: list[int] = attrs.Factory(list)
    #: the 有赞 shop's push URL (the orders plugin's route for the shop account)
    shop_url: str = ""
    #: a plain HTTP client for the shop's pushes and the customers' browsers
    web: Any = None
    #: the CRM scene (crm.py): the fake Salesforce org and what it did
    crm: Any = None


def install(world: World) -> Setup:
    tenant_id, api, key = world.create_tenant("demo-beauty")
    for field in FIELDS:
        api.post("/api/v1/fields", field)
    for userid in STAFF:
        api.post("/api/v1/staff", {"external_id": userid, "name": userid})
    fake = world.fake
    # the conversation archive (archive.py): its Secret and the key pair made at set-up
    archive_config, archive_secrets = world.archive.account_settings()
    account = api.post(
        "/api/v1/channel-accounts",
        {
            "channel": "wecom",
            "name": "main corp",
            "config": {
                "corp_id": fake.corp_id,
                "agent_id": fake.agent_id,
                "base_url": fake.base_url,
                **archive_config,
            },
            "secrets": {
                "secret": fake.secret,
                "callback_token": "demoCallbackToken",
                "encoding_aes_key": "demoEncodingAesKey0123456789abcdefghijklmnop"[:43],
                **archive_secrets,
            },
        },
    )
    callback = f"{world.base_url}/plugins/wecom/callback/{account['id']}"
    fake.set_callback(callback, "demoCallbackToken", "demoEncodingAesKey0123456789abcdefghijklmnop"[:43])
    if not fake.verify_callback_url():
        raise RuntimeError("the fake WeCom could not verify sopflow's callback URL")
    live_codes = {}
    for source in SOURCES:
        code = api.post(
            f"/plugins/wecom/accounts/{account['id']}/live-codes", {"source": source, "staff": list(STAFF)}
        )
        live_codes[source] = code["config_id"]
    care = _sop(api, "回购关怀", REPURCHASE_CARE)
    sunscreen = {**SUNSCREEN, "on_early_end": {"tags_add": ["回购"], "flow_to": care}}
    sops = {
        "新客孵化 (seed 000)": _sop(api, "新客孵化", INCUBATION),
        "欢迎语 (welcome)": _sop(api, "欢迎语", WELCOME),
        "防晒霜养护 (seed 001)": _sop(api, "防晒霜养护", sunscreen),
        "回购关怀 (flow target)": care,
    }
    setup = Setup(tenant_id, api, key, account["id"], live_codes, sops)
    install_shop(world, setup, _sop)
    install_journey(setup)
    return setup


def _sop(api: ApiSession, name: str, definition: dict[str, Any]) -> int:
    sop = api.post("/api/v1/sops", {"name": name, "definition": definition})
    api.post(f"/api/v1/sops/{sop['id']}/start")
    return sop["id"]
