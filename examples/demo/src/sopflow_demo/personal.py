"""The personal WeChat scene: a personal account (个人号) in the demo tenant.

After the WeCom weeks, the tenant connects a personal account through a
Wechaty puppet service (the plugin's fake, over real gRPC on 127.0.0.1),
with small caps so the pacing shows in a few simulated days.  Four people ask
to be friends on the first morning; the intake (``POST …/intake``, as the
periodic job would) accepts as many as the account's daily friends cap
allows and the rest the next morning.  A new-customer SOP greets each one
(step 1, ``delay: 0m``) and pushes a tip on day 2: more contacts than the
account's daily message cap, so the pacing spreads greetings and pushes over
the following days.  Between happenings the clock jumps from one due touch to
the next, as a running scheduler would see it.

The report's checks compare the fake gateway's own record of what it
delivered (the witness) with the engine's touches and the account's settings.
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import sqlalchemy as sa
from sopflow.models import ChannelIdentity, Touch, TouchStatus
from sopflow_personal_wechat.fake import FakePuppetService, start_fake
from sopflow_personal_wechat.fake.scenario import SELF_ID, TOKEN
from sopflow_personal_wechat.port import Contact

from sopflow_demo.world import World

CST = ZoneInfo("Asia/Shanghai")

SOP_NAME = "个人号新客 (personal WeChat)"
GREETING = "{{ customer.display_name }}，你好！我是小助手，有问题随时问我"
PUSH = "第二天护肤小贴士：防晒要足量，一元硬币大小"
#: small caps so that pacing across days shows in a short scene (defaults: 30 and 300)
SETTINGS = {
    "daily_friends": 3,
    "daily_messages": 2,
    "min_gap_seconds": 20,
    "jitter_seconds": 25,
    "warmup_days": 0,
}
REQUESTS = 4
DAYS = 4
#: the days the scene may run on after ``DAYS`` until its last touch went out
MORE_DAYS = 7
#: what a deferral by the account's pacing is called (``Touch.defer_reason``)
PACING_REASONS = ("min_gap", "quiet_hours", "daily_cap", "paused", "logged_out", "restricted")


def _send(text: str) -> dict[str, Any]:
    return {"type": "send", "channel": "personal_wechat", "touchpoint": "private_chat", "text": text}


#: greets at once, then a tip at 10:00 on the second day after the friend was accepted
DEFINITION = {
    "kind": "new_customer",
    "target": {"staff": [SELF_ID]},
    "steps": [
        {"delay": "0m", "actions": [_send(GREETING)]},
        {"day": 2, "at": "10:00", "actions": [_send(PUSH)]},
    ],
}


@attrs.define
class Scene:
    """What the scene set up and did, for the report."""

    fake: FakePuppetService
    account_id: int
    sop_id: int
    requested: list[str] = attrs.Factory(list)
    #: friends the gateway had accepted by the end of each scene day
    accepted_by_day: list[int] = attrs.Factory(list)


def personal_scene(world: World, setup: Any, report: dict[str, Any]) -> None:
    """Run the scene after the WeCom weeks and add its figures and checks to ``report``."""
    scene = run_personal(world, setup)
    try:
        report["personal_wechat"] = personal_figures(scene)
        report["checks"] += personal_checks(world, setup, scene)
    finally:
        scene.fake.stop()


def run_personal(world: World, setup: Any) -> Scene:
    """Connect the account, let four people ask to be friends, and run the days out."""
    api = setup.api
    clock = world.clock
    api.call("PUT", "/api/v1/plugins/personal_wechat", json={"enabled": True})
    fake = start_fake(lambda: clock.now().timestamp())
    made = api.post(
        "/api/v1/channel-accounts",
        {
            "channel": "personal_wechat",
            "name": "小助手 (个人号)",
            "config": {"adapter": "wechaty", "endpoint": fake.endpoint, "tls": False, **SETTINGS},
            "secrets": {"token": TOKEN},
        },
    )
    sop = api.post("/api/v1/sops", {"name": SOP_NAME, "definition": DEFINITION})
    api.post(f"/api/v1/sops/{sop['id']}/start")
    scene = Scene(fake, made["id"], sop["id"])
    local = clock.now().astimezone(CST)
    morning = (local + timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    account = fake.state.account(TOKEN)
    for day in range(DAYS):
        clock.set(morning + timedelta(days=day))
        if day == 0:
            for n in range(REQUESTS):
                wxid = f"wxid_demo_friend{n:02d}"
                contact = Contact(wxid, name=f"好友{n + 1:02d}", city="上海")
                fake.state.request_friend(account, contact, hello="看到朋友圈加的")
                scene.requested.append(wxid)
        intake(setup, scene)
        drain(world, scene, morning + timedelta(days=day, hours=14))
        scene.accepted_by_day.append(len(account.accepted))
    # the pacing may have pushed the last touches past the scene's days (a friend
    # accepted a day later by the daily cap): run on until each one went out
    drain(world, scene, morning + timedelta(days=DAYS + MORE_DAYS))
    return scene


def intake(setup: Any, scene: Scene) -> None:
    """One intake run now (what the periodic job does every 15 s)."""
    # real sockets: 0.3 s without an event ends the run (a loaded machine streams slower)
    setup.api.post(f"/plugins/personal_wechat/accounts/{scene.account_id}/intake?idle_seconds=0.3")


def drain(world: World, scene: Scene, until: datetime) -> None:
    """Run the engine at each moment a touch of the scene's SOP falls due, up to ``until``."""
    world.settle()
    while True:
        with world.app.tx() as s:
            due = s.scalar(
                sa.select(sa.func.min(Touch.due_at)).where(
                    Touch.sop_id == scene.sop_id, Touch.status == TouchStatus.SCHEDULED
                )
            )
        if due is None or due > until:
            return
        if due > world.clock.now():
            world.clock.set(due)
        world.settle()


