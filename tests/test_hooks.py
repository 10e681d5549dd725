"""Every hook, tested against what docs/plugin-hooks.md says about it.

The first tests cover the hooks that reach beyond registration (plugin pipeline
templates, plugin SOP actions, on_stage_changed); the ``test_hook_<name>``
tests below pin each hook's contract: when it is called, what its records do,
ordering, per-tenant switches, error isolation.  ``tests/test_plugins.py``
covers discovery, the enable/disable lists and start-up errors.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from sopflow_sdk import ActionSpec, PipelineSpec, StageSpec, hookimpl

from tests.conftest import row_counts
from tests.sop_support import add_customer, create_sop, run_days

MOVES_SEEN: list[dict[str, Any]] = []
RUNS: list[tuple[dict[str, Any], dict[str, Any]]] = []


@hookimpl
def register_pipelines(register):
    register(
        PipelineSpec(key="education", name="Education", stages=(StageSpec("interest"), StageSpec("trial")))
    )


@hookimpl
def register_actions(register):
    register(ActionSpec(name="crm_task", run=lambda context, params: RUNS.append((context, params))))


@hookimpl
def on_stage_changed(tenant_id, customer_id, pipeline_id, from_stage, to_stage, cause):
    MOVES_SEEN.append({"customer_id": customer_id, "from": from_stage, "to": to_stage, "cause": cause})


@pytest.fixture
def sopflow_plugins():
    MOVES_SEEN.clear()
    RUNS.clear()
    plugin = SimpleNamespace(
        register_pipelines=register_pipelines,
        register_actions=register_actions,
        on_stage_changed=on_stage_changed,
    )
    return [("hooktest", plugin)]


def test_pipeline_template_and_stage_change_notification(api):
    r = api.post("/api/v1/pipelines", json={"template": "education"})
    assert r.status_code == 201, r.text
    pipeline = r.json()
    assert pipeline["name"] == "Education" and [s["name"] for s in pipeline["stages"]] == [
        "interest",
        "trial",
    ]
    customer = api.post("/api/v1/customers", json={"display_name": "A"}).json()["id"]
    for stage in pipeline["stages"]:
        assert (
            api.post(f"/api/v1/customers/{customer}/stage", json={"stage_id": stage["id"]}).status_code == 200
        )
    moves = list(MOVES_SEEN)
    assert moves == [
        {"customer_id": customer, "from": None, "to": "interest", "cause": "api"},
        {"customer_id": customer, "from": "interest", "to": "trial", "cause": "api"},
    ]


def test_unknown_template_is_a_422_that_changes_nothing(api, sopflow_app):
    before = row_counts(sopflow_app)
    r = api.post("/api/v1/pipelines", json={"template": "nope"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "template"
    assert "education" in r.json()["errors"][0]["message"]
    assert row_counts(sopflow_app) == before


def test_plugin_action_runs_in_an_sop_step(api, sopflow_app, manual_clock):
    step = {"delay": "1h", "actions": [{"type": "plugin", "action": "crm_task", "params": {"queue": "vip"}}]}
    create_sop(api, "crm", {"kind": "new_customer", "target": {}, "steps": [step]})
    customer = add_customer(api, "wm-crm")
    run_days(sopflow_app, manual_clock, 1)
    [(context, params)] = RUNS
    assert params == {"queue": "vip"} and context["customer_id"] == customer
    bad = {"delay": "1h", "actions": [{"type": "plugin", "action": "crm_tsk"}]}
    r = api.post(
        "/api/v1/sops",
        json={"name": "bad", "definition": {"kind": "new_customer", "target": {}, "steps": [bad]}},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "definition.steps[0].actions[0].action"


# -- the contract of each hook, as docs/plugin-hooks.md states it ----------------------


def plugin(name: str, **hooks: Any) -> Any:
    """A module-like plugin whose hooks are the given functions (optionally
    ``(function, {"tryfirst": True})`` pairs)."""
    import types

    module = types.ModuleType(name)
    for hook_name, fn in hooks.items():
        fn, opts = fn if isinstance(fn, tuple) else (fn, {})
        setattr(module, hook_name, hookimpl(**opts)(fn) if opts else hookimpl(fn))
    return module


def system_with(*plugins: tuple[str, Any]) -> Any:
    from sopflow.plugins import build_plugin_system

    return build_plugin_system(enabled=(), extra=plugins)  # no installed plugin: only these


@pytest.fixture
def app_with(sopflow_database, request, manual_clock):
    """Build a test app with the given plugins and an admin client for a fresh tenant."""
    from litestar.testing import TestClient
    from sopflow.api.app import build_api
    from sopflow_sdk.testing.harness import ApiClient, make_test_app, new_tenant

    made: list[Any] = []

    def build(*plugins: tuple[str, Any]) -> tuple[Any, Any]:
        app = make_test_app(
            sopflow_database.url_for_test(request.node.name), clock=manual_clock, extra_plugins=plugins
        )
        tenant_id, key = new_tenant(app, "acme")
        client = TestClient(build_api(app), raise_server_exceptions=False).__enter__()
        made.append((app, client))
        return app, ApiClient(client, key, tenant_id)

    yield build
    for app, client in made:
        client.__exit__(None, None, None)
        app.dispose()


def test_hook_register_fields_is_called_once_and_stamps_the_plugin():
    from sopflow_sdk import FieldSpec, PluginError

    calls = []

    def register_fields(register):
        calls.append(1)
        register(FieldSpec("t.score", "number", label="Score"))

    system = system_with(("t", plugin("t", register_fields=register_fields)))
    assert calls == [1]
    reg = system.registry.get("register_fields", "t.score")
    assert reg.plugin == "t" and reg.spec.label == "Score"
    with pytest.raises(ValueError, match="lower_snake_case"):
        FieldSpec("Bad Key", "text")
    clash = plugin("c", register_fields=lambda register: register(FieldSpec("first_added_at", "datetime")))
    with pytest.raises(PluginError, match=r"FieldSpec 'first_added_at' is registered twice") as err:
        system_with(("c", clash))
    assert "'default_fields'" in str(err.value) and "'c'" in str(err.value)


def test_hook_register_triggers_adds_to_the_standard_events():
    from sopflow_sdk import STANDARD_EVENTS, PluginError, TriggerSpec

    schema = {"type": "object", "properties": {"amount": {"type": "number"}}}
    mine = plugin(
        "shop",
        register_triggers=lambda register: register(TriggerSpec("shop.refunded", payload_schema=schema)),
    )
    system = system_with(("shop", mine))
    types = {r.spec.event_type: r.plugin for r in system.registry.all("register_triggers")}
    assert types["shop.refunded"] == "shop"
    assert {t for t, p in types.items() if p == "default_triggers"} == set(STANDARD_EVENTS)
    assert system.registry.get("register_triggers", "shop.refunded").spec.payload_schema == schema
    again = plugin("again", register_triggers=lambda register: register(TriggerSpec("order.paid")))
    with pytest.raises(PluginError, match=r"TriggerSpec 'order\.paid' is registered twice"):
        system_with(("again", again))


def test_registration_order_is_tryfirst_then_last_registered_then_built_ins():
    from sopflow_sdk import FieldSpec

    def fields(key):
        return lambda register: register(FieldSpec(key, "text"))

    system = system_with(
        ("a", plugin("a", register_fields=fields("a.x"))),
        ("b", plugin("b", register_fields=fields("b.x"))),
        ("c", plugin("c", register_fields=(fields("c.x"), {"tryfirst": True}))),
    )
    order = [r.plugin for r in system.registry.all("register_fields")]
    assert order[:3] == ["c", "b", "a"] and set(order[3:]) == {"default_fields"}


def test_hook_register_routes_mounts_under_the_plugin_and_maps_errors(app_with):
    from sopflow_sdk import FatalError, InboundResponse, PluginError, RouteSpec, SignatureError

    def echo(request, host):
        if request.headers.get("x-sign") != "ok":
            raise SignatureError("bad signature")
        if request.query.get("fail"):
            raise FatalError("cannot do that")
        return InboundResponse(201, f"{request.method} {request.path_params['n']}", "text/plain")

    def routes(register):
        register(RouteSpec("echo/{n:int}", echo, ("GET", "POST"), description="echo"))

    _, api = app_with(
        ("one", plugin("one", register_routes=routes)), ("two", plugin("two", register_routes=routes))
    )
    ok = api.get("/plugins/one/echo/7", headers={"x-sign": "ok"})
    assert (ok.status_code, ok.text) == (201, "GET 7")
    assert api.post("/plugins/two/echo/8", headers={"x-sign": "ok"}).text == "POST 8"
    forbidden = api.get("/plugins/one/echo/7")
    assert forbidden.status_code == 403 and forbidden.json()["detail"] == "bad signature"
    refused = api.get("/plugins/one/echo/7?fail=1", headers={"x-sign": "ok"})
    assert refused.status_code == 422 and refused.json()["detail"] == "cannot do that"
    schema = api.get("/schema/openapi.json").json()
    assert "/plugins/one/echo/{n}" in schema["paths"]

    def twice(register):
        register(RouteSpec("same", echo))
        register(RouteSpec("same", echo))

    with pytest.raises(PluginError, match="RouteSpec 'dup/same' is registered twice"):
        system_with(("dup", plugin("dup", register_routes=twice)))


def test_hook_register_channels_is_what_channel_accounts_and_sops_may_use(app_with):
    from sopflow_sdk import Capabilities, Channel, ChannelSpec, SendReceipt

    class Pager(Channel):
        name = "pager"
        capabilities = Capabilities(touchpoints=frozenset({"staff_notice"}), max_attachments=0)

        def __init__(self, config, secrets):
            self.secrets = secrets

        def send(self, message):
            self.check(message)
            return SendReceipt("sent")

    channels = plugin("pager", register_channels=lambda register: register(ChannelSpec("pager", Pager)))
    _, api = app_with(("pager", channels))
    r = api.post(
        "/api/v1/channel-accounts", json={"channel": "pager", "name": "p", "secrets": {"pin": "123456"}}
    )
    assert r.status_code == 201 and r.json()["secret_keys"] == ["pin"] and "123456" not in r.text
    unknown = api.post("/api/v1/channel-accounts", json={"channel": "fax", "name": "f"})
    assert unknown.status_code == 422
    assert "pager" in unknown.json()["errors"][0]["message"]


def test_a_step_that_cannot_be_prepared_ends_once_with_the_reason(app_with, manual_clock):
    """No account for the channel (skipped) or a touchpoint it does not declare
    (failed): the touch ends at its first attempt with the fix in its outcome —
    it is not left claimed to loop — and the data action before it is rolled back."""
    from sopflow.models import SopVersion
    from sopflow_sdk import Capabilities, Channel, ChannelSpec, SendReceipt

    from tests.sop_support import add_customer, create_sop, run_days, touches

    class Pager(Channel):
        name = "pager"
        capabilities = Capabilities(touchpoints=frozenset({"staff_notice", "moments"}), max_attachments=0)

        def __init__(self, config, secrets):
            pass

        def send(self, message):
            return SendReceipt("sent")

    channels = plugin("pager", register_channels=lambda register: register(ChannelSpec("pager", Pager)))
    app, api = app_with(("pager", channels))

    def step(touchpoint: str) -> dict:
        action = {"type": "send", "channel": "pager", "touchpoint": touchpoint, "text": "hi"}
        return {"day": 1, "at": "10:00", "actions": [{"type": "add_tag", "tag": "tried"}, action]}

    target = {"rule": {"tags": {"any_of": ["a"]}}}
    sop = {"kind": "nurture", "target": target, "steps": [step("private_chat")]}
    refused = api.post("/api/v1/sops", json={"name": "a", "definition": sop})
    assert refused.status_code == 422 and "does not declare the private_chat" in refused.text
    # A definition stored before the channel stopped declaring the touchpoint (a plugin
    # upgrade) still reaches the channel: saved with a valid step, then the stored row changed.
    sop_id = create_sop(api, "a", {**sop, "steps": [step("moments")]}, start=False)
    with app.tx() as s:
        version = s.scalar(sa.select(SopVersion).where(SopVersion.sop_id == sop_id))
        stored = copy.deepcopy(version.definition)
        stored["steps"][0]["actions"][1]["touchpoint"] = "private_chat"
        version.definition = stored
    assert api.post(f"/api/v1/sops/{sop_id}/start").status_code == 200
    first = add_customer(api, "wm-a", tags=["a"])
    run_days(app, manual_clock, 2)
    [t] = touches(app, customer_id=first)
    assert (t.status, t.attempts) == ("skipped", 1)
    assert (
        "no pager channel account" in t.outcome["reason"]
        and "POST /api/v1/channel-accounts" in t.outcome["reason"]
    )

    assert api.post("/api/v1/channel-accounts", json={"channel": "pager", "name": "p"}).status_code == 201
    second = add_customer(api, "wm-b", tags=["a"])
    run_days(app, manual_clock, 2)
    [t] = touches(app, customer_id=second)
    assert (t.status, t.attempts) == ("failed", 1) and "private_chat" in t.outcome["reason"]
    for customer in (first, second):
        assert "tried" not in api.get(f"/api/v1/customers/{customer}").json()["tags"]


def test_a_channels_declared_daily_cap_wins_over_a_higher_tenant_cap(app_with, manual_clock):
    """WeCom allows one mass message per customer a day: a channel that declares
    customer_cap 1/day gets it even when the tenant allows 3."""
    from sopflow_sdk import Capabilities, Channel, ChannelSpec, CustomerCap, SendReceipt

    from tests.sop_support import add_customer, create_sop, run_days, touches

    class Capped(Channel):
        name = "capped"
        capabilities = Capabilities(
            touchpoints=frozenset({"private_chat"}), customer_cap=CustomerCap(count=1, period="day")
        )

        def __init__(self, config, secrets):
            pass

        def send(self, message):
            return SendReceipt("sent")

    channels = plugin("capped", register_channels=lambda register: register(ChannelSpec("capped", Capped)))
    app, api = app_with(("capped", channels))
    assert api.post("/api/v1/channel-accounts", json={"channel": "capped", "name": "c"}).status_code == 201
    assert api.patch("/api/v1/tenants/current", json={"customer_daily_push_cap": 3}).status_code == 200

    def sop(name: str, channel: str) -> None:
        steps = [
            {"day": 1, "at": at, "actions": [{"type": "send", "channel": channel, "text": at}]}
            for at in ("09:00", "10:00")
        ]
        body = {"kind": "nurture", "target": {"rule": {"tags": {"any_of": [name]}}}, "steps": steps}
        create_sop(api, name, body)

    sop("c", "capped")
    sop("l", "log")
    capped, logged = add_customer(api, "wm-c", tags=["c"]), add_customer(api, "wm-l", tags=["l"])
    run_days(app, manual_clock, 3)
    days = {c: [t.sent_at.date() for t in touches(app, customer_id=c)] for c in (capped, logged)}
    assert days[capped][0] != days[capped][1]  # the channel's 1 a day
    assert days[logged][0] == days[logged][1]  # the tenant's 3 a day
    assert touches(app, customer_id=capped)[1].defer_reason == "customer_cap"


def test_hook_register_jobs_runs_on_demand_with_a_host(app_with):
    from sopflow_sdk import InboundResponse, JobSpec, PluginError, RouteSpec

    runs = []

    def job(host, **kwargs):
        runs.append((host.now(), kwargs))

    def kick(request, host):
        host.enqueue("kicker.job", n=int(request.query["n"]))
        try:
            host.enqueue("kicker.nope")
        except PluginError as exc:
            return InboundResponse(200, str(exc))
        return InboundResponse(500)

    kicker = plugin(
        "kicker",
        register_jobs=lambda register: register(JobSpec("kicker.job", job)),
        register_routes=lambda register: register(RouteSpec("kick", kick)),
    )
    app, api = app_with(("kicker", kicker))
    r = api.post("/plugins/kicker/kick?n=3")
    assert r.status_code == 200 and "no job named 'kicker.nope'" in r.text
    assert runs == [(app.now(), {"n": 3})]  # no broker: the job ran inline


def test_hook_register_worker_services_run_in_the_worker_until_it_stops(app_with):
    """Each service runs in its own thread with its plugin's host; one that raises is
    logged and run again; the worker's shutdown stops them all (bounded waits)."""
    import threading
    import time

    from sopflow.worker.services import start_services
    from sopflow_sdk import WorkerServiceSpec

    calls: list[str] = []
    flaky_runs = threading.Semaphore(0)

    def steady(host, stop):
        calls.append(host.plugin)
        stop.wait()  # a long-lived task: until the worker stops

    def flaky(host, stop):
        flaky_runs.release()
        raise RuntimeError("the gateway went away")

    def register_worker_services(register):
        register(WorkerServiceSpec("streamer.steady", run=steady))
        register(WorkerServiceSpec("streamer.flaky", run=flaky, restart_seconds=0.01))

    services = plugin("streamer", register_worker_services=register_worker_services)
    app, _ = app_with(("streamer", services))
    running = start_services(app)
    try:
        assert all(flaky_runs.acquire(timeout=10) for _ in range(3))  # raised, logged, run again
        deadline = time.monotonic() + 10
        while not calls:
            assert time.monotonic() < deadline, "the steady service never started"
            time.sleep(0.01)
        assert calls == ["streamer"] and running.alive == ["streamer.flaky", "streamer.steady"]
    finally:
        running.stop(timeout=10)
    assert running.alive == [] and calls == ["streamer"]  # stopped, not restarted


