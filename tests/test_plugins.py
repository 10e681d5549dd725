"""The plugin system: discovery, enable/disable lists, errors, per-tenant switch."""

from __future__ import annotations

import importlib.metadata
import sys
import types

import pytest
from sopflow import plugins as plugin_module
from sopflow.plugins import build_plugin_system
from sopflow_sdk import ChannelSpec, FieldSpec, JobSpec, PluginError, TriggerSpec, hookimpl


def make_plugin(name: str, **hooks):
    module = types.ModuleType(name)
    for hook_name, fn in hooks.items():
        setattr(module, hook_name, hookimpl(fn))
    return module


class FakeEntryPoint:
    """Stands in for an installed distribution's entry point."""

    def __init__(self, name, target, dist="sopflow-" + "x", version="1.0"):
        self.name = name
        self._target = target
        self.dist = types.SimpleNamespace(name=dist, version=version)

    def load(self):
        if isinstance(self._target, Exception):
            raise self._target
        return self._target


@pytest.fixture
def installed(monkeypatch):
    eps: list[FakeEntryPoint] = []
    monkeypatch.setattr(plugin_module, "entry_points", lambda: eps)
    monkeypatch.setattr(plugin_module, "opt_in_entry_points", lambda: [])
    return eps


@pytest.fixture
def installed_opt_in(monkeypatch, installed):
    eps: list[FakeEntryPoint] = []
    monkeypatch.setattr(plugin_module, "opt_in_entry_points", lambda: eps)
    return eps


def fields_plugin(*keys):
    def register_fields(register):
        for k in keys:
            register(FieldSpec(k, "number"))

    return make_plugin("p", register_fields=register_fields)


def test_defaults_are_loaded_and_registered(installed):
    system = build_plugin_system()
    assert {"default_fields", "default_triggers", "default_channels"} <= set(system.names)
    assert system.registry.get("register_channels", "log").plugin == "default_channels"
    assert system.registry.get("register_triggers", "order.paid") is not None


def test_entry_point_plugins_are_discovered(installed):
    installed.append(FakeEntryPoint("orders", fields_plugin("orders.total_spend"), dist="sopflow-orders"))
    system = build_plugin_system()
    assert system.registry.get("register_fields", "orders.total_spend").plugin == "orders"
    assert system.infos["orders"].distribution == "sopflow-orders"
    assert system.infos["orders"].hooks == ["register_fields"]


def test_enable_list_loads_only_named_plugins(installed):
    installed += [FakeEntryPoint("a", fields_plugin("a.x")), FakeEntryPoint("b", fields_plugin("b.x"))]
    system = build_plugin_system(enabled=("b",))
    assert "a" not in system.names and "b" in system.names
    assert system.registry.get("register_fields", "a.x") is None


def test_enable_list_with_unknown_name_fails_with_fix(installed):
    installed.append(FakeEntryPoint("a", fields_plugin("a.x")))
    with pytest.raises(PluginError, match=r"'nope' but no such plugin is installed \(installed: a\)"):
        build_plugin_system(enabled=("nope",))


def test_opt_in_plugins_load_only_when_named(installed, installed_opt_in):
    installed.append(FakeEntryPoint("a", fields_plugin("a.x")))
    installed_opt_in.append(FakeEntryPoint("example", fields_plugin("example.x")))
    assert "example" not in build_plugin_system().names
    assert "example" not in build_plugin_system(("a",)).names
    named = build_plugin_system(("example",))
    assert "example" in named.names and "a" not in named.names
    assert named.registry.get("register_fields", "example.x").plugin == "example"
    assert {"a", "example"} <= set(build_plugin_system(("a", "example")).names)
    assert "example" not in build_plugin_system(("example",), disabled=("example",)).names
    with pytest.raises(PluginError, match=r"\(installed: a, example\)"):
        build_plugin_system(("nope",))


def test_disable_list_skips_plugins_and_defaults(installed):
    installed += [FakeEntryPoint("a", fields_plugin("a.x")), FakeEntryPoint("b", fields_plugin("b.x"))]
    system = build_plugin_system(disabled=("a", "default_channels"))
    assert "a" not in system.names and "default_channels" not in system.names
    assert system.registry.get("register_channels", "log") is None


def test_duplicate_registration_names_item_and_both_plugins(installed):
    installed += [
        FakeEntryPoint("first", fields_plugin("shared.x")),
        FakeEntryPoint("second", fields_plugin("shared.x")),
    ]
    with pytest.raises(PluginError) as err:
        build_plugin_system()
    message = str(err.value)
    assert "FieldSpec 'shared.x'" in message and "'first'" in message and "'second'" in message


