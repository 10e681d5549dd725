"""The channel conformance suite: the standard tests every channel passes.

A channel author subclasses ``ChannelConformance`` in a test module and
overrides the fixtures that describe the channel; pytest then runs every check
below against it, one named test per check::

    from sopflow_sdk.testing.conformance import ChannelConformance, registered_channels

    class TestSmsChannel(ChannelConformance):
        @pytest.fixture
        def channel_spec(self):
            return registered_channels(sopflow_sms.plugin)["sms"]

        @pytest.fixture
        def channel_config(self, fake_gateway):
            return {"base_url": fake_gateway.url}

        @pytest.fixture
        def channel_secrets(self):
            return {"api_key": "sk-test-0123456789"}

        @pytest.fixture
        def deliveries(self, fake_gateway):
            return lambda: fake_gateway.messages

Required: ``channel_spec`` and ``deliveries``.  Optional, each enabling more
checks (a check whose fixture is left at its default is skipped, with the
reason in pytest's ``-ra`` summary): ``channel_config``, ``channel_secrets``,
``channel`` (build it yourself, e.g. with a test clock), ``recipient``,
``outbound_params``, ``outbound_message``,
``unaddressable_message``, ``invalid_configs``, ``provoke_failure`` and
``inbound``.  sopflow's own channels run it too: the core ``log`` channel
(``tests/test_channel_conformance.py``) and WeCom
(``plugins/wecom/tests/test_wecom_conformance.py``).
"""

from __future__ import annotations

import itertools
import re
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence, Sized
from typing import Any, get_args

import attrs
import pytest

from sopflow_sdk.channel import (
    MAX_ATTACHMENTS,
    TOUCHPOINTS,
    Attachment,
    Capabilities,
    Channel,
    CustomerCap,
    OutboundMessage,
    SendReceipt,
)
from sopflow_sdk.errors import (
    AmbiguousSendError,
    ConfigError,
    FatalError,
    RetriableError,
    SignatureError,
    SkippableError,
    UnsupportedCapabilityError,
)
from sopflow_sdk.secrets import Secret
from sopflow_sdk.specs import ChannelSpec, InboundRequest

#: Every touchpoint the engine knows; a channel declares a non-empty subset.
KNOWN_TOUCHPOINTS: frozenset[str] = frozenset(TOUCHPOINTS)
CAP_PERIODS: tuple[str, ...] = get_args(typing.get_type_hints(CustomerCap)["period"])
NAME = re.compile(r"[a-z][a-z0-9_]*")
#: Setting names that hold credentials (as Datasette redacts them in its config).
SECRET_NAME = re.compile(r"secret|password|token|api_key|private_key|aes_key|dsn")
#: A touchpoint no channel supports: ``check`` and ``send`` must refuse it.
UNKNOWN_TOUCHPOINT = "conformance_unknown_touchpoint"

#: What ``provoke_failure`` is asked to arrange for the next send.
FAILURES: Mapping[str, str] = {
    "timeout_after_send": "the request reached the provider, the answer never came back (read timeout)",
    "unreachable": "the provider cannot be reached at all (connection refused) before anything is sent",
    "rate_limited": "the provider answers 'too many requests' (HTTP 429 or its own rate-limit code)",
    "credentials_rejected": "the provider refuses the account's credentials (revoked or rotated key)",
}
# How deep ``reachable`` looks for secrets: channel → client → its HTTP session → its parts.
_DEPTH = 3
_ITEMS = 100


@attrs.frozen
class InvalidConfig:
    """A configuration the factory must refuse with one ``ConfigError`` naming every
    field in ``fields`` (as ``ConfigError.problems`` field names, e.g. ``config.corp_id``)."""

    config: Mapping[str, Any]
    fields: frozenset[str] = attrs.field(converter=frozenset)
    secrets: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class InboundCheck:
    """The channel's inbound verification: ``verify(request)`` returns for an
    authentic request and raises ``SignatureError`` otherwise.  The suite adds a
    copy of ``valid`` with a byte of the body changed to ``tampered``."""

    verify: Callable[[InboundRequest], Any]
    valid: InboundRequest
    tampered: Sequence[InboundRequest] = ()


