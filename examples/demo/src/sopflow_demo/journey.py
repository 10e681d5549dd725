"""The lifecycle journey (seed 000: 激活 → 兴趣 → 孵化 → 决策 → 签单) and seed
003's keyword rules, set up through the public API: a reply such as "多少钱"
tags the customer 询价, and the stage rule moves them to 决策."""

from __future__ import annotations

from typing import Any

SOURCES = ("qr_spring_poster", "qr_livestream")

KEYWORD_RULES = [
    {
        "name": "询价",
        "keywords": ["多少钱", "价格", "优惠", "怎么下单"],
        "actions": [
            {"type": "add_tag", "tag": "询价"},
            {"type": "set_field", "field": "intent", "value": "high"},
        ],
    },
    {
        "name": "要资料",
        "keywords": ["资料", "试用", "了解"],
        "actions": [
            {"type": "add_tag", "tag": "感兴趣"},
            {"type": "set_field", "field": "intent", "value": "medium"},
        ],
    },
]


def _tags(*tags: str) -> dict[str, Any]:
    return {"conditions": [{"tags": {"any_of": list(tags)}}]}


JOURNEY = {
    "name": "客户生命周期",
    "reminder_channel": "wecom",
    "stage_reminders": True,
    "stages": [
        {"name": "激活", "rules": [{"conditions": [{"source": {"in": list(SOURCES)}}]}]},
        {"name": "兴趣", "rules": [_tags("感兴趣")]},
        {"name": "孵化", "rules": [_tags("孵化完成")]},
        {
            "name": "决策",
            "rules": [_tags("询价")],
            # the member who added the customer gets a ready-to-forward offer the next morning
            "reminders": [
                {
                    "day": 1,
                    "at": "10:00",
                    "text": "{{ customer.display_name }} 在问价格，可转发：新客专享 9 折",
                }
            ],
        },
        {"name": "签单", "rules": [{"conditions": [{"events": {"type": "order.paid", "min": 1}}]}]},
    ],
}


def install_journey(setup: Any) -> None:
    api = setup.api
    for rule in KEYWORD_RULES:
        setup.keyword_sets.append(api.post("/api/v1/keyword-rules", rule)["id"])
    journey = api.post("/api/v1/journeys", JOURNEY)
    api.post(f"/api/v1/journeys/{journey['id']}/start")
    setup.journey_id = journey["id"]
    for stage in journey["stages"]:
        if stage["reminder_sop_id"]:  # the stage's reminders, reported like any SOP
            setup.sops[f"{stage['name']} 阶段提醒 (journey)"] = stage["reminder_sop_id"]
            setup.reminder_sops.append(stage["reminder_sop_id"])


def board_counts(setup: Any) -> dict[str, int]:
    board = setup.api.get(f"/api/v1/journeys/{setup.journey_id}/board?limit=1")
    return {stage["name"]: stage["count"] for stage in board["stages"]}