def test_duplicate_plugin_name(installed):
    installed += [
        FakeEntryPoint("dup", fields_plugin("x.a"), dist="one"),
        FakeEntryPoint("dup", fields_plugin("x.b"), dist="two"),
    ]
    with pytest.raises(PluginError, match="two plugins are named 'dup'"):
        build_plugin_system()


def test_broken_plugin_is_reported_with_name_distribution_and_fix(installed):
    installed.append(
        FakeEntryPoint(
            "broken",
            ModuleNotFoundError("No module named 'missingdep'"),
            dist="sopflow-broken",
            version="0.3",
        )
    )
    with pytest.raises(PluginError) as err:
        build_plugin_system()
    message = str(err.value)
    assert "plugin 'broken' (distribution sopflow-broken 0.3) failed to import" in message
    assert "missingdep" in message and "SOPFLOW_DISABLED_PLUGINS=broken" in message
    assert "broken" not in build_plugin_system(disabled=("broken",)).names


def test_unknown_hook_name_is_refused(installed):
    bad = make_plugin("bad", register_feilds=lambda register: None)
    with pytest.raises(PluginError, match="unknown or invalid hook"):
        build_plugin_system(extra=[("bad", bad)])


def test_wrong_record_type_is_refused(installed):
    plugin = make_plugin("w", register_channels=lambda register: register(TriggerSpec("x")))
    with pytest.raises(PluginError, match=r"register a sopflow_sdk\.ChannelSpec"):
        build_plugin_system(extra=[("w", plugin)])


def test_notification_failure_is_isolated(installed, caplog):
    seen = []

    def boom(tenant_id, event):
        raise RuntimeError("plugin bug")

    def ok(tenant_id, event):
        seen.append(event["id"])

    system = build_plugin_system(
        extra=[("boom", make_plugin("boom", on_event=boom)), ("ok", make_plugin("ok", on_event=ok))]
    )
    system.notify("on_event", tenant_id=1, event={"id": 7})
    assert seen == [7]


def test_tracing_logs_hook_calls(installed, capsys):
    from sopflow.logging import configure_logging

    configure_logging("INFO")
    system = build_plugin_system(
        trace=True, extra=[("t", make_plugin("t", on_event=lambda tenant_id, event: None))]
    )
    system.pm.hook.on_event(tenant_id=1, event={"id": 1}, host=None)
    captured = capsys.readouterr()
    assert "plugin_trace" in captured.out + captured.err


def test_entry_point_group_is_sopflow(monkeypatch):
    calls = []
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: calls.append(group) or [])
    list(plugin_module.entry_points())
    assert calls == ["sopflow"]
    list(plugin_module.opt_in_entry_points())
    assert calls == ["sopflow", "sopflow.opt_in"]


# -- through the app and the API --------------------------------------------------

PINGS: list[dict] = []


def _route_handler(request, host):
    from sopflow_sdk import Identity, InboundResponse, IngestEvent

    tenant_id = int(request.query["tenant"])
    out = host.ingest(
        tenant_id,
        [
            IngestEvent(
                "ping.received",
                Identity("pinger", request.query["who"]),
                idempotency_key=request.query["id"],
                source="ping-qr",
            )
        ],
    )
    return InboundResponse(200, out[0]["status"])


def _job(host, **kwargs):
    PINGS.append(kwargs)


def ping_plugin():
    from sopflow_sdk import RouteSpec

    return make_plugin(
        "ping",
        register_fields=lambda register: register(FieldSpec("ping.count", "number")),
        register_routes=lambda register: register(RouteSpec("hook", _route_handler, ("POST",))),
        register_jobs=lambda register: register(JobSpec("ping.job", _job)),
        register_channels=lambda register: register(ChannelSpec("ping", factory=lambda c, s: None)),
    )


@pytest.fixture
def sopflow_plugins():
    return [("ping", ping_plugin())]


def test_per_tenant_switch(api, sopflow_app):
    tenant = api.tenant_id
    listing = {p["name"]: p for p in api.get("/api/v1/plugins").json()}
    assert listing["ping"]["enabled"] is True and listing["ping"]["hooks"]
    r = api.post(f"/plugins/ping/hook?tenant={tenant}&who=u1&id=e1")
    assert r.status_code == 200 and r.text == "created"
    customer = api.get("/api/v1/customers?external_id=u1").json()["items"][0]
    assert customer["source"] == "ping-qr"

    assert api.put("/api/v1/plugins/ping", json={"enabled": False}).json()["enabled"] is False
    r = api.post(f"/plugins/ping/hook?tenant={tenant}&who=u2&id=e2")
    assert r.status_code == 422 and "disabled for tenant" in r.json()["detail"]
    assert api.get("/api/v1/customers?external_id=u2").json()["items"] == []
    r = api.post("/api/v1/channel-accounts", json={"channel": "ping", "name": "p"})
    assert r.status_code == 422 and "PUT /api/v1/plugins/ping" in r.json()["errors"][0]["message"]

    api.put("/api/v1/plugins/ping", json={"enabled": True})
    assert api.post(f"/plugins/ping/hook?tenant={tenant}&who=u2&id=e2").text == "created"
    assert api.put("/api/v1/plugins/nope", json={"enabled": False}).status_code == 404
    assert api.put("/api/v1/plugins/default_channels", json={"enabled": False}).status_code == 422


