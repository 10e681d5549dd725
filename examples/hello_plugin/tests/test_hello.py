"""The hello plugin's own tests, written the way a plugin author writes them:
only ``sopflow_sdk.testing`` fixtures, the plugin registered through the
``sopflow_plugins`` fixture.  ``tests/test_examples.py`` runs this file."""

from datetime import timedelta

import pytest
import sopflow_hello.plugin
from sopflow_hello.channel import OUTBOX, ConsoleChannel
from sopflow_sdk import OutboundMessage
from sopflow_sdk.testing import run_due


@pytest.fixture
def sopflow_plugins():
    return [("hello", sopflow_hello.plugin)]


def test_field_is_listed(api):
    field = api.get("/api/v1/fields/hello.last_greeting").json()
    assert field["plugin"] == "hello" and field["read_only"] is True


def test_greeting_becomes_an_event(api):
    r = api.post("/plugins/hello/greet", json={"id": "1", "from": "u-1", "text": "hi"})
    assert r.status_code == 200 and r.json()["status"] == "created"
    [event] = api.get("/api/v1/events?type=hello.greeted").json()["items"]
    # the greeting set the plugin's field, and the stored event says which field changed
    assert event["payload"] == {"text": "hi", "fields_changed": ["hello.last_greeting"]}


def test_console_channel_sends_once_per_key():
    OUTBOX.clear()
    channel = ConsoleChannel({"sender": "ACME"}, {})
    message = OutboundMessage("private_chat", "hi", "touch:1:0", recipient={"external_id": "u-1"})
    channel.send(message)
    channel.send(message)  # a retry: same idempotency key
    assert [m["text"] for m in OUTBOX] == ["hi"]


def test_a_delayed_step_goes_out_when_its_day_comes(api):
    OUTBOX.clear()
    account = {"channel": "console", "name": "main", "config": {}, "secrets": {"token": "tok-1"}}
    assert api.post("/api/v1/channel-accounts", json=account).json()["config"] == {"sender": "sopflow"}
    send = {"type": "send", "channel": "console", "text": "see you", "signature": "ACME"}
    definition = {
        "kind": "nurture",
        "target": {"rule": {"events": {"type": "hello.greeted", "min": 1}}},
        "steps": [{"delay": "1d", "actions": [send]}],
    }
    sop = api.post("/api/v1/sops", json={"name": "follow-up", "definition": definition}).json()
    api.post(f"/api/v1/sops/{sop['id']}/start")
    api.post("/plugins/hello/greet", json={"id": "1", "from": "u-1", "text": "hi"})
    run_due(api, by=timedelta(hours=23))
    assert OUTBOX == []
    run_due(api, by=timedelta(hours=1))
    assert [(m["to"], m["text"], m["signature"]) for m in OUTBOX] == [("u-1", "see you", "ACME")]


def test_a_step_parameter_the_channel_does_not_declare_is_refused(api):
    send = {"type": "send", "channel": "console", "text": "hi", "subject": "Hello"}
    definition = {"kind": "new_customer", "steps": [{"delay": "0m", "actions": [send]}]}
    r = api.post("/api/v1/sops", json={"name": "s", "definition": definition})
    assert r.status_code == 422
    [error] = r.json()["errors"]
    assert error["field"] == "definition.steps[0].actions[0].subject"
    assert "accepted: signature" in error["message"]
