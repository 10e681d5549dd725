"""The console channel through the SDK's channel conformance suite: subclass
``ChannelConformance``, say how to build the channel and how to see what it
sent, and every standard check runs as its own test."""

import pytest
import sopflow_hello.plugin
from sopflow_hello.channel import OUTBOX
from sopflow_sdk.testing.conformance import ChannelConformance, registered_channels


class TestConsoleChannel(ChannelConformance):
    @pytest.fixture
    def channel_spec(self):
        return registered_channels(sopflow_hello.plugin)["console"]

    @pytest.fixture
    def channel_config(self):
        return {"sender": "ACME"}

    @pytest.fixture
    def channel_secrets(self):
        return {"token": "console-token-0123456789"}

    @pytest.fixture
    def deliveries(self):
        OUTBOX.clear()
        return lambda: OUTBOX
