"""examples/hello_plugin, installed as a distribution (a workspace member) and
loaded through its ``sopflow`` entry point into a real app, exercised through
the HTTP API: field, trigger, route, channel, action, job, per-tenant switch."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sopflow_sdk.testing.harness import ApiClient, make_test_app, new_tenant

from tests.sop_support import run_days

EXAMPLE = Path(__file__).parent.parent / "examples" / "hello_plugin"


@pytest.fixture
def hello(sopflow_database, request, manual_clock):
    """An app with SOPFLOW_PLUGINS=hello (nothing registered by hand) and an
    admin client for a fresh tenant."""
    from litestar.testing import TestClient
    from sopflow.api.app import build_api
    from sopflow_hello import channel, greet

    channel.OUTBOX.clear()
    greet.NOTES.clear()
    greet.POLLS.clear()
    app = make_test_app(
        sopflow_database.url_for_test(request.node.name),
        clock=manual_clock,
        env={"SOPFLOW_PLUGINS": "hello"},
    )
    tenant_id, key = new_tenant(app, "acme")
    with TestClient(build_api(app), raise_server_exceptions=False) as client:
        yield app, ApiClient(client, key, tenant_id)
    app.dispose()


def ingest_key(app, api):
    from sopflow.engine.customers.tenants import issue_api_key

    with app.tx() as s:
        _, token = issue_api_key(s, api.tenant_id, ["ingest"], app.now())
    return api.as_key(token)


def test_loaded_through_its_entry_point(hello):
    _, api = hello
    info = {p["name"]: p for p in api.get("/api/v1/plugins").json()}["hello"]
    assert info["distribution"] == "sopflow-hello" and info["version"] == "0.1.0"
    assert info["default"] is False and info["enabled"] is True
    assert set(info["hooks"]) == {
        "register_fields",
        "register_triggers",
        "register_actions",
        "register_channels",
        "register_routes",
        "register_jobs",
    }


def test_not_loaded_unless_enabled(sopflow_app):
    assert "hello" not in sopflow_app.plugins.names  # make_test_app defaults to SOPFLOW_PLUGINS=""


def test_installed_but_opt_in(tmp_path):
    """A plain app (`sopflow up`'s settings: SOPFLOW_PLUGINS unset) loads every
    installed plugin but this example; naming it loads it."""
    from sopflow.app import create_app
    from sopflow.settings import Settings

    def names(**env):
        settings = Settings.from_env({"SOPFLOW_DATA_DIR": str(tmp_path), **env}, embedded=True)
        app = create_app(settings, migrate=False)
        try:
            return set(app.plugins.names)
        finally:
            app.dispose()

    plain = names()
    assert "hello" not in plain and {"wecom", "demo"} <= plain
    assert "hello" in names(SOPFLOW_PLUGINS="hello")


def test_field_is_listed_and_read_only(hello):
    _, api = hello
    field = api.get("/api/v1/fields/hello.last_greeting").json()
    assert field["plugin"] == "hello" and field["type"] == "text" and field["read_only"] is True
    assert "hello.last_greeting" in {f["key"] for f in api.get("/api/v1/fields").json()}
    r = api.post("/api/v1/customers", json={"fields": {"hello.last_greeting": "hi"}})
    assert r.status_code == 422 and "plugin 'hello'" in r.json()["errors"][0]["message"]


def test_route_ingests_a_greeting(hello):
    app, api = hello
    assert api.as_key(None).post("/plugins/hello/greet", json={}).status_code == 401
    client = ingest_key(app, api)
    body = {"id": "g1", "from": "u-1", "text": "你好"}
    r = client.post("/plugins/hello/greet", json=body)
    assert r.status_code == 200 and r.json()["status"] == "created", r.text
    event_id = r.json()["event_id"]
    again = client.post("/plugins/hello/greet", json=body)
    assert again.json() == {"status": "duplicate", "event_id": event_id}
    assert client.post("/plugins/hello/greet", content=b"not json").status_code == 400
    [event] = api.get("/api/v1/events?type=hello.greeted").json()["items"]
    assert event["id"] == event_id
    assert event["payload"] == {"text": "你好", "fields_changed": ["hello.last_greeting"]}
    [customer] = api.get("/api/v1/customers?external_id=u-1").json()["items"]
    assert customer["id"] == event["customer_id"]
    assert customer["fields"]["hello.last_greeting"] == "你好"


def connect_console(api, sender="ACME"):
    r = api.post(
        "/api/v1/channel-accounts",
        json={
            "channel": "console",
            "name": "main",
            "config": {"sender": sender},
            "secrets": {"token": "tok-123456"},
        },
    )
    assert r.status_code == 201, r.text
    assert "tok-123456" not in r.text
    return r.json()


def test_trigger_starts_an_sop_whose_step_sends_through_the_channel_and_runs_the_action(hello, manual_clock):
    from sopflow_hello.channel import OUTBOX
    from sopflow_hello.greet import NOTES

    from tests.sop_support import create_sop

    app, api = hello
    connect_console(api)
    step = {
        "delay": "1h",
        "actions": [
            {"type": "send", "channel": "console", "text": "{{ customer.display_name }}, 你好！"},
            {"type": "plugin", "action": "hello.note", "params": {"text": "said hello"}},
        ],
    }
    rule = {"events": {"type": "hello.greeted", "min": 1}}
    create_sop(api, "greeted", {"kind": "nurture", "target": {"rule": rule}, "steps": [step]})
    client = ingest_key(app, api)
    r = client.post("/plugins/hello/greet", json={"id": "g1", "from": "u-1", "text": "hi"})
    assert r.status_code == 200, r.text
    [customer] = api.get("/api/v1/customers?external_id=u-1").json()["items"]
    api.patch(f"/api/v1/customers/{customer['id']}", json={"display_name": "王芳"})
    assert OUTBOX == []  # due in an hour
    run_days(app, manual_clock, 1)
    assert [(m["to"], m["sender"], m["touchpoint"], m["text"]) for m in OUTBOX] == [
        ("u-1", "ACME", "private_chat", "王芳, 你好！")
    ]
    assert [(n["customer_id"], n["name"], n["text"]) for n in NOTES] == [
        (customer["id"], "王芳", "said hello")
    ]


def test_channel_declares_capabilities_and_is_idempotent():
    from sopflow_hello.channel import OUTBOX, ConsoleChannel
    from sopflow_sdk import OutboundMessage, Secret, SkippableError, UnsupportedCapabilityError

    OUTBOX.clear()
    caps = ConsoleChannel.capabilities
    assert caps.idempotent_send and caps.rate_per_minute == 60 and "moments" not in caps.touchpoints
    channel = ConsoleChannel({"sender": "ACME"}, {"token": Secret("tok-abcdef")})
    assert "tok-abcdef" not in repr(channel) + str(channel.token)
    message = OutboundMessage("private_chat", "hi", "touch:1:0", recipient={"external_id": "u-1"})
    assert channel.send(message).provider_ref == "touch:1:0"
    assert channel.send(message).status == "sent"  # a retry with the same key
    assert len(OUTBOX) == 1
    with pytest.raises(UnsupportedCapabilityError, match="does not support 'moments'"):
        channel.send(OutboundMessage("moments", "hi", "touch:2:0", recipient={"external_id": "u-1"}))
    with pytest.raises(SkippableError, match="no console identity"):
        channel.send(OutboundMessage("private_chat", "hi", "touch:3:0", recipient={}))
    assert len(OUTBOX) == 1


def test_periodic_job_polls_connected_accounts(hello, manual_clock):
    from datetime import timedelta

    from sopflow.worker.scheduler import Scheduler
    from sopflow_hello.greet import POLLS

    app, api = hello
    connect_console(api)
    scheduler = Scheduler(app)
    assert scheduler.run_periodic_jobs() == 1
    manual_clock.advance(timedelta(minutes=59))
    assert scheduler.run_periodic_jobs() == 0
    manual_clock.advance(timedelta(minutes=1))
    assert scheduler.run_periodic_jobs() == 1
    assert [(p["tenant_id"], p["account"]) for p in POLLS] == [(api.tenant_id, "main")] * 2


def test_per_tenant_switch(hello):
    from sopflow.worker.scheduler import Scheduler
    from sopflow_hello.greet import POLLS

    app, api = hello
    connect_console(api)
    client = ingest_key(app, api)
    assert api.put("/api/v1/plugins/hello", json={"enabled": False}).json()["enabled"] is False
    r = client.post("/plugins/hello/greet", json={"id": "g1", "from": "u-1", "text": "hi"})
    assert r.status_code == 403 and "off for this tenant" in r.json()["detail"]
    assert api.get("/api/v1/events?type=hello.greeted").json()["items"] == []
    step = {"delay": "1h", "actions": [{"type": "send", "channel": "console", "text": "x"}]}
    definition = {"kind": "nurture", "target": {"rule": {"tags": {"any_of": ["vip"]}}}, "steps": [step]}
    r = api.post("/api/v1/sops", json={"name": "s", "definition": definition})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "definition.steps[0].actions[0].channel"
    Scheduler(app).run_periodic_jobs()
    assert POLLS == []  # the job skips tenants that switched the plugin off
    api.put("/api/v1/plugins/hello", json={"enabled": True})
    assert (
        client.post("/plugins/hello/greet", json={"id": "g1", "from": "u-1", "text": "hi"}).status_code == 200
    )


def test_the_examples_own_tests_pass():
    """examples/hello_plugin/tests use only the public test kit, as a plugin
    author's would; run them as their own pytest session."""
    import subprocess
    import sys

    root = EXAMPLE.parent.parent
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", str(EXAMPLE / "tests")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    # its own tests and the SDK's channel conformance suite ran and passed, none failed
    summary = r.stdout.strip().splitlines()[-1]
    assert re.search(r"\b(2\d|[3-9]\d) passed", summary) and "failed" not in summary, summary


def doc_blocks() -> list[tuple[str, str, str]]:
    """(language, first line, rest) of every fenced block in docs/plugin-authoring.md."""
    import re

    text = (EXAMPLE.parent.parent / "docs" / "plugin-authoring.md").read_text(encoding="utf-8")
    return [
        (lang, *[*body.split("\n", 1), ""][:2])
        for lang, body in re.findall(r"^```(\w*)\n(.*?)^```", text, re.S | re.M)
    ]


def test_tutorial_code_is_the_example_code():
    """Every Python/TOML block of the tutorial headed ``# examples/...`` (or
    ``# plugins/...``, quoting a first-party plugin) is a verbatim part of that
    file; the only other Python block is the second example, which
    tests/test_plugin_authoring.py runs."""
    root = EXAMPLE.parent.parent
    quoted, unchecked = set(), []
    for lang, first, rest in doc_blocks():
        if lang not in ("python", "toml"):
            continue
        if not first.startswith(("# examples/", "# plugins/")):
            unchecked.append(first)
            continue
        path = root / first.removeprefix("# ").strip()
        assert path.is_file(), f"the tutorial quotes {path}, which does not exist"
        source = path.read_text(encoding="utf-8")
        assert rest.strip() in source, f"the tutorial's copy of {path.name} differs from the file:\n{rest}"
        if path.is_relative_to(EXAMPLE):
            quoted.add(path.relative_to(EXAMPLE).as_posix())
    assert unchecked == ['"""sopflow_smsdemo.plugin: an SMS-like channel, a field, a trigger and a route."""']
    assert {
        "pyproject.toml",
        "src/sopflow_hello/plugin.py",
        "src/sopflow_hello/channel.py",
        "src/sopflow_hello/greet.py",
        "tests/test_hello.py",
    } <= quoted
