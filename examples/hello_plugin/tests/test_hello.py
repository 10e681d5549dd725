"""The hello plugin's own tests, written the way a plugin author writes them:
only ``sopflow_sdk.testing`` fixtures, the plugin registered through the
``sopflow_plugins`` fixture.  ``tests/test_examples.py`` runs this file."""

import pytest
import sopflow_hello.plugin
from sopflow_hello.channel import OUTBOX, ConsoleChannel
from sopflow_sdk import OutboundMessage


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
    assert event["payload"] == {"text": "hi"}


def test_console_channel_sends_once_per_key():
    OUTBOX.clear()
    channel = ConsoleChannel({"sender": "ACME"}, {})
    message = OutboundMessage("private_chat", "hi", "touch:1:0", recipient={"external_id": "u-1"})
    channel.send(message)
    channel.send(message)  # a retry: same idempotency key
    assert [m["text"] for m in OUTBOX] == ["hi"]