def test_plugin_fields_are_read_only_for_api_users_but_writable_by_the_plugin(api):
    r = api.post("/api/v1/customers", json={"fields": {"ping.count": 1}})
    assert r.status_code == 422 and "plugin 'ping'" in r.json()["errors"][0]["message"]
    field = api.get("/api/v1/fields/ping.count").json()
    assert field["plugin"] == "ping" and field["read_only"] is True


def test_plugin_jobs_run_through_the_broker(api, sopflow_app, stub_broker):
    from sopflow.host import enqueue_job

    PINGS.clear()
    enqueue_job(sopflow_app, "ping.job", {"n": 1})
    stub_broker.join("sopflow")
    assert PINGS == [{"n": 1}]
    with pytest.raises(PluginError, match="no job named 'nope'"):
        enqueue_job(sopflow_app, "nope", {})


def test_periodic_jobs_follow_the_manual_clock(sopflow_database, request, manual_clock):
    from datetime import timedelta

    from sopflow.worker.scheduler import Scheduler
    from sopflow_sdk.testing.harness import make_test_app

    PINGS.clear()
    plugin = make_plugin(
        "tick", register_jobs=lambda register: register(JobSpec("tick", _job, every_seconds=60))
    )
    app = make_test_app(
        sopflow_database.url_for_test(request.node.name), clock=manual_clock, extra_plugins=[("tick", plugin)]
    )
    sched = Scheduler(app)
    assert sched.run_periodic_jobs() == 1
    assert sched.run_periodic_jobs() == 0
    manual_clock.advance(timedelta(seconds=59))
    assert sched.run_periodic_jobs() == 0
    manual_clock.advance(timedelta(seconds=1))
    assert sched.run_periodic_jobs() == 1
    assert len(PINGS) == 2
    app.dispose()


def test_sdk_is_the_only_import_surface_for_plugins():
    """First-party plugins' code imports sopflow_sdk, never sopflow (core); their
    end-to-end tests may start a core app, as any application's tests would."""
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[1] / "plugins"
    offenders = [
        str(p)
        for p in root.glob("*/src/**/*.py")
        if re.search(r"^\s*(from|import) sopflow(\.|\s|$)", p.read_text(), re.M)
    ]
    assert offenders == []
    assert sys.modules.get("sopflow_sdk") is not None


def python_files(*parts: str):
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1].joinpath(*parts)
    return sorted(p for p in root.rglob("*.py") if ".venv" not in p.parts)


def imported_modules(path) -> set[str]:
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    return names | {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}


PLUGIN_PACKAGES = ("sopflow_wecom", "sopflow_salesforce", "sopflow_hello", "sopflow_demo")


def test_core_imports_no_plugin():
    """Core depends on the SDK only: no plugin import, no plugin distribution."""
    import pathlib

    offenders = {
        str(p): sorted(m for m in imported_modules(p) if m.split(".")[0] in PLUGIN_PACKAGES)
        for p in python_files("core")
    }
    assert {p: m for p, m in offenders.items() if m} == {}
    pyproject = (pathlib.Path(__file__).resolve().parents[1] / "core" / "pyproject.toml").read_text()
    assert not any(name.replace("_", "-") in pyproject for name in PLUGIN_PACKAGES)


#: What the demo, an application on sopflow, takes from core (examples/demo/README.md says why).
DEMO_CORE_IMPORTS = {
    "sopflow.api.app",
    "sopflow.app",
    "sopflow.clock",
    "sopflow.engine.delivery.confirmations",
    "sopflow.engine.delivery.dispatch",
    "sopflow.engine.sops.manage",
    "sopflow.host",
    "sopflow.models",
    "sopflow.settings",
    "sopflow.worker.scheduler",
}


def test_examples_import_core_only_where_documented():
    """The hello example imports only sopflow_sdk; the demo imports a few core modules."""

    def core_imports(parts):
        return {m for p in python_files(*parts) for m in imported_modules(p) if m.split(".")[0] == "sopflow"}

    assert core_imports(("examples", "hello_plugin")) == set()
    assert core_imports(("examples", "demo")) == DEMO_CORE_IMPORTS
