"""The channel conformance suite, run against core's ``log`` and ``manual`` channels, and the
suite's own tests: each check fails on a channel that breaks its rule."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs
import pytest
from sopflow.defaults import channels as default_channels
from sopflow_sdk import (
    AmbiguousSendError,
    Capabilities,
    Channel,
    ChannelSpec,
    ConfigError,
    CustomerCap,
    OutboundMessage,
    RetriableError,
    SendReceipt,
    SignatureError,
)
from sopflow_sdk.specs import InboundRequest
from sopflow_sdk.testing.conformance import (
    ChannelConformance,
    InboundCheck,
    InvalidConfig,
    as_secrets,
    registered_channels,
)


class TestLogChannel(ChannelConformance):
    @pytest.fixture
    def channel_spec(self) -> ChannelSpec:
        return registered_channels(default_channels)["log"]

    @pytest.fixture
    def channel_secrets(self) -> Mapping[str, Any]:
        return {"token": "log-channel-ignores-this-secret"}  # it takes none, and must not show one either

    @pytest.fixture
    def deliveries(self, channel: Any) -> Any:
        return lambda: channel.sent

    @pytest.fixture
    def unaddressable_message(self) -> None:
        return None  # a log records every message, addressed or not


class TestManualChannel(ChannelConformance):
    @pytest.fixture
    def channel_spec(self) -> ChannelSpec:
        return registered_channels(default_channels)["manual"]

    @pytest.fixture
    def channel_secrets(self) -> Mapping[str, Any]:
        return {"token": "manual-channel-ignores-this-secret"}

    @pytest.fixture
    def deliveries(self, channel: Any) -> Any:
        return lambda: channel.sent  # what staff were asked to send by hand

    @pytest.fixture
    def unaddressable_message(self) -> None:
        return None  # the member knows whom to reach: any message is theirs to send


# -- the suite catches what it checks ---------------------------------------------------------------

SUITE = ChannelConformance()
SECRET = {"api_key": "sk-conformance-0123456789"}
MESSAGE = OutboundMessage("private_chat", "hi", "k1", recipient={"external_id": "c1"})


class Recorder(Channel):
    """A well-behaved channel to break one rule at a time."""

    name = "recorder"
    capabilities: ClassVar[Capabilities] = Capabilities(idempotent_send=True, max_attachments=1)

    def __init__(self, config: Mapping[str, Any], secrets: Mapping[str, Any]) -> None:
        self.api_key = secrets.get("api_key")
        self.sent: list[OutboundMessage] = []

    def send(self, message: OutboundMessage) -> SendReceipt:
        self.check(message)
        if not any(m.idempotency_key == message.idempotency_key for m in self.sent):
            self.sent.append(message)
        return SendReceipt("sent", provider_ref=message.idempotency_key)


def recorder(cls: type[Recorder] = Recorder) -> Recorder:
    return cls({}, as_secrets(SECRET))


def test_the_well_behaved_channel_passes() -> None:
    channel = recorder()
    SUITE.test_name_is_a_lowercase_identifier(channel)
    SUITE.test_reachable_objects_hide_secrets(channel, SECRET)
    SUITE.test_same_idempotency_key_delivers_once(channel, MESSAGE, lambda: len(channel.sent))
    SUITE.test_send_refuses_an_undeclared_touchpoint(channel, MESSAGE, lambda: len(channel.sent), SECRET)


def test_bad_names_fail() -> None:
    class Shouting(Recorder):
        name = "SMS-Channel"

    with pytest.raises(AssertionError, match="lowercase identifier"):
        SUITE.test_name_is_a_lowercase_identifier(recorder(Shouting))
    spec = ChannelSpec("recorder2", factory=Recorder)
    with pytest.raises(AssertionError, match="make them equal"):
        SUITE.test_name_matches_its_channel_spec(recorder(), spec)


def test_undeclared_capabilities_fail() -> None:
    class Odd(Recorder):
        capabilities = Capabilities(
            touchpoints=frozenset({"fax"}), max_attachments=12, customer_cap=CustomerCap(0, "day")
        )

    channel = recorder(Odd)
    with pytest.raises(AssertionError, match="unknown touchpoints"):
        SUITE.test_touchpoints_are_known_ones(channel)
    with pytest.raises(AssertionError, match="max_attachments=12"):
        SUITE.test_max_attachments_is_between_0_and_9(channel)
    with pytest.raises(AssertionError, match=r"customer_cap\.count"):
        SUITE.test_customer_cap_is_well_formed(channel)

    class Unpollable(Recorder):
        capabilities = Capabilities(needs_staff_confirmation=True)

    with pytest.raises(AssertionError, match="implement poll"):
        SUITE.test_confirmation_channels_can_be_polled(recorder(Unpollable))


def test_a_spec_declaring_other_capabilities_than_its_channel_fails() -> None:
    """The engine plans with ``ChannelSpec.capabilities``: a factory function's
    spec that declares less than the channel it builds is caught."""
    spec = ChannelSpec("recorder", factory=lambda config, secrets: Recorder(config, secrets))
    assert spec.capabilities == Capabilities()  # a function declares nothing: the defaults
    with pytest.raises(AssertionError, match="the engine plans with the spec's"):
        SUITE.test_spec_declares_the_channels_capabilities(recorder(), spec)
    SUITE.test_spec_declares_the_channels_capabilities(recorder(), ChannelSpec("recorder", factory=Recorder))


def test_a_revealed_secret_in_an_attribute_fails() -> None:
    class Leaky(Recorder):
        def __init__(self, config: Mapping[str, Any], secrets: Mapping[str, Any]) -> None:
            super().__init__(config, secrets)
            self.session = {"headers": {"X-Api-Key": secrets["api_key"].reveal()}}

    with pytest.raises(AssertionError, match=r"channel\.session.*'api_key'") as info:
        SUITE.test_reachable_objects_hide_secrets(recorder(Leaky), SECRET)
    assert SECRET["api_key"] not in str(info.value)  # the report names the secret, never shows it


def test_a_repeated_key_delivered_twice_fails() -> None:
    class Forgetful(Recorder):
        def send(self, message: OutboundMessage) -> SendReceipt:
            self.sent.append(message)
            return SendReceipt("sent")

    channel = recorder(Forgetful)
    with pytest.raises(AssertionError, match="delivered twice"):
        SUITE.test_same_idempotency_key_delivers_once(channel, MESSAGE, lambda: len(channel.sent))


def test_a_send_that_ignores_its_capabilities_fails() -> None:
    class Careless(Recorder):
        def send(self, message: OutboundMessage) -> SendReceipt:
            self.sent.append(message)
            return SendReceipt("sent")

    channel = recorder(Careless)
    with pytest.raises(pytest.fail.Exception, match="DID NOT RAISE"):
        SUITE.test_send_refuses_an_undeclared_touchpoint(channel, MESSAGE, lambda: len(channel.sent), SECRET)


def test_config_errors_must_name_fields_and_hide_secrets() -> None:
    class Strict(Recorder):
        def __init__(self, config: Mapping[str, Any], secrets: Mapping[str, Any]) -> None:
            if not config.get("sender"):
                key = secrets["api_key"].reveal()
                raise ConfigError([("config.from", f"missing (key {key[:4]}…)")], subject=f"account {key}")

    spec = ChannelSpec("recorder", factory=Strict)
    invalid = [InvalidConfig(config={}, fields={"config.sender"}, secrets=SECRET)]
    with pytest.raises(AssertionError, match=r"not \['config\.sender'\]"):
        SUITE.test_config_error_names_each_field(spec, invalid)
    # ConfigError redacts values registered through Secret; a plain exception would not.
    SUITE.test_config_error_hides_secrets(spec, invalid, SECRET)

    class Plain(Recorder):
        def __init__(self, config: Mapping[str, Any], secrets: Mapping[str, Any]) -> None:
            raise ValueError(f"bad key {secrets['api_key'].reveal()}")

    with pytest.raises(ValueError):
        SUITE.test_invalid_config_raises_config_error(ChannelSpec("recorder", factory=Plain), invalid)


def test_transport_failures_must_map_onto_the_error_tree() -> None:
    class Naive(Recorder):
        capabilities = Capabilities(idempotent_send=False)
        failure: Exception | None = None

        def send(self, message: OutboundMessage) -> SendReceipt:
            if self.failure is not None:
                raise self.failure
            return super().send(message)

    channel = recorder(Naive)

    def provoke(error: Exception) -> Any:
        return lambda kind: setattr(channel, "failure", error)

    with pytest.raises(AssertionError, match="raise AmbiguousSendError"):
        SUITE.test_timeout_after_send_is_ambiguous(channel, MESSAGE, provoke(RetriableError("t")), SECRET)
    with pytest.raises(AssertionError, match="set retry_after"):
        SUITE.test_rate_limit_is_retriable_with_retry_after(
            channel, MESSAGE, provoke(RetriableError("429")), SECRET
        )
    with pytest.raises(AssertionError, match="retrying will not help"):
        SUITE.test_rejected_credentials_are_fatal(channel, MESSAGE, provoke(RetriableError("401")), SECRET)
    leak = AmbiguousSendError("timeout")
    leak.__cause__ = TimeoutError(f"POST https://sms.example/send?key={SECRET['api_key']}")
    with pytest.raises(AssertionError, match="shows the value of secret"):
        SUITE.test_timeout_after_send_is_ambiguous(channel, MESSAGE, provoke(leak), SECRET)
    channel.failure = None
    with pytest.raises(pytest.fail.Exception, match=r"send\(\) succeeded"):
        SUITE.test_unreachable_provider_is_retriable(channel, MESSAGE, lambda kind: None, SECRET)


def test_inbound_checks_fail_on_a_verifier_that_ignores_the_body() -> None:
    request = InboundRequest("POST", "/hook", {"sig": "abc"}, {}, b'{"id": 1}')

    def header_only(req: InboundRequest) -> None:
        if req.query.get("sig") != "abc":
            raise SignatureError("bad signature")

    check = InboundCheck(verify=header_only, valid=request, tampered=[attrs.evolve(request, query={})])
    SUITE.test_inbound_valid_request_passes(check)
    with pytest.raises(pytest.fail.Exception, match="DID NOT RAISE"):
        SUITE.test_inbound_tampered_requests_fail(check, SECRET)