def _check(name: str, expected: Any, actual: Any) -> dict[str, Any]:
    return {"check": name, "expected": expected, "actual": actual, "ok": expected == actual}


def personal_figures(scene: Scene) -> dict[str, Any]:
    """The fake gateway's own record: accepted friends, deliveries per day."""
    account = scene.fake.state.account(TOKEN)
    offset = timedelta(hours=8)  # the account's zone (utc_offset_hours, default 8)
    with scene.fake.state.changed:
        sent = list(account.sent)
        accepted = list(account.accepted)
    days = Counter((datetime.fromtimestamp(d.at, UTC) + offset).date().isoformat() for d in sent)
    return {
        "friend_requests": len(scene.requested),
        "accepted": len(accepted),
        "accepted_per_day": _per_day(scene.accepted_by_day),
        "delivered": len(sent),
        "greetings": sum(1 for d in sent if d.content.endswith("有问题随时问我")),
        "pushes": sum(1 for d in sent if d.content == PUSH),
        "delivered_per_day": dict(sorted(days.items())),
    }


def _per_day(cumulative: list[int]) -> list[int]:
    return [b - a for a, b in zip([0, *cumulative], cumulative, strict=False)]


def personal_checks(world: World, setup: Any, scene: Scene) -> list[dict[str, Any]]:
    """The scene's checks: the fake's record against the database and the settings."""
    account = scene.fake.state.account(TOKEN)
    with scene.fake.state.changed:
        sent = sorted(account.sent, key=lambda d: d.at)
        accepted = list(account.accepted)
    greetings = Counter(d.conversation_id for d in sent if d.content.endswith("有问题随时问我"))
    gaps = [b.at - a.at for a, b in itertools.pairwise(sent)]
    per_day = Counter((datetime.fromtimestamp(d.at, UTC) + timedelta(hours=8)).date() for d in sent)
    with world.app.tx() as s:
        added = s.scalar(
            sa.select(sa.func.count())
            .select_from(ChannelIdentity)
            .where(ChannelIdentity.tenant_id == setup.tenant_id, ChannelIdentity.channel == "personal_wechat")
        )
        columns = (Touch.status, Touch.deferrals, Touch.defer_reason, Touch.planned_at, Touch.sent_at)
        touches = s.execute(sa.select(*columns).where(Touch.sop_id == scene.sop_id)).all()
    deferred = [t for t in touches if t.deferrals]
    later = [
        t
        for t in deferred
        if t.status == TouchStatus.SENT
        and t.sent_at > t.planned_at
        and str(t.defer_reason).startswith(PACING_REASONS)
    ]
    return [
        _check("personal WeChat: friends the gateway accepted = customers added", len(accepted), added),
        _check("personal WeChat: every friend request accepted", len(scene.requested), len(accepted)),
        _check(
            "personal WeChat: accepted friends greeted exactly once (the fake's record)",
            len(accepted),
            sum(1 for w in accepted if greetings[w] == 1) - sum(1 for w in greetings if w not in accepted),
        ),
        _check(
            "personal WeChat: no two sends closer than the gap",
            0,
            sum(1 for g in gaps if g < SETTINGS["min_gap_seconds"]),
        ),
        _check(
            "personal WeChat: no day over the daily message cap",
            0,
            sum(1 for n in per_day.values() if n > SETTINGS["daily_messages"]),
        ),
        _check(
            "personal WeChat: no day over the daily friends cap",
            0,
            sum(1 for n in _per_day(scene.accepted_by_day) if n > SETTINGS["daily_friends"]),
        ),
        _check("personal WeChat: some touches were deferred by the pacing", True, bool(deferred)),
        _check("personal WeChat: every deferred touch was sent later", len(deferred), len(later)),
        _check(
            "personal WeChat: touches sent = the gateway's deliveries",
            sum(1 for t in touches if t.status == TouchStatus.SENT),
            len(sent),
        ),
    ]


def personal_markdown(figures: dict[str, Any]) -> list[str]:
    """The scene's section of the Markdown report."""
    days = ", ".join(f"{day}: {n}" for day, n in figures["delivered_per_day"].items())
    return [
        "## Personal WeChat (the fake gateway's own record)",
        "",
        f"{figures['friend_requests']} friend requests, {figures['accepted']} accepted "
        f"(per day {figures['accepted_per_day']}, cap {SETTINGS['daily_friends']}); "
        f"{figures['greetings']} greetings and {figures['pushes']} day-2 pushes delivered, "
        f"per day {days} (cap {SETTINGS['daily_messages']}).",
        "",
    ]
