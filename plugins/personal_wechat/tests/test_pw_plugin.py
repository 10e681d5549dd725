"""The plugin's registrations: entry point, channel, routes, job, trigger, migrations."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from sopflow_personal_wechat import plugin, settings
from sopflow_sdk import ChannelSpec, JobSpec, MigrationsSpec, RouteSpec, TriggerSpec


def _collect(hook: Any) -> list[Any]:
    found: list[Any] = []
    hook(found.append)
    return found


def test_entry_point_names_the_plugin_module() -> None:
    [ep] = [e for e in entry_points(group="sopflow") if e.name == "personal_wechat"]
    assert ep.value == "sopflow_personal_wechat.plugin"


def test_the_channel_declares_its_settings_and_asks_for_its_context() -> None:
    [spec] = _collect(plugin.register_channels)
    assert isinstance(spec, ChannelSpec) and spec.name == "personal_wechat"
    assert spec.context is True and spec.settings is settings.SETTINGS
    assert spec.settings.secret_names == ("token",)
    caps = spec.capabilities
    assert caps.touchpoints == {"private_chat", "group_chat", "moments"}
    assert caps.idempotent_send is False and caps.customer_cap is not None


def test_routes_job_trigger_and_migrations() -> None:
    routes = _collect(plugin.register_routes)
    assert all(isinstance(r, RouteSpec) for r in routes)
    assert {(r.path, r.methods) for r in routes} == {
        ("accounts/{account_id:int}", ("GET",)),
        ("accounts/{account_id:int}/intake", ("POST",)),
    }
    [job] = _collect(plugin.register_jobs)
    assert isinstance(job, JobSpec) and job.name == plugin.INTAKE_JOB and job.every_seconds
    triggers = _collect(plugin.register_triggers)
    assert all(isinstance(t, TriggerSpec) and t.description for t in triggers)
    assert [t.event_type for t in triggers] == ["group.joined", "group.left"]
    [spec] = _collect(plugin.register_migrations)
    assert isinstance(spec, MigrationsSpec)
    assert sorted(p.name for p in Path(spec.directory).glob("*.py")) == [
        "0001_pacing.py",
        "0002_unfriended.py",
    ]
    assert set(spec.metadata.tables) == {"personal_wechat_pacing", "personal_wechat_unfriended"}


def test_loading_the_plugin_loads_no_wire_stack() -> None:
    """Migrations and the CLI load the plugin; gRPC and nng load with a channel."""
    import subprocess
    import sys

    code = (
        "import sys, sopflow_personal_wechat.plugin; "
        "print('betterproto' in sys.modules, 'pynng' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_the_staff_id_falls_back_to_the_configured_self_wxid(pacer: Any, clock: Any) -> None:
    """A gateway that never named the account: customers' staff id is ``config.self_wxid``."""
    from types import SimpleNamespace

    from pw_support import RecordingGateway
    from sopflow_personal_wechat import intake
    from sopflow_personal_wechat.channel import PersonalWeChatChannel
    from sopflow_personal_wechat.port import GatewayEvent

    gateway = RecordingGateway("", clock, [])
    config = {"adapter": "wechaty", "endpoint": "10.0.0.3:8788", "self_wxid": "wxid_front_desk"}
    channel = PersonalWeChatChannel(config, {"token": "token-000001"}, gateway=gateway, pacer=pacer)
    ingested: list[Any] = []
    host = SimpleNamespace(ingest=lambda tenant, events: ingested.extend(events) or [{"status": "created"}])
    account = SimpleNamespace(tenant_id=1, config=config)
    assert intake.handle(host, account, channel, GatewayEvent("message", "m1", "wxid_li", text="在吗")) == 1
    [event] = ingested
    assert (event.identity.external_id, event.identity.staff_external_id) == ("wxid_li", "wxid_front_desk")