def test_hook_on_event_is_called_once_per_new_event_and_isolated(app_with):
    seen: list[tuple[int, dict[str, Any]]] = []
    only_event: list[str] = []

    def record(tenant_id, event):
        seen.append((tenant_id, event))

    def boom(tenant_id, event):
        raise RuntimeError("plugin bug")

    _, api = app_with(
        ("watch", plugin("watch", on_event=record)),
        ("boom", plugin("boom", on_event=boom)),
        ("lean", plugin("lean", on_event=lambda event: only_event.append(event["type"]))),
    )
    body = {
        "events": [
            {
                "type": "order.paid",
                "idempotency_key": "o1",
                "identity": {"channel": "phone", "external_id": "+1"},
                "payload": {"amount": 5},
            }
        ]
    }
    assert api.post("/api/v1/events", json=body).status_code == 200  # despite 'boom'
    assert api.post("/api/v1/events", json=body).json()["results"][0]["status"] == "duplicate"
    [(tenant_id, event)] = seen
    assert tenant_id == api.tenant_id and event["type"] == "order.paid" and event["payload"] == {"amount": 5}
    assert set(event) == {
        "id",
        "type",
        "customer_id",
        "idempotency_key",
        "occurred_at",
        "received_at",
        "payload",
        "source",
        "causation_id",
        "depth",
    }
    assert only_event == ["order.paid"]  # an implementation may take a subset of the arguments

    api.put("/api/v1/plugins/watch", json={"enabled": False})
    body["events"][0]["idempotency_key"] = "o2"
    assert api.post("/api/v1/events", json=body).status_code == 200
    assert len(seen) == 1 and only_event == ["order.paid", "order.paid"]


