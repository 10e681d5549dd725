"""The plugin model as docs/plugin-hooks.md states it: built-in actions are
registered by a default plugin like any plugin's; a plugin action is a step
type of its own (the older ``"plugin"`` form still validates and runs); a
plugin's channel or action replaces a built-in of the same name; channel
capabilities are part of ``ChannelSpec``; a registration hook that fails stops
start-up naming the plugin, the hook and the fix."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from sopflow_sdk import (
    ATTACHMENT_KINDS,
    TOUCHPOINTS,
    ActionSpec,
    Capabilities,
    Channel,
    ChannelSpec,
    CustomerCap,
    FieldSpec,
    PluginError,
    SendReceipt,
)

from tests import test_hooks
from tests.sop_support import add_customer, create_sop, run_days, touches
from tests.test_hooks import plugin, system_with
from tests.test_plugins import FakeEntryPoint

app_with = test_hooks.app_with  # the fixture: an app with the given plugins, and an admin client

BUILT_IN_ACTIONS = {"send", "remind_staff", "set_field", "add_tag", "remove_tag", "move_stage", "webhook"}


def recorder(runs: list[tuple[dict[str, Any], dict[str, Any]]]) -> Any:
    return lambda context, params: runs.append((context, params))


def test_built_in_actions_are_registered_by_the_default_actions_plugin():
    system = system_with()
    by_plugin = {r.spec.name: r.plugin for r in system.registry.all("register_actions")}
    assert {name for name, p in by_plugin.items() if p == "default_actions"} == BUILT_IN_ACTIONS
    assert (
        system.infos["default_actions"].hooks == ["register_actions"]
        and system.infos["default_actions"].default
    )
    send = system.registry.get("register_actions", "send").spec
    assert send.params_schema["required"] == ["text"] and "touchpoint" in send.params_schema["properties"]


def test_a_plugin_action_is_a_step_type_of_its_own(app_with, manual_clock):
    runs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    crm = plugin("crm", register_actions=lambda register: register(ActionSpec("crm.task", recorder(runs))))
    app, api = app_with(("crm", crm))
    action = {"type": "crm.task", "queue": "vip"}
    sop = create_sop(
        api, "crm", {"kind": "new_customer", "target": {}, "steps": [{"delay": "1h", "actions": [action]}]}
    )
    assert api.get(f"/api/v1/sops/{sop}").json()["definition"]["steps"][0]["actions"] == [action]
    customer = add_customer(api, "wm-crm")
    run_days(app, manual_clock, 1)
    [(context, params)] = runs
    assert params == {"queue": "vip"} and context["customer_id"] == customer
    assert context["idempotency_key"] == f"touch:{touches(app, customer_id=customer)[0].id}:0"

    def refused(action: dict[str, Any]) -> dict[str, str]:
        steps = [{"delay": "1h", "actions": [action]}]
        r = api.post(
            "/api/v1/sops", json={"name": "x", "definition": {"kind": "new_customer", "steps": steps}}
        )
        assert r.status_code == 422, r.text
        return {e["field"]: e["message"] for e in r.json()["errors"]}

    unknown = refused({"type": "crm.tsk"})["definition.steps[0].actions[0].type"]
    assert "crm.task" in unknown and "send" in unknown and "GET /api/v1/plugins" in unknown
    api.put("/api/v1/plugins/crm", json={"enabled": False})
    assert "definition.steps[0].actions[0].type" in refused(action)


def test_the_older_plugin_form_still_validates_and_runs(app_with, manual_clock):
    """Definitions saved with ``{"type": "plugin", ...}`` keep it, and run next
    to the step-type form, in order."""
    runs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    crm = plugin("crm", register_actions=lambda register: register(ActionSpec("crm.task", recorder(runs))))
    app, api = app_with(("crm", crm))
    old = {"type": "plugin", "action": "crm.task", "params": {"queue": "old"}}
    new = {"type": "crm.task", "queue": "new"}
    steps = [{"delay": "1h", "actions": [old, new]}]
    sop = create_sop(api, "old", {"kind": "new_customer", "target": {}, "steps": steps})
    assert api.get(f"/api/v1/sops/{sop}").json()["definition"]["steps"][0]["actions"] == [old, new]
    customer = add_customer(api, "wm-old")
    run_days(app, manual_clock, 1)
    assert [params for _, params in runs] == [{"queue": "old"}, {"queue": "new"}]
    [touch] = touches(app, customer_id=customer)
    assert [r["action"] for r in touch.outcome["results"]] == [0, 1]
    steps = [{"delay": "1h", "actions": [{"type": "plugin", "action": "add_tag", "params": {"tag": "x"}}]}]
    r = api.post("/api/v1/sops", json={"name": "b", "definition": {"kind": "new_customer", "steps": steps}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "definition.steps[0].actions[0].action"


def test_a_plugin_replaces_a_built_in_channel_of_the_same_name():
    class Quiet(Channel):
        name = "log"
        capabilities = Capabilities(touchpoints=frozenset({"private_chat"}), idempotent_send=True)

        def __init__(self, config, secrets):
            pass

        def send(self, message):
            return SendReceipt("sent")

    def channels(register):
        register(ChannelSpec("log", factory=Quiet))

    system = system_with(("quiet", plugin("quiet", register_channels=channels)))
    reg = system.registry.get("register_channels", "log")
    assert (reg.plugin, reg.spec.factory) == ("quiet", Quiet)
    assert [(r.hook, r.key, r.plugin, r.default) for r in system.registry.replaced] == [
        ("register_channels", "log", "quiet", "default_channels")
    ]
    # plugins among themselves, and built-in vocabulary (fields, event types), still clash
    with pytest.raises(PluginError, match=r"ChannelSpec 'log' is registered twice: by plugin '(a|b)'"):
        system_with(
            ("a", plugin("a", register_channels=channels)), ("b", plugin("b", register_channels=channels))
        )
    field = plugin("f", register_fields=lambda register: register(FieldSpec("first_added_at", "datetime")))
    with pytest.raises(PluginError, match="FieldSpec 'first_added_at' is registered twice"):
        system_with(("f", field))


def test_a_plugin_action_replaces_the_built_in_one_in_sop_steps(app_with, manual_clock):
    """A deployment that signs its webhooks replaces ``webhook``: steps keep their
    shape, the plugin's ``run`` gets the step's keys, nothing is posted."""
    runs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    signed = plugin(
        "signed", register_actions=lambda register: register(ActionSpec("webhook", recorder(runs)))
    )
    app, api = app_with(("signed", signed))
    action = {"type": "webhook", "url": "https://example.invalid/hook", "key_id": "k1"}
    create_sop(
        api, "w", {"kind": "new_customer", "target": {}, "steps": [{"delay": "1h", "actions": [action]}]}
    )
    customer = add_customer(api, "wm-w")
    run_days(app, manual_clock, 1)
    [(context, params)] = runs
    assert (
        params == {"url": "https://example.invalid/hook", "key_id": "k1"}
        and context["customer_id"] == customer
    )
    [touch] = touches(app, customer_id=customer)
    assert touch.status == "sent"


def test_channel_capabilities_are_part_of_the_channel_spec():
    from sopflow.engine.delivery.claim import daily_channel_caps

    class Capped(Channel):
        name = "capped"
        capabilities = Capabilities(customer_cap=CustomerCap(1, "day"))

    once_a_day = Capabilities(customer_cap=CustomerCap(1, "day"))
    spec = ChannelSpec("built", factory=lambda config, secrets: Capped(), capabilities=once_a_day)
    assert ChannelSpec("capped", factory=Capped).capabilities is Capped.capabilities
    with pytest.raises(ValueError, match="declare them once"):
        ChannelSpec("capped", factory=Capped, capabilities=Capabilities())
    with pytest.raises(TypeError, match=r"give a sopflow_sdk\.Capabilities"):
        ChannelSpec("odd", factory=Capped, capabilities={"customer_cap": 1})
    # a factory function's spec declares the cap: the engine plans with it
    system = system_with(("built", plugin("built", register_channels=lambda register: register(spec))))
    assert daily_channel_caps(system.registry)["built"] == 1


def test_a_registration_hook_that_raises_stops_start_up_naming_plugin_hook_and_fix(monkeypatch):
    from sopflow import plugins as plugin_module

    def boom(register):
        raise RuntimeError("no CRM_URL set")

    monkeypatch.setattr(
        plugin_module, "entry_points", lambda: [FakeEntryPoint("crm", plugin("crm", register_actions=boom))]
    )
    with pytest.raises(PluginError) as err:
        plugin_module.build_plugin_system()
    message = str(err.value)
    assert (
        "plugin 'crm' (distribution sopflow-x 1.0) failed in register_actions: RuntimeError: no CRM_URL set"
        in message
    )
    assert "Fix the hook" in message and "SOPFLOW_DISABLED_PLUGINS=crm" in message


def test_a_bad_record_stops_start_up_naming_plugin_hook_and_fix():
    bad_key = plugin("shop", register_fields=lambda register: register(FieldSpec("Total Spend", "number")))
    with pytest.raises(
        PluginError, match=r"plugin 'shop' failed in register_fields: ValueError: .*lower_snake_case"
    ):
        system_with(("shop", bad_key))

    def returns(register):
        return [FieldSpec("shop.total", "number")]

    with pytest.raises(PluginError) as err:
        system_with(("shop", plugin("shop", register_fields=returns)))
    assert "plugin 'shop' failed in register_fields: it returned list instead of registering" in str(
        err.value
    )
    assert "register(FieldSpec(...))" in str(err.value)
    reserved = plugin("old", register_actions=lambda register: register(ActionSpec("plugin", print)))
    with pytest.raises(PluginError, match=r"plugin 'old' failed in register_actions: .*reserved"):
        system_with(("old", reserved))


def vocabulary_literals(source: str, words: set[str]) -> list[list[str]]:
    """Tuple, list and set literals of strings holding three or more of ``words``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            strings = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            if len(set(strings) & words) >= 3:
                found.append(strings)
    return found


def test_core_takes_its_vocabulary_from_the_sdk():
    """Touchpoints and attachment kinds are spelled once, in sopflow_sdk."""
    words = {*TOUCHPOINTS, *ATTACHMENT_KINDS}
    assert vocabulary_literals('KINDS = ("image", "link", "video", "file")', words)  # the check can fail
    core = Path(__file__).resolve().parents[1] / "core" / "src"
    spelled = {
        str(path.relative_to(core)): found
        for path in core.rglob("*.py")
        if (found := vocabulary_literals(path.read_text(), words))
    }
    assert spelled == {}, f"core re-declares vocabulary of sopflow_sdk: {spelled}"
