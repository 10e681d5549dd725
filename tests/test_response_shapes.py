"""Every success body agrees with the schema the OpenAPI states for it, down to the
documents inside: an SOP's stored definition (the SopDefinition component), its
audience, a split's arms and a comparison's groups, a touch's outcome of every
kind (sent, pending and confirmed, tapped, skipped, no reply, caught up, failed,
retried, in review, cancelled, re-addressed after a transfer), a segment's rule
(the Rule component), a customer's field values of every type and a channel
account's config (its channel's declared settings: a secret never appears).

Real requests drive the engine with the manual clock; each answer is validated
against its operation's response schema with jsonschema_rs.  The schemas also
refuse what the server never sends, so a schema gone free again fails here."""

from __future__ import annotations

import copy
import sys
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema_rs
import pytest
from sopflow_sdk import (
    AmbiguousSendError,
    Capabilities,
    Channel,
    ChannelSpec,
    FatalError,
    RetriableError,
    SendReceipt,
    Setting,
    SettingsSchema,
    hookimpl,
)

from tests.sop_support import add_customer, create_sop, run_to, send

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Flaky(Channel):
    """Answers each send by the customer's source (the step's text renders it)."""

    name = "flaky"
    capabilities = Capabilities(touchpoints=frozenset({"private_chat"}), idempotent_send=False)

    def __init__(self, config: Any, secrets: Any) -> None:
        pass

    def send(self, message: Any) -> SendReceipt:
        if message.text == "fatal":
            raise FatalError("the provider refused the recipient")
        if message.text == "retry":
            raise RetriableError("the provider is busy", retry_after=3600)
        if message.text == "ambiguous":
            raise AmbiguousSendError("the provider's answer was lost")
        return SendReceipt("sent", provider_ref=f"msg-{message.idempotency_key}")


FLAKY_SETTINGS = SettingsSchema(
    Setting("region", choices=("cn", "sg"), default="cn"),
    Setting("token", secret=True, required=True),
)


@hookimpl
def register_channels(register: Any) -> None:
    register(ChannelSpec("flaky", Flaky, settings=FLAKY_SETTINGS))


@pytest.fixture
def sopflow_plugins() -> list[tuple[str, Any]]:
    return [("flaky", sys.modules[__name__])]