def test_hook_on_stage_changed_skips_tenants_that_switched_the_plugin_off(api):
    pipeline = api.post("/api/v1/pipelines", json={"template": "education"}).json()
    customer = api.post("/api/v1/customers", json={"display_name": "B"}).json()["id"]
    api.put("/api/v1/plugins/hooktest", json={"enabled": False})
    first, second = (s["id"] for s in pipeline["stages"])
    assert api.post(f"/api/v1/customers/{customer}/stage", json={"stage_id": first}).status_code == 200
    assert MOVES_SEEN == []
    api.put("/api/v1/plugins/hooktest", json={"enabled": True})
    api.post(f"/api/v1/customers/{customer}/stage", json={"stage_id": second})
    api.post(f"/api/v1/customers/{customer}/stage", json={"stage_id": second})  # no move: no call
    assert [(m["from"], m["to"]) for m in MOVES_SEEN] == [("interest", "trial")]


def test_trace_plugins_logs_the_hook_calls_core_makes(capsys):
    from sopflow.logging import configure_logging
    from sopflow.plugins import build_plugin_system

    configure_logging("INFO")
    system = build_plugin_system(
        enabled=(), trace=True, extra=[("t", plugin("t", on_event=lambda tenant_id, event: None))]
    )
    system.notify("on_event", tenant_id=1, event={"id": 1})
    out = "".join(capsys.readouterr())
    traced = [line for line in out.splitlines() if "plugin_trace" in line]
    assert any("on_event" in line and "t" in line for line in traced), out
    assert not build_plugin_system(enabled=(), extra=[("u", plugin("u"))]).trace
