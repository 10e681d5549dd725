"""Customers handed from one member to another (在职继承), end to end over real HTTP
against the fake WeCom: the dry run, two calls of 100 and 50, WeCom's 24 hours on
the manual clock, the callbacks that follow, the owner moving, every enrolment
carrying on from the new owner, refusals reported per customer, nothing sent twice."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from wecom_support import WeComApp

GIVER, TAKER = "zhangsan", "lisi"
N = 150


def _sop(env: WeComApp) -> int:
    step = {"type": "send", "channel": "wecom", "touchpoint": "private_chat"}
    definition = {
        "kind": "new_customer",
        "target": {"sources": ["qr"]},
        "steps": [
            {"delay": "0m", "actions": [{**step, "text": "第一步"}]},
            {"day": 3, "at": "10:00", "actions": [{**step, "text": "第二步"}]},
        ],
    }
    made = env.api.post("/api/v1/sops", json={"name": "nurture", "definition": definition})
    assert made.status_code == 201, made.text
    assert env.api.post(f"/api/v1/sops/{made.json()['id']}/start").status_code == 200
    return int(made.json()["id"])


def _touches(app: Any) -> list[Any]:
    from sopflow.models import ChannelIdentity, Touch

    with app.tx() as s:
        return list(
            s.execute(
                sa.select(Touch.step_index, Touch.status, Touch.outcome, ChannelIdentity.external_id)
                .join(ChannelIdentity, ChannelIdentity.customer_id == Touch.customer_id)
                .order_by(Touch.id)
            )
        )


def _delivered(fake: Any, text: str) -> dict[str, list[str]]:
    """external_userid → the members who delivered ``text`` to them."""
    out: dict[str, list[str]] = {}
    for task in fake.tasks.values():
        if (task.content.get("text") or {}).get("content") != text:
            continue
        for staff, recipients in task.recipients.items():
            for ext, status in recipients.items():
                if status == 1:
                    out.setdefault(ext, []).append(staff)
    return out


def _confirm_all(fake: Any, staff: str) -> None:
    for msgid, task in list(fake.tasks.items()):
        if staff in task.recipients and staff not in task.send_time:
            fake.confirm(msgid, staff)


def test_a_member_s_150_customers_move_to_another_and_their_sops_carry_on(
    wecom_app: WeComApp, sopflow_app: Any
) -> None:
    from sopflow.engine.delivery.confirmations import poll_confirmations
    from sopflow.engine.delivery.dispatch import run_until_idle

    env, fake, app = wecom_app, wecom_app.fake, sopflow_app
    _sop(env)
    customers = [f"wmT{i:03d}" for i in range(N)]
    fake.add_staff(TAKER)
    for ext in customers:
        fake.add_customer(GIVER, ext, state="qr", welcome=False)
    assert run_until_idle(app) == N  # the first step: one mass-send task each, under the giver
    early = customers[:10]  # the giver sends these before the handover
    for msgid, task in list(fake.tasks.items()):
        if set(task.recipients.get(GIVER, {})) & set(early):
            fake.confirm(msgid, GIVER)
    assert poll_confirmations(app) == 10

    body = {
        "kind": "onjob",
        "handover_userid": GIVER,
        "takeover_userid": TAKER,
        "transfer_success_msg": "您好",
    }
    dry = env.api.post(f"{env.base}/transfers", json={**body, "dry_run": True})
    assert dry.status_code == 200, dry.text
    assert dry.json()["customers"] == customers and dry.json()["calls"] == 2
    assert not [r for r in fake.requests if "transfer_customer" in r.path]  # a dry run calls nothing

    refusing = customers[-3:]
    fake.refuse_transfer(*refusing)
    started = env.api.post(f"{env.base}/transfers", json=body)
    assert started.status_code == 202, started.text
    assert started.json()["counts"] == {"started": N}
    calls = [r for r in fake.requests if r.path.endswith("externalcontact/transfer_customer")]
    assert [len(r.body["external_userid"]) for r in calls] == [100, 50]
    again = env.api.post(f"{env.base}/transfers", json=body)  # already under way: nothing planned twice
    assert again.status_code == 202 and again.json()["not_planned"] == customers

    env.clock.advance(timedelta(hours=23))
    late = customers[10:15]  # the giver still sends these within the 24 hours
    for msgid, task in list(fake.tasks.items()):
        if set(task.recipients.get(GIVER, {})) & set(late):
            fake.confirm(msgid, GIVER)
    assert fake.settle_transfers() == 0  # nothing ends before WeCom's 24 hours
    env.clock.advance(timedelta(hours=1, seconds=1))
    assert fake.settle_transfers() == N  # the callbacks drive the finishing job

    listed = env.api.get(f"{env.base}/transfers").json()
    assert listed["counts"] == {"done": N - 3, "refused": 3}
    refused = {i["external_userid"]: i["reason"] for i in listed["items"] if i["state"] == "refused"}
    assert refused == dict.fromkeys(refusing, "the customer refused the handover")

    staff_ids = {m["external_id"]: m["id"] for m in env.api.get("/api/v1/staff").json()}
    owners = {
        c["identities"][0]["external_id"]: c["owner_staff_id"]
        for c in env.all("/api/v1/customers?channel=wecom")
    }
    assert {e for e, o in owners.items() if o == staff_ids[TAKER]} == set(customers) - set(refusing)
    assert {e for e, o in owners.items() if o == staff_ids[GIVER]} == set(refusing)  # refused: unchanged

    # the poll sees the handed-over customers' unsent tasks, cancels them and sends again from the taker
    poll_confirmations(app)
    run_until_idle(app)
    _confirm_all(fake, GIVER)  # too late: the giver's tasks were stopped (and are not theirs to send)
    _confirm_all(fake, TAKER)
    env.clock.advance(timedelta(minutes=1))
    poll_confirmations(app)
    first = _delivered(fake, "第一步")
    assert sorted(first) == customers  # nobody lost
    assert all(len(by) == 1 for by in first.values()), "nobody got the first step twice"
    for ext in customers:
        expected = GIVER if ext in early + late + refusing else TAKER
        assert first[ext] == [expected], ext
    rows = _touches(app)
    assert {status for step, status, _, _ in rows if step == 0} == {"sent"}

    # the next step goes out from the new owner, for the refused customers from the old one
    env.clock.advance(timedelta(days=3))
    run_until_idle(app)
    _confirm_all(fake, GIVER)
    _confirm_all(fake, TAKER)
    env.clock.advance(timedelta(minutes=1))
    poll_confirmations(app)
    second = _delivered(fake, "第二步")
    assert sorted(second) == customers
    for ext in customers:
        assert second[ext] == [GIVER if ext in refusing else TAKER], ext


def test_a_transfer_request_with_bad_fields_names_each_and_changes_nothing(wecom_app: WeComApp) -> None:
    env, fake = wecom_app, wecom_app.fake
    bad = env.api.post(
        f"{env.base}/transfers",
        json={
            "kind": "sideways",
            "handover_userid": "",
            "takeover_userid": "x" * 65,
            "transfer_success_msg": "长" * 201,
        },
    )
    assert bad.status_code == 422, bad.text
    fields = {e["field"] for e in bad.json()["errors"]}
    assert fields == {"kind", "handover_userid", "takeover_userid", "transfer_success_msg"}
    assert env.api.get(f"{env.base}/transfers").json()["items"] == []
    assert not [r for r in fake.requests if "transfer" in r.path]


def test_a_member_who_left_holds_their_customers_touches_until_a_resigned_transfer(
    wecom_app: WeComApp, sopflow_app: Any
) -> None:
    from sopflow.engine.delivery.confirmations import poll_confirmations
    from sopflow.engine.delivery.dispatch import run_until_idle
    from sopflow.models import Touch

    env, fake, app = wecom_app, wecom_app.fake, sopflow_app
    _sop(env)
    customers = ["wmL1", "wmL2", "wmL3"]
    fake.add_staff(TAKER)
    for ext in customers:
        fake.add_customer(GIVER, ext, state="qr", welcome=False)
    assert run_until_idle(app) == 3
    _confirm_all(fake, GIVER)
    poll_confirmations(app)

    fake.resign(GIVER)  # WeCom's contacts callback: the member left
    [giver] = [m for m in env.api.get("/api/v1/staff").json() if m["external_id"] == GIVER]
    assert giver["left_at"] is not None
    tasks_before = len(fake.tasks)
    env.clock.advance(timedelta(days=3, hours=12))  # past the second step's time
    run_until_idle(app)
    assert len(fake.tasks) == tasks_before  # held: nothing sent for a member who left
    with app.tx() as s:
        held = list(s.execute(sa.select(Touch.status, Touch.defer_reason).where(Touch.step_index == 1)))
    assert held == [("scheduled", "owner_left")] * 3

    body = {"kind": "resigned", "handover_userid": GIVER, "takeover_userid": TAKER}
    dry = env.api.post(f"{env.base}/transfers", json={**body, "dry_run": True})
    assert dry.json()["customers"] == customers  # WeCom's get_unassigned_list: not handed to anyone yet
    assert env.api.post(f"{env.base}/transfers", json=body).status_code == 202
    assert [
        len(r.body["external_userid"]) for r in fake.requests if "resigned/transfer_customer" in r.path
    ] == [3]
    env.clock.advance(timedelta(hours=24, seconds=1))
    fake.settle_transfers()  # a resigned handover is not called back: the periodic job reads the results
    from sopflow.worker.scheduler import Scheduler

    Scheduler(app).run_periodic_jobs()
    assert env.api.get(f"{env.base}/transfers").json()["counts"] == {"done": 3}
    run_until_idle(app)  # the held touches are due at once, sent from the taker
    _confirm_all(fake, TAKER)
    env.clock.advance(timedelta(minutes=1))
    poll_confirmations(app)
    assert _delivered(fake, "第二步") == {ext: [TAKER] for ext in customers}


def test_marking_a_member_as_left_through_the_api_and_back(wecom_app: WeComApp, sopflow_app: Any) -> None:
    from sopflow.engine.delivery.dispatch import run_until_idle

    env, fake, app = wecom_app, wecom_app.fake, sopflow_app
    _sop(env)
    fake.add_customer(GIVER, "wmB1", state="qr", welcome=False)
    [giver] = [m for m in env.api.get("/api/v1/staff").json() if m["external_id"] == GIVER]
    left = env.api.patch(f"/api/v1/staff/{giver['id']}", json={"left": True})
    assert left.status_code == 200 and left.json()["left_at"] and left.json()["name"] == giver["name"]
    assert run_until_idle(app) == 1 and fake.tasks == {}  # claimed, then held
    back = env.api.patch(f"/api/v1/staff/{giver['id']}", json={"left": False})
    assert back.json()["left_at"] is None
    run_until_idle(app)  # released: due at once
    assert [list(t.recipients) for t in fake.tasks.values()] == [[GIVER]]
    bad = env.api.patch(f"/api/v1/staff/{giver['id']}", json={"left": "yes"})
    assert bad.status_code == 422 and "left" in bad.text


def test_a_leavers_groups_move_with_them_at_most_300_a_day(wecom_app: WeComApp) -> None:
    env, fake = wecom_app, wecom_app.fake
    fake.add_staff(TAKER)
    fake.add_customer(GIVER, "wmG1", welcome=False)
    for i in range(301):
        fake.add_group(f"wrG{i:03d}", GIVER)
    fake.resign(GIVER)
    body = {"kind": "resigned", "handover_userid": GIVER, "takeover_userid": TAKER, "groups": True}
    dry = env.api.post(f"{env.base}/transfers", json={**body, "dry_run": True}).json()
    assert len(dry["groups"]["groups"]) == 300 and dry["groups"]["left"] == ["wrG300"]
    assert all(g["owner"] == GIVER for g in fake.groups.values())  # a dry run moves nothing
    moved = env.api.post(f"{env.base}/transfers", json=body)
    assert moved.status_code == 202, moved.text
    groups = moved.json()["groups"]
    assert len(groups["moved"]) == 300 and groups["failed"] == [] and groups["left"] == ["wrG300"]
    calls = [r for r in fake.requests if r.path.endswith("groupchat/transfer")]
    assert [len(r.body["chat_id_list"]) for r in calls] == [100, 100, 100]
    assert sum(g["owner"] == TAKER for g in fake.groups.values()) == 300
    assert moved.json()["counts"] == {"started": 1}  # the customer is handed over alongside
    env.clock.advance(timedelta(days=1))  # the next day: the rest
    again = env.api.post(f"{env.base}/transfers", json={**body, "external_userid": ["wmG1"]}).json()
    assert again["groups"]["moved"] == ["wrG300"] and again["groups"]["left"] == []
    assert all(g["owner"] == TAKER for g in fake.groups.values())


def test_a_last_step_still_waiting_on_the_giver_is_sent_from_the_taker(
    wecom_app: WeComApp, sopflow_app: Any
) -> None:
    """The enrolment of a one-step SOP has completed once its touch waits on the
    member; a handover must still send that touch from the new owner, not cancel
    it for the enrolment having ended."""
    from sopflow.engine.delivery.confirmations import poll_confirmations
    from sopflow.engine.delivery.dispatch import run_until_idle

    env, fake, app = wecom_app, wecom_app.fake, sopflow_app
    step = {"type": "send", "channel": "wecom", "touchpoint": "private_chat", "text": "唯一一步"}
    definition = {
        "kind": "new_customer",
        "target": {"sources": ["qr"]},
        "steps": [{"delay": "0m", "actions": [step]}],
    }
    made = env.api.post("/api/v1/sops", json={"name": "one", "definition": definition})
    assert env.api.post(f"/api/v1/sops/{made.json()['id']}/start").status_code == 200
    fake.add_staff(TAKER)
    fake.add_customer(GIVER, "wmLast", state="qr", welcome=False)
    assert run_until_idle(app) == 1
    body = {"kind": "onjob", "handover_userid": GIVER, "takeover_userid": TAKER}
    assert env.api.post(f"{env.base}/transfers", json=body).status_code == 202
    env.clock.advance(timedelta(hours=24, seconds=1))
    assert fake.settle_transfers() == 1
    poll_confirmations(app)
    run_until_idle(app)
    _confirm_all(fake, GIVER)
    _confirm_all(fake, TAKER)
    env.clock.advance(timedelta(minutes=1))
    poll_confirmations(app)
    assert _delivered(fake, "唯一一步") == {"wmLast": [TAKER]}
    assert [status for _, status, _, _ in _touches(app)] == ["sent"]


def test_a_taker_at_their_limit_and_a_customer_handed_over_twice_keep_their_owner(
    wecom_app: WeComApp, sopflow_app: Any
) -> None:
    """WeCom's two refusals that are not the customer's: the taker has reached their
    customer limit (result status 4), and a customer already handed over twice in
    90 days (errcode 40128 at the start). Each is reported per customer with its
    reason and the customer stays with the giver, whose touches go on."""
    from sopflow.engine.delivery.dispatch import run_until_idle

    env, fake, app = wecom_app, wecom_app.fake, sopflow_app
    _sop(env)
    fake.add_staff(TAKER)
    for ext in ("wmFull", "wmTwice"):
        fake.add_customer(GIVER, ext, state="qr", welcome=False)
    assert run_until_idle(app) == 2
    fake.limit_takeover(TAKER)
    with fake.lock:
        fake.transfer_starts["wmTwice"] = [int(env.clock.now().timestamp())] * 2
    body = {"kind": "onjob", "handover_userid": GIVER, "takeover_userid": TAKER}
    assert env.api.post(f"{env.base}/transfers", json=body).status_code == 202
    env.clock.advance(timedelta(hours=24, seconds=1))
    fake.settle_transfers()
    listed = env.api.get(f"{env.base}/transfers").json()
    assert listed["counts"] == {"limit": 1, "rejected": 1}, listed
    reasons = {i["external_userid"]: i["reason"] for i in listed["items"]}
    assert reasons == {
        "wmFull": "the takeover member has reached their customer limit",
        "wmTwice": "handed over twice in 90 days already (WeCom's limit)",
    }
    giver_id = next(m["id"] for m in env.api.get("/api/v1/staff").json() if m["external_id"] == GIVER)
    owners = {c["owner_staff_id"] for c in env.all("/api/v1/customers?channel=wecom")}
    assert owners == {giver_id}
    assert [status for step, status, _, _ in _touches(app) if step == 0] == ["pending", "pending"]