class Shapes:
    """The API's OpenAPI document: validates each answer against its operation's schema."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.doc = api.get("/schema/openapi.json").json()
        self.seen: dict[str, list[Any]] = {}

    def validator(self, schema: dict[str, Any]) -> Any:
        return jsonschema_rs.Draft202012Validator({**schema, "components": self.doc["components"]})

    def component(self, name: str) -> Any:
        return self.validator({"$ref": f"#/components/schemas/{name}"})

    def call(self, method: str, template: str, url: str | None = None, **kwargs: Any) -> Any:
        r = getattr(self.api, method)(url or template, **kwargs)
        assert r.status_code < 300, (method, url or template, r.text)
        responses = self.doc["paths"][template][method]["responses"]
        schema = responses[str(r.status_code)]["content"]["application/json"]["schema"]
        errors = [f"{e.instance_path}: {e.message}" for e in self.validator(schema).iter_errors(r.json())]
        assert errors == [], (method, url or template, errors)
        self.seen.setdefault(template, []).append(r.json())
        return r.json()


def _event(key: str, type_: str, external_id: str, staff: str | None, **more: Any) -> dict[str, Any]:
    identity = {"channel": "wecom", "external_id": external_id}
    if staff:
        identity["staff_external_id"] = staff
    return {"type": type_, "idempotency_key": key, "identity": identity, **more}


def _touches(shapes: Shapes) -> list[dict[str, Any]]:
    return shapes.call("get", "/api/v1/touches", params={"limit": 200})["items"]


def _by_tag(tag_: str) -> dict[str, Any]:
    return {"rule": {"tags": {"any_of": [tag_]}}}


def _drive(api: Any, app: Any, clock: Any, shapes: Shapes) -> dict[str, int]:
    """SOPs on the log, manual and flaky channels, customers for each outcome."""
    assert api.patch("/api/v1/tenants/current", json={"customer_daily_push_cap": 10}).status_code == 200
    sops = {
        "log": create_sop(
            api,
            "log",
            {
                "kind": "new_customer",
                "target": _by_tag("log"),
                "steps": [
                    {
                        "delay": "1h",
                        "actions": [
                            send("hi {{ customer.display_name }}"),
                            {"type": "remind_staff", "channel": "log", "text": "call them"},
                        ],
                        "wait_for_reply": {"timeout": "1d", "on_timeout": "skip"},
                    },
                    {"delay": "2h", "actions": [send("again")]},
                ],
            },
        ),
        "flaky": create_sop(
            api,
            "flaky",
            {
                "kind": "new_customer",
                "target": _by_tag("flaky"),
                "steps": [
                    {
                        "delay": "1h",
                        "actions": [{"type": "send", "channel": "flaky", "text": "{{ customer.source }}"}],
                    }
                ],
            },
        ),
        "manual": create_sop(
            api,
            "manual",
            {
                "kind": "new_customer",
                "target": _by_tag("manual"),
                # a second step keeps the enrolment running while the first is re-addressed
                "steps": [
                    {"delay": "1h", "actions": [{"type": "send", "channel": "manual", "text": "by hand"}]},
                    {"delay": "3d", "actions": [send("later")]},
                ],
            },
        ),
        "late": create_sop(
            api,
            "late",
            {
                "kind": "new_customer",
                "target": _by_tag("late"),
                "catch_up": "skip",
                "steps": [{"day": 0, "at": "09:00", "actions": [send("too late")]}],
            },
        ),
        "split": create_sop(
            api,
            "split",
            {
                "kind": "nurture",
                "target": {**_by_tag("split"), "staff": ["zhangsan"]},
                "arms": [
                    {
                        "name": "short",
                        "weight": 50,
                        "steps": [{"day": 1, "at": "10:00", "actions": [send("a")]}],
                    },
                    {
                        "name": "long",
                        "weight": 50,
                        "steps": [{"day": 3, "at": "10:00", "actions": [send("b")]}],
                    },
                ],
                "goal": {"event_type": "order.paid"},
            },
        ),
    }
    r = api.post(
        "/api/v1/channel-accounts",
        json={
            "channel": "flaky",
            "name": "main",
            "config": {"region": "sg"},
            "secrets": {"token": "s3cret-token"},
        },
    )
    assert r.status_code == 201, r.text
    customers = {"owned": add_customer(api, "c-owned", tags=["log"])}
    r = api.post(
        "/api/v1/events",
        json={"events": [_event("lonely", "customer.added", "c-lonely", None, tags_add=["log"])]},
    )
    customers["lonely"] = r.json()["results"][0]["customer_id"]  # no owner: the notice is skipped
    for source in ("ok", "fatal", "retry", "ambiguous"):
        customers[source] = add_customer(api, f"c-{source}", tags=["flaky"], source=source)
    for name in ("tap-sent", "tap-skip", "moved"):
        customers[name] = add_customer(api, f"c-{name}", tags=["manual"])
    customers["late"] = add_customer(api, "c-late", tags=["late"])
    for n in range(6):
        customers[f"split-{n}"] = add_customer(api, f"c-split-{n}", tags=["split"])
    run_to(app, clock, clock.now() + timedelta(minutes=90))
    _touches(shapes)  # a retried touch waits with its reason, the manual ones are pending
    from sopflow.engine.delivery.confirmations import poll_confirmations
    from sopflow.host import PluginHost

    host = PluginHost(app, "default_channels")
    by_customer = {t["customer_id"]: t for t in _touches(shapes) if t["step_index"] == 0}
    host.confirm_touches(
        api.tenant_id, [by_customer[customers["tap-sent"]]["id"]], tap="sent", staff="zhangsan"
    )
    host.confirm_touches(
        api.tenant_id, [by_customer[customers["tap-skip"]]["id"]], tap="skip", staff="zhangsan"
    )
    moved = _event(
        "moved", "customer.transferred", "c-moved", "lisi", payload={"from_staff_external_id": "zhangsan"}
    )
    assert api.post("/api/v1/events", json={"events": [moved]}).status_code == 200
    _touches(shapes)  # marked to be re-addressed
    enrollments = shapes.call(
        "get", "/api/v1/sops/{sop_id}/enrollments", f"/api/v1/sops/{sops['split']}/enrollments"
    )
    shapes.call(
        "post",
        "/api/v1/enrollments/{enrollment_id}/end",
        f"/api/v1/enrollments/{enrollments['items'][0]['id']}/end",
        json={"tags_add": ["stopped by hand"]},
    )  # its touch is cancelled
    poll_confirmations(app)  # the moved customer's touch is scheduled again, from lisi
    run_to(app, clock, clock.now() + timedelta(days=5))
    return sops


def test_every_answer_fits_its_schema_and_every_outcome_kind_is_seen(api, sopflow_app, manual_clock):
    manual_clock.set(datetime(2026, 3, 2, 10, 30, tzinfo=SHANGHAI))
    shapes = Shapes(api)
    sops = _drive(api, sopflow_app, manual_clock, shapes)
    touches = _touches(shapes)
    assert {t["status"] for t in touches} >= {"sent", "skipped", "failed", "review", "cancelled", "pending"}
    reasons = {t["outcome"].get("reason") for t in touches}
    assert {"no_reply", "catch_up_skip", "skipped_by_staff", "the provider refused the recipient"} <= reasons
    assert "the provider's answer was lost" in reasons  # in review
    seen_keys = {
        k for snapshot in shapes.seen["/api/v1/touches"] for t in snapshot["items"] for k in t["outcome"]
    }
    assert seen_keys >= {
        "results",
        "reason",
        "account_id",
        "staff",
        "tap",
        "confirmed",
        "confirmed_at",
        "readdress",
        "readdressed",
    }
    for sop_id in sops.values():
        sop = shapes.call("get", "/api/v1/sops/{sop_id}", f"/api/v1/sops/{sop_id}")
        shapes.call("get", "/api/v1/sops/{sop_id}/stats", f"/api/v1/sops/{sop_id}/stats")
        shapes.call("get", "/api/v1/sops/{sop_id}/versions", f"/api/v1/sops/{sop_id}/versions")
    assert sop["audience"] == {"state": "done", "total": 0, "done": 0, "enrolled": 0}  # all came later
    stats = shapes.call("get", "/api/v1/sops/{sop_id}/stats", f"/api/v1/sops/{sops['split']}/stats")
    assert [a["arm"] for a in stats["arms"]] == ["short", "long"] and "versus_first" in stats["arms"][1]
    compared = shapes.call(
        "get",
        "/api/v1/sops/{sop_id}/compare",
        f"/api/v1/sops/{sops['split']}/compare",
        params={"other": sops["log"]},
    )
    assert compared["groups"][0]["staff"] == ["zhangsan"]
    edited = dict(sop["definition"], catch_up="next_day")
    shapes.call(
        "patch", "/api/v1/sops/{sop_id}", f"/api/v1/sops/{sops['split']}", json={"definition": edited}
    )
    shapes.call("get", "/api/v1/sops", None)
    shapes.call("post", "/api/v1/sops/{sop_id}/stop", f"/api/v1/sops/{sops['split']}/stop")
    [account] = shapes.call("get", "/api/v1/channel-accounts")
    assert account["config"] == {"region": "sg"} and account["secret_keys"] == ["token"]


def test_the_schemas_refuse_what_the_server_never_sends(api, sopflow_app, manual_clock):
    manual_clock.set(datetime(2026, 3, 2, 10, 30, tzinfo=SHANGHAI))
    shapes = Shapes(api)
    sops = _drive(api, sopflow_app, manual_clock, shapes)
    touch = next(t for t in _touches(shapes) if t["outcome"].get("results"))
    sop = shapes.call("get", "/api/v1/sops")[0]
    stats = shapes.call("get", "/api/v1/sops/{sop_id}/stats", f"/api/v1/sops/{sops['split']}/stats")
    [account] = shapes.call("get", "/api/v1/channel-accounts")
    customer = shapes.call("get", "/api/v1/customers")["items"][0]
    wrong = {
        "TouchOut": [
            (touch, ("outcome", "delivered"), True),
            (touch, ("outcome", "results", 0, "status"), "delivered"),
            (touch, ("outcome", "results", 0, "action"), "first"),
            (touch, ("outcome", "tap"), {"answer": "maybe", "staff": None, "at": "now"}),
        ],
        "SopOut": [
            (sop, ("definition", "kind"), "someday"),
            (sop, ("definition", "steps"), "every day"),
            (sop, ("audience", "state"), "stuck"),
        ],
        "SopStatsOut": [
            (stats, ("arms", 0, "sent", "rate"), "high"),
            (stats, ("arms", 0, "sent", "interval_95"), [0.1]),
            (stats, ("arms", 1, "versus_first", "sent", "p_value"), "small"),
        ],
        "ChannelAccountOut": [
            (account, ("config", "token"), "s3cret-token"),  # a secret never appears
            (account, ("config", "region"), "mars"),
        ],
        "CustomerOut": [
            (customer, ("fields", "age"), None),  # a cleared field is absent, never null
            (customer, ("fields", "age"), {"years": 3}),
        ],
    }
    for component, cases in wrong.items():
        validator = shapes.component(component)
        for body, path, value in cases:
            assert validator.is_valid(body), (component, body)
            bad = copy.deepcopy(body)
            target = bad
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = value
            assert not validator.is_valid(bad), (component, path, value)


def test_field_values_of_every_type_and_a_segments_rule_fit_their_schemas(api, sopflow_app):
    shapes = Shapes(api)
    for key, type_, choices in (
        ("nickname", "text", None),
        ("age", "number", None),
        ("weight", "number", None),
        ("vip", "bool", None),
        ("birthday", "date", None),
        ("last_visit", "datetime", None),
        ("size", "choice", ["s", "m"]),
        ("likes", "multi_choice", ["tea", "cake"]),
    ):
        body = {"key": key, "type": type_, **({"choices": choices} if choices else {})}
        shapes.call("post", "/api/v1/fields", json=body)
    values = {
        "nickname": "小王",
        "age": 31,
        "weight": 61.5,
        "vip": True,
        "birthday": "1995-04-01",
        "last_visit": "2026-03-01T08:00:00+08:00",
        "size": "m",
        "likes": ["tea", "cake"],
    }
    created = shapes.call("post", "/api/v1/customers", json={"display_name": "王", "fields": values})
    assert created["fields"]["last_visit"] == "2026-03-01T00:00:00+00:00" and created["fields"]["age"] == 31
    shapes.call("get", "/api/v1/customers/{customer_id}", f"/api/v1/customers/{created['id']}")
    rule = {"all": [{"field": "age", "op": "gte", "value": 30}, {"tags": {"any_of": ["vip"]}}]}
    segment = shapes.call("post", "/api/v1/segments", json={"name": "grown-ups", "rule": rule})
    shapes.call("get", "/api/v1/segments")
    validator = shapes.component("SegmentOut")
    assert not validator.is_valid({**segment, "rule": {"whatever": 1}})
    assert shapes.call("get", "/api/v1/events")["items"]


def test_a_journey_stages_reminder_sop_fits_the_stored_definition(api, sopflow_app):
    shapes = Shapes(api)
    reminder = {
        "day": 1,
        "at": "09:00",
        "text": "hi",
        "attachments": [{"kind": "link", "url": "https://e.com"}],
    }
    stage = {"name": "a", "rules": [{"conditions": [{"tags": {"any_of": ["x"]}}]}], "reminders": [reminder]}
    body = {"name": "dental", "reminder_channel": "log", "follow_up_reminders": True, "stages": [stage]}
    assert api.post("/api/v1/journeys", json=body).status_code == 201
    [sop] = shapes.call("get", "/api/v1/sops")
    assert (
        sop["definition"]["kind"] == "journey_stage"
        and sop["definition"]["steps"][1]["actions"][0]["forward"]
    )
