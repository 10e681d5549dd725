"""Customers' likes and comments on moments become events, once each, over real
HTTP against the fake WeCom; a like starts the SOP that targets it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sopflow_wecom import moments
from wecom_support import WeComApp


def _poll(app: Any) -> None:
    from sopflow.host import PluginHost

    moments.poll_job(PluginHost(app, "wecom"))


def _like_sop(env: WeComApp) -> int:
    definition = {
        "kind": "nurture",
        "target": {"rule": {"events": {"type": "moment.liked", "min": 1, "within": "30d"}}},
        "steps": [
            {
                "delay": "0m",
                "actions": [
                    {"type": "send", "channel": "wecom", "touchpoint": "private_chat", "text": "进群领福利"}
                ],
            }
        ],
    }
    made = env.api.post("/api/v1/sops", json={"name": "liked the product post", "definition": definition})
    assert made.status_code == 201, made.text
    assert env.api.post(f"/api/v1/sops/{made.json()['id']}/start").status_code == 200
    return int(made.json()["id"])


def test_a_like_becomes_one_moment_liked_event_and_starts_the_sop(
    wecom_app: WeComApp, sopflow_app: Any
) -> None:
    from sopflow.engine.delivery.dispatch import run_until_idle

    env, fake, app = wecom_app, wecom_app.fake, sopflow_app
    sop_id = _like_sop(env)
    fake.add_customer("zhangsan", "wmFan", welcome=False)
    fake.add_customer("zhangsan", "wmQuiet", welcome=False)
    old = fake.post_moment("zhangsan", "旧品")
    fake.like_moment(old, "zhangsan", "wmQuiet")  # before sopflow first looked: history, not a trigger
    env.clock.advance(timedelta(minutes=1))
    _poll(app)
    assert env.all("/api/v1/events?type=moment.liked") == []

    env.clock.advance(timedelta(hours=1))
    post = fake.post_moment("zhangsan", "新品防晒霜")
    fake.like_moment(post, "zhangsan", "wmFan")
    fake.like_moment(post, "zhangsan", "zhangsan")  # a colleague's like is not a customer's
    fake.comment_moment(post, "zhangsan", "wmFan")
    _poll(app)
    _poll(app)  # read again: nothing new
    [liked] = env.all("/api/v1/events?type=moment.liked")
    assert liked["payload"]["moment_id"] == post and liked["payload"]["staff_userid"] == "zhangsan"
    assert liked["payload"]["moment_text"] == "新品防晒霜"
    [commented] = env.all("/api/v1/events?type=moment.commented")
    assert commented["customer_id"] == liked["customer_id"]
    [enrolment] = env.all(f"/api/v1/sops/{sop_id}/enrollments")
    assert enrolment["customer_id"] == liked["customer_id"]
    run_until_idle(app)
    [task] = fake.tasks.values()
    assert task.content["text"]["content"] == "进群领福利" and task.recipients == {"zhangsan": {"wmFan": 0}}

    env.clock.advance(timedelta(minutes=5))
    fake.comment_moment(post, "zhangsan", "wmFan")  # a second comment is a second event
    _poll(app)
    assert len(env.all("/api/v1/events?type=moment.commented")) == 2
    assert len(env.all("/api/v1/events?type=moment.liked")) == 1


def test_corp_moments_are_read_for_every_member_who_published_them(
    wecom_app: WeComApp, sopflow_app: Any
) -> None:
    env, fake, app = wecom_app, wecom_app.fake, sopflow_app
    fake.add_customer("zhangsan", "wmA", welcome=False)
    fake.add_customer("lisi", "wmB", welcome=False)
    _poll(app)  # the first look
    env.clock.advance(timedelta(minutes=1))
    post = fake.post_moment("admin", "企业发表", publishers=["zhangsan", "lisi"])
    fake.like_moment(post, "zhangsan", "wmA")
    fake.like_moment(post, "lisi", "wmB")
    _poll(app)
    liked = env.all("/api/v1/events?type=moment.liked")
    assert sorted(e["payload"]["staff_userid"] for e in liked) == ["lisi", "zhangsan"]
    windows = [r.body for r in fake.requests if r.path.endswith("get_moment_list")]
    assert all(b["end_time"] - b["start_time"] <= 30 * 86_400 for b in windows)


def test_the_fake_refuses_a_window_over_30_days(make_client: Any) -> None:
    from sopflow_sdk import SopflowError

    client = make_client()
    try:
        client.call(
            "POST", "externalcontact/get_moment_list", json={"start_time": 0, "end_time": 31 * 86_400}
        )
    except SopflowError as exc:
        assert "30 days" in str(exc.internal_message) or getattr(exc, "errcode", None) == 40058
    else:
        raise AssertionError("a 31-day window was accepted")