def registered_channels(plugin: Any) -> dict[str, ChannelSpec]:
    """The ``ChannelSpec`` records ``plugin.register_channels`` registers, by name."""
    specs: list[ChannelSpec] = []
    plugin.register_channels(register=specs.append)
    return {spec.name: spec for spec in specs}


def as_secrets(values: Mapping[str, Any]) -> dict[str, Any]:
    """Wrap plain strings in ``Secret``, as core does when it opens an account's credentials."""
    return {k: Secret(v) if isinstance(v, str) else v for k, v in values.items()}


def secret_values(*mappings: Mapping[str, Any]) -> dict[str, str]:
    """Secret name → revealed value, for values long enough to be told apart from words."""
    found: dict[str, str] = {}
    for mapping in mappings:
        for key, value in mapping.items():
            text = value.reveal() if isinstance(value, Secret) else value
            if isinstance(text, str) and len(text) >= 6:
                found.setdefault(key, text)
    return found


def leaked(text: str, secrets: Mapping[str, str]) -> list[str]:
    """Names of the secrets whose value occurs in ``text`` (names, so a report never shows a value)."""
    return sorted(name for name, value in secrets.items() if value in text)


def error_texts(error: BaseException) -> Iterator[str]:
    """Every text an error shows in a log line or an API answer, down its visible chain."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield str(current)
        yield repr(current)
        for attr in ("user_message", "internal_message"):
            value = getattr(current, attr, None)
            if isinstance(value, str):
                yield value
        if current.__cause__ is not None:
            current = current.__cause__
        elif not current.__suppress_context__:
            current = current.__context__
        else:
            current = None


def _children(obj: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(obj, Mapping):
        for key, value in itertools.islice(obj.items(), _ITEMS):
            yield f"[{key!r}]", value
    elif isinstance(obj, list | tuple | set | frozenset):
        yield from ((f"[{i}]", v) for i, v in enumerate(itertools.islice(obj, _ITEMS)))
    elif not isinstance(obj, type | types.ModuleType | types.FunctionType | types.MethodType):
        names = list(getattr(obj, "__dict__", {}))
        names += [n for c in type(obj).__mro__ for n in getattr(c, "__slots__", ()) if isinstance(n, str)]
        for name in names:
            try:
                yield f".{name}", getattr(obj, name)
            except AttributeError:
                continue


def reachable(root: Any, depth: int = _DEPTH) -> Iterator[tuple[str, Any]]:
    """``(path, object)`` for ``root`` and what its attributes hold, ``depth`` levels down.
    A ``Secret`` is not opened: its ``repr`` is already masked."""
    seen = {id(root)}
    todo: list[tuple[str, Any, int]] = [("channel", root, 0)]
    while todo:
        path, obj, level = todo.pop()
        yield path, obj
        if level >= depth or isinstance(obj, Secret | str | bytes | int | float | bool | type(None)):
            continue
        for name, child in _children(obj):
            if id(child) not in seen:
                seen.add(id(child))
                todo.append((path + name, child, level + 1))


def _count(seen: Any) -> int:
    return seen if isinstance(seen, int) else len(typing.cast(Sized, seen))


def conformance_message(channel: Channel, **changes: Any) -> OutboundMessage:
    """The suite's default message for ``channel`` (on ``private_chat`` if declared),
    with ``changes`` applied: call it from your own ``outbound_message`` fixture
    rather than the suite's fixture, so pytest sees no recursion."""
    touchpoints = channel.capabilities.touchpoints
    touchpoint = "private_chat" if "private_chat" in touchpoints else min(touchpoints)
    message = OutboundMessage(
        touchpoint=touchpoint,
        text="conformance check",
        idempotency_key="conformance:send",
        recipient={"external_id": "conformance-recipient"},
    )
    return attrs.evolve(message, **changes)


def _attachments(count: int) -> tuple[Attachment, ...]:
    return tuple(
        Attachment(kind="image", url=f"https://example.com/conformance-{i}.png", media_id=f"conformance-{i}")
        for i in range(count)
    )


def _tamper_body(request: InboundRequest) -> InboundRequest | None:
    body = request.body
    if not body:
        return None
    middle = len(body) // 2
    return attrs.evolve(request, body=body[:middle] + bytes([body[middle] ^ 0x01]) + body[middle + 1 :])


class ChannelConformance:
    """Subclass as ``Test<YourChannel>`` and override the fixtures below.

    Fixtures you must provide:

    - ``channel_spec`` — the ``ChannelSpec`` your plugin registers
      (``registered_channels(plugin)[name]``).
    - ``deliveries`` — a zero-argument callable returning what your fake provider
      has received so far (a sequence, or a count); the suite compares before/after.

    Fixtures you may provide:

    - ``channel_config``, ``channel_secrets`` — a working account against your fake
      (plain strings in ``channel_secrets`` are wrapped in ``Secret``, as core does;
      their values are what the redaction checks look for).
    - ``channel`` — the channel under test; by default ``channel_spec.factory``
      applied to the two above.  Override to pass test-only options.
    - ``recipient`` — who the default message goes to (default
      ``{"external_id": "conformance-recipient"}``; an e-mail channel gives an
      address), and ``outbound_params`` — its ``params`` (default: the defaults of
      ``channel_spec.step_params``).
    - ``outbound_message`` — a message your fake accepts, on a declared touchpoint;
      to change more than the two above, build it with
      ``conformance_message(channel, **changes)`` (no fixture recursion).
    - ``unaddressable_message`` — a message the channel cannot address (by default
      ``outbound_message`` without recipient or staff); ``None`` if the channel
      addresses nobody (a log).
    - ``invalid_configs`` — ``InvalidConfig`` records the factory must refuse.
    - ``provoke_failure`` — ``provoke(kind)`` arranges for the next send to fail
      as ``FAILURES[kind]`` describes; return ``False`` for a kind your channel
      cannot meet (no transport, no rate limit).
    - ``inbound`` — an ``InboundCheck`` if the channel verifies inbound requests.
    """

    # -- what the channel author provides ----------------------------------------------------

    @pytest.fixture
    def channel_spec(self) -> ChannelSpec:
        pytest.fail(
            f"{type(self).__name__}: override the `channel_spec` fixture to return your "
            "ChannelSpec, e.g. registered_channels(my_plugin)['sms']",
            pytrace=False,
        )

    @pytest.fixture
    def channel_config(self) -> Mapping[str, Any]:
        return {}

    @pytest.fixture
    def channel_secrets(self) -> Mapping[str, Any]:
        return {}

    @pytest.fixture
    def channel(
        self, channel_spec: ChannelSpec, channel_config: Mapping[str, Any], channel_secrets: Mapping[str, Any]
    ) -> Channel:
        config = dict(channel_config)
        if channel_spec.settings is not None:  # as core stores it: with the declared defaults
            checked, problems = channel_spec.settings.check(config, channel_secrets)
            config = checked if not problems else config
        return channel_spec.factory(config, as_secrets(channel_secrets))

    @pytest.fixture
    def deliveries(self) -> Callable[[], Any]:
        pytest.fail(
            f"{type(self).__name__}: override the `deliveries` fixture to return a callable "
            "that lists (or counts) what your fake provider received",
            pytrace=False,
        )

    @pytest.fixture
    def recipient(self) -> Mapping[str, Any]:
        """Who the default ``outbound_message`` goes to; override with an address your
        fake accepts (``{"external_id": "someone@example.com"}``)."""
        return {"external_id": "conformance-recipient"}

    @pytest.fixture
    def outbound_params(self, channel_spec: ChannelSpec) -> Mapping[str, Any]:
        """The default message's ``params``: the defaults of the channel's ``step_params``."""
        return {s.name: s.default for s in channel_spec.step_params if s.default is not None}

    @pytest.fixture
    def outbound_message(
        self, channel: Channel, recipient: Mapping[str, Any], outbound_params: Mapping[str, Any]
    ) -> OutboundMessage:
        return conformance_message(channel, recipient=recipient, params=outbound_params)

    @pytest.fixture
    def unaddressable_message(self, outbound_message: OutboundMessage) -> OutboundMessage | None:
        return attrs.evolve(
            outbound_message, idempotency_key="conformance:nobody", recipient={}, staff_external_id=None
        )

    @pytest.fixture
    def invalid_configs(self) -> Sequence[InvalidConfig]:
        return ()

    @pytest.fixture
    def provoke_failure(self) -> Callable[[str], bool | None] | None:
        return None

    @pytest.fixture
    def inbound(self) -> InboundCheck | None:
        return None

    # -- shared by the checks ------------------------------------------------------------------

    @pytest.fixture
    def known_secrets(
        self, channel_secrets: Mapping[str, Any], invalid_configs: Sequence[InvalidConfig]
    ) -> dict[str, str]:
        return secret_values(channel_secrets, *(c.secrets for c in invalid_configs))

    @pytest.fixture
    def delivered(self, deliveries: Callable[[], Any]) -> Callable[[], int]:
        return lambda: _count(deliveries())

    @staticmethod
    def assert_hides_secrets(error: BaseException, secrets: Mapping[str, str]) -> None:
        for text in error_texts(error):
            names = leaked(text, secrets)
            assert not names, f"{type(error).__name__} shows the value of secret(s) {names}"

    def _invalid(self, invalid_configs: Sequence[InvalidConfig]) -> Sequence[InvalidConfig]:
        if not invalid_configs:
            pytest.skip(
                "no `invalid_configs` given: the factory is not asked to refuse a config "
                "(declared settings are checked by core before it)"
            )
        return invalid_configs

    def _refusal(self, spec: ChannelSpec, invalid: InvalidConfig) -> ConfigError:
        """The refusal of an invalid config where core makes it: at save, by the
        declared settings when the spec has them, else by the factory."""
        if spec.settings is not None:
            _, problems = spec.settings.check(dict(invalid.config), invalid.secrets)
            if problems:
                return ConfigError(problems, subject=f"{spec.name} account")
        with pytest.raises(ConfigError) as info:
            spec.factory(dict(invalid.config), as_secrets(invalid.secrets))
        return info.value

    # -- naming ------------------------------------------------------------------------------------

    def test_name_is_a_lowercase_identifier(self, channel: Channel) -> None:
        assert NAME.fullmatch(channel.name), (
            f"channel name {channel.name!r}: use a lowercase identifier such as 'sms' or 'wecom'"
        )

    def test_name_matches_its_channel_spec(self, channel: Channel, channel_spec: ChannelSpec) -> None:
        assert channel_spec.name == channel.name == type(channel).name, (
            f"ChannelSpec {channel_spec.name!r} builds a channel named {channel.name!r}; "
            "SOP steps name the spec, the engine reads the channel: make them equal"
        )

    def test_spec_factory_builds_a_channel(
        self, channel_spec: ChannelSpec, channel_config: Mapping[str, Any], channel_secrets: Mapping[str, Any]
    ) -> None:
        built = channel_spec.factory(dict(channel_config), as_secrets(channel_secrets))
        assert isinstance(built, Channel), "ChannelSpec.factory must return a sopflow_sdk.Channel"

    # -- capabilities ------------------------------------------------------------------------------

    def test_capabilities_are_a_capabilities_record(self, channel: Channel) -> None:
        assert isinstance(channel.capabilities, Capabilities)

    def test_spec_declares_the_channels_capabilities(
        self, channel: Channel, channel_spec: ChannelSpec
    ) -> None:
        assert channel_spec.capabilities == channel.capabilities, (
            f"ChannelSpec {channel_spec.name!r} declares {channel_spec.capabilities!r} but the channel it "
            f"builds has {channel.capabilities!r}; the engine plans with the spec's: make them equal"
        )

    def test_touchpoints_are_known_ones(self, channel: Channel) -> None:
        touchpoints = channel.capabilities.touchpoints
        assert touchpoints, "declare at least one touchpoint"
        unknown = sorted(set(touchpoints) - KNOWN_TOUCHPOINTS)
        assert not unknown, f"unknown touchpoints {unknown}; known: {sorted(KNOWN_TOUCHPOINTS)}"

    def test_max_attachments_is_between_0_and_9(self, channel: Channel) -> None:
        limit = channel.capabilities.max_attachments
        assert isinstance(limit, int) and not isinstance(limit, bool), "max_attachments is an int"
        assert 0 <= limit <= MAX_ATTACHMENTS, f"max_attachments={limit}: declare 0..{MAX_ATTACHMENTS}"

    def test_customer_cap_is_well_formed(self, channel: Channel) -> None:
        cap = channel.capabilities.customer_cap
        if cap is None:
            return
        assert isinstance(cap, CustomerCap)
        assert isinstance(cap.count, int) and cap.count >= 1, f"customer_cap.count={cap.count!r}: use >= 1"
        assert cap.period in CAP_PERIODS, f"customer_cap.period={cap.period!r}: use one of {CAP_PERIODS}"

    def test_rate_per_minute_is_positive_or_unset(self, channel: Channel) -> None:
        rate = channel.capabilities.rate_per_minute
        assert rate is None or (isinstance(rate, int) and rate >= 1), f"rate_per_minute={rate!r}"

    def test_flags_are_booleans(self, channel: Channel) -> None:
        caps = channel.capabilities
        assert isinstance(caps.idempotent_send, bool) and isinstance(caps.needs_staff_confirmation, bool)

    def test_confirmation_channels_can_be_polled(self, channel: Channel) -> None:
        if not channel.capabilities.needs_staff_confirmation:
            pytest.skip("needs_staff_confirmation=False: nothing to poll")
        assert type(channel).poll is not Channel.poll, (
            "needs_staff_confirmation=True: implement poll(provider_ref) for the pending sends"
        )

    # -- configuration -------------------------------------------------------------------------------

    def _settings(self, spec: ChannelSpec) -> Any:
        if spec.settings is None:
            pytest.skip("the ChannelSpec declares no settings: core passes any config to the factory")
        return spec.settings

    def test_declared_settings_accept_the_working_account(
        self, channel_spec: ChannelSpec, channel_config: Mapping[str, Any], channel_secrets: Mapping[str, Any]
    ) -> None:
        _, problems = self._settings(channel_spec).check(channel_config, channel_secrets)
        assert not problems, (
            f"core would refuse the working account (channel_config, channel_secrets): {problems}; "
            "make ChannelSpec.settings declare what the channel takes"
        )

    def test_secret_looking_settings_are_declared_secret(self, channel_spec: ChannelSpec) -> None:
        plain = [s.name for s in self._settings(channel_spec) if not s.secret and SECRET_NAME.search(s.name)]
        assert not plain, (
            f"settings {plain} look like secrets but are stored and shown in plain text: "
            "declare them Setting(..., secret=True)"
        )

    def test_invalid_config_raises_config_error(
        self, channel_spec: ChannelSpec, invalid_configs: Sequence[InvalidConfig]
    ) -> None:
        for invalid in self._invalid(invalid_configs):
            self._refusal(channel_spec, invalid)

    def test_config_error_names_each_field(
        self, channel_spec: ChannelSpec, invalid_configs: Sequence[InvalidConfig]
    ) -> None:
        for invalid in self._invalid(invalid_configs):
            error = self._refusal(channel_spec, invalid)
            named = {field for field, _ in error.problems}
            assert invalid.fields <= named, f"ConfigError names {sorted(named)}, not {sorted(invalid.fields)}"
            assert all(field in str(error) for field in invalid.fields), str(error)

    def test_invalid_config_sends_nothing(
        self,
        channel_spec: ChannelSpec,
        invalid_configs: Sequence[InvalidConfig],
        delivered: Callable[[], int],
    ) -> None:
        before = delivered()
        for invalid in self._invalid(invalid_configs):
            self._refusal(channel_spec, invalid)
        assert delivered() == before

    def test_config_error_hides_secrets(
        self,
        channel_spec: ChannelSpec,
        invalid_configs: Sequence[InvalidConfig],
        known_secrets: Mapping[str, str],
    ) -> None:
        for invalid in self._invalid(invalid_configs):
            self.assert_hides_secrets(self._refusal(channel_spec, invalid), known_secrets)

    # -- secret redaction ---------------------------------------------------------------------------

    def test_repr_and_str_hide_secrets(self, channel: Channel, known_secrets: Mapping[str, str]) -> None:
        if not known_secrets:
            pytest.skip("no `channel_secrets` of 6+ characters to look for")
        for text in (repr(channel), str(channel), f"{channel}"):
            names = leaked(text, known_secrets)
            assert not names, f"the channel's repr/str shows secret(s) {names}"

    def test_reachable_objects_hide_secrets(self, channel: Channel, known_secrets: Mapping[str, str]) -> None:
        if not known_secrets:
            pytest.skip("no `channel_secrets` of 6+ characters to look for")
        for path, obj in reachable(channel):
            try:
                texts = (repr(obj), str(obj))
            except Exception:  # a broken __repr__ is not this check's business
                continue
            for text in texts:
                names = leaked(text, known_secrets)
                assert not names, f"{path} shows secret(s) {names}: keep them in sopflow_sdk.Secret"

    # -- sending ----------------------------------------------------------------------------------------

    def test_check_accepts_the_message(
        self, channel: Channel, outbound_message: OutboundMessage, delivered: Callable[[], int]
    ) -> None:
        before = delivered()
        assert channel.check(outbound_message) is None
        assert delivered() == before, "check() must not send"

    def test_send_delivers_once_and_returns_a_receipt(
        self, channel: Channel, outbound_message: OutboundMessage, delivered: Callable[[], int]
    ) -> None:
        before = delivered()
        receipt = channel.send(outbound_message)
        assert isinstance(receipt, SendReceipt)
        assert receipt.status in ("sent", "pending"), f"receipt status {receipt.status!r}"
        if receipt.status == "pending":
            assert receipt.provider_ref, "a pending receipt needs the provider_ref the engine polls"
            assert type(channel).poll is not Channel.poll, "a channel answering pending implements poll()"
        assert delivered() - before == 1

    def test_same_idempotency_key_delivers_once(
        self, channel: Channel, outbound_message: OutboundMessage, delivered: Callable[[], int]
    ) -> None:
        if not channel.capabilities.idempotent_send:
            pytest.skip("idempotent_send=False: the engine never retries a send blindly")
        before = delivered()
        first = channel.send(outbound_message)
        second = channel.send(outbound_message)
        assert delivered() - before == 1, "idempotent_send=True, but a repeated key delivered twice"
        assert (second.status, second.provider_ref) == (first.status, first.provider_ref)

    def test_unaddressable_message_is_skipped(
        self,
        channel: Channel,
        unaddressable_message: OutboundMessage | None,
        delivered: Callable[[], int],
        known_secrets: Mapping[str, str],
    ) -> None:
        if unaddressable_message is None:
            pytest.skip("the channel addresses nobody (`unaddressable_message` is None)")
        before = delivered()
        with pytest.raises(SkippableError) as info:
            channel.send(unaddressable_message)
        assert delivered() == before
        self.assert_hides_secrets(info.value, known_secrets)

    # -- capabilities enforced -----------------------------------------------------------------------

    def _undeclared(self, channel: Channel) -> list[str]:
        return [*sorted(KNOWN_TOUCHPOINTS - set(channel.capabilities.touchpoints)), UNKNOWN_TOUCHPOINT]

    def test_check_refuses_an_undeclared_touchpoint(
        self, channel: Channel, outbound_message: OutboundMessage
    ) -> None:
        for touchpoint in self._undeclared(channel):
            with pytest.raises(UnsupportedCapabilityError) as info:
                channel.check(attrs.evolve(outbound_message, touchpoint=touchpoint))
            assert touchpoint in str(info.value), f"the error should name {touchpoint!r}: {info.value}"

    def test_send_refuses_an_undeclared_touchpoint(
        self,
        channel: Channel,
        outbound_message: OutboundMessage,
        delivered: Callable[[], int],
        known_secrets: Mapping[str, str],
    ) -> None:
        before = delivered()
        for touchpoint in self._undeclared(channel):
            with pytest.raises(UnsupportedCapabilityError) as info:
                channel.send(attrs.evolve(outbound_message, touchpoint=touchpoint))
            error = info.value
            assert isinstance(error, FatalError), "the engine fails a touch on UnsupportedCapabilityError"
            assert touchpoint in str(error), f"the error should name {touchpoint!r}: {error}"
            self.assert_hides_secrets(error, known_secrets)
        assert delivered() == before

    def test_attachments_beyond_the_limit_are_refused(
        self, channel: Channel, outbound_message: OutboundMessage, delivered: Callable[[], int]
    ) -> None:
        over = attrs.evolve(
            outbound_message, attachments=_attachments(channel.capabilities.max_attachments + 1)
        )
        before = delivered()
        with pytest.raises(UnsupportedCapabilityError):
            channel.check(over)
        with pytest.raises(UnsupportedCapabilityError):
            channel.send(over)
        assert delivered() == before

    def test_attachments_up_to_the_limit_are_sent(
        self, channel: Channel, outbound_message: OutboundMessage, delivered: Callable[[], int]
    ) -> None:
        limit = channel.capabilities.max_attachments
        if limit == 0:
            pytest.skip("max_attachments=0")
        full = attrs.evolve(
            outbound_message, idempotency_key="conformance:attachments", attachments=_attachments(limit)
        )
        before = delivered()
        channel.check(full)
        channel.send(full)
        assert delivered() - before == 1

    # -- transport failures map onto the error tree ----------------------------------------------------

    def _fail(
        self,
        kind: str,
        channel: Channel,
        outbound_message: OutboundMessage,
        provoke_failure: Callable[[str], bool | None] | None,
        known_secrets: Mapping[str, str],
    ) -> BaseException:
        if provoke_failure is None:
            pytest.skip("no `provoke_failure` fixture: the channel has no transport to fail")
        if provoke_failure(kind) is False:
            pytest.skip(f"the channel cannot fail with {kind!r}")
        try:
            channel.send(attrs.evolve(outbound_message, idempotency_key=f"conformance:{kind}"))
        except Exception as exc:  # which class it is, is the check itself
            self.assert_hides_secrets(exc, known_secrets)
            return exc
        pytest.fail(f"provoke_failure({kind!r}) arranged a failure, but send() succeeded")

    def test_timeout_after_send_is_ambiguous(
        self,
        channel: Channel,
        outbound_message: OutboundMessage,
        provoke_failure: Callable[[str], bool | None] | None,
        known_secrets: Mapping[str, str],
    ) -> None:
        error = self._fail("timeout_after_send", channel, outbound_message, provoke_failure, known_secrets)
        allowed: tuple[type[BaseException], ...] = (AmbiguousSendError,)
        if channel.capabilities.idempotent_send:
            allowed += (RetriableError,)  # a retry cannot deliver twice
        assert isinstance(error, allowed), (
            f"a timeout after sending raised {type(error).__name__}: raise AmbiguousSendError, "
            "so the engine never retries a send that may have been delivered"
        )

    def test_unreachable_provider_is_retriable(
        self,
        channel: Channel,
        outbound_message: OutboundMessage,
        provoke_failure: Callable[[str], bool | None] | None,
        known_secrets: Mapping[str, str],
    ) -> None:
        error = self._fail("unreachable", channel, outbound_message, provoke_failure, known_secrets)
        assert isinstance(error, RetriableError), (
            f"a connection that never opened raised {type(error).__name__}: nothing was sent, "
            "raise RetriableError"
        )

    def test_rate_limit_is_retriable_with_retry_after(
        self,
        channel: Channel,
        outbound_message: OutboundMessage,
        provoke_failure: Callable[[str], bool | None] | None,
        known_secrets: Mapping[str, str],
    ) -> None:
        error = self._fail("rate_limited", channel, outbound_message, provoke_failure, known_secrets)
        assert isinstance(error, RetriableError), f"a rate limit raised {type(error).__name__}"
        assert error.retry_after is not None and error.retry_after > 0, (
            "set retry_after (seconds) from the provider's answer or its documented window"
        )

    def test_rejected_credentials_are_fatal(
        self,
        channel: Channel,
        outbound_message: OutboundMessage,
        provoke_failure: Callable[[str], bool | None] | None,
        known_secrets: Mapping[str, str],
    ) -> None:
        error = self._fail("credentials_rejected", channel, outbound_message, provoke_failure, known_secrets)
        assert isinstance(error, FatalError | ConfigError), (
            f"rejected credentials raised {type(error).__name__}: retrying will not help, "
            "raise FatalError (or ConfigError) saying which setting to fix"
        )

    # -- inbound verification ------------------------------------------------------------------------

    def _inbound(self, inbound: InboundCheck | None) -> InboundCheck:
        if inbound is None:
            pytest.skip("no `inbound` fixture: the channel verifies no inbound requests")
        return inbound

    def test_inbound_valid_request_passes(self, inbound: InboundCheck | None) -> None:
        check = self._inbound(inbound)
        check.verify(check.valid)

    def test_inbound_tampered_requests_fail(
        self, inbound: InboundCheck | None, known_secrets: Mapping[str, str]
    ) -> None:
        check = self._inbound(inbound)
        forged = [*check.tampered, _tamper_body(check.valid)]
        requests = [r for r in forged if r is not None]
        assert requests, "give `tampered` requests (the valid one has no body to alter)"
        for request in requests:
            with pytest.raises(SignatureError) as info:
                check.verify(request)
            self.assert_hides_secrets(info.value, known_secrets)
