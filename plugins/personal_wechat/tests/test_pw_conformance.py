"""PersonalWeChatChannel through the SDK's channel conformance suite, once per
adapter: against the fake puppet service over gRPC and the fake WeChatFerry
endpoint over nng (the ``kit`` fixture).

Each failure is staged by the fake itself: a send carried out whose answer never
comes (``stall_next``), the port closed (``stop``), the platform's restriction
and (Wechaty only: WeChatFerry has no credentials) a rotated token.  ``inbound`` is left out on
purpose: the channel receives no inbound HTTP request to verify; events are
pulled from the gateway's gRPC stream under the account's token (intake.py).
One touch is its text plus one message per attachment, so ``deliveries`` counts
the texts the fake received.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
import sqlalchemy as sa
from grpclib.const import Status
from pw_support import Kit
from sopflow_personal_wechat import plugin
from sopflow_personal_wechat.channel import PersonalWeChatChannel
from sopflow_personal_wechat.fake import FakeClock
from sopflow_personal_wechat.fake.scenario import CONTACTS, SELF_ID, TOKEN
from sopflow_personal_wechat.pacing import Pacer
from sopflow_sdk import OutboundMessage
from sopflow_sdk.testing.conformance import (
    ChannelConformance,
    InvalidConfig,
    as_secrets,
    conformance_message,
    registered_channels,
)


class TestPersonalWeChatChannel(ChannelConformance):
    @pytest.fixture(autouse=True)
    def pacing_database(self, shared_pacing_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        """What a deployment has: the database the factory keeps the pacing in."""
        monkeypatch.setenv("SOPFLOW_PERSONAL_WECHAT_PACING_URL", shared_pacing_url)

    @pytest.fixture
    def pacer(self, shared_pacing_url: str, clock: FakeClock) -> Iterator[Pacer]:
        engine = sa.create_engine(shared_pacing_url)
        yield Pacer(engine, clock, random.Random(7))
        engine.dispose()

    @pytest.fixture
    def channel_spec(self) -> Any:
        return registered_channels(plugin)["personal_wechat"]

    @pytest.fixture
    def channel_config(self, kit: Kit) -> Mapping[str, Any]:
        return {"adapter": kit.adapter, "endpoint": kit.fake.endpoint, "tls": False}

    @pytest.fixture
    def channel_secrets(self, kit: Kit) -> Mapping[str, Any]:
        return {"token": TOKEN} if kit.adapter == "wechaty" else {}  # WeChatFerry has no token

    @pytest.fixture
    def channel(
        self,
        channel_spec: Any,
        channel_config: Mapping[str, Any],
        channel_secrets: Mapping[str, Any],
        pacer: Pacer,
    ) -> PersonalWeChatChannel:
        config, problems = channel_spec.settings.check(dict(channel_config), channel_secrets)
        assert not problems
        return channel_spec.factory(config, as_secrets(channel_secrets), pacer=pacer, timeout=1.0)

    @pytest.fixture
    def deliveries(self, kit: Kit) -> Callable[[], list[Any]]:
        return lambda: [d for d in kit.account.sent if d.kind == "text"]

    @pytest.fixture
    def outbound_message(self, channel: PersonalWeChatChannel) -> OutboundMessage:
        return conformance_message(
            channel,
            text="您好，这是您的护理指南",
            recipient={"external_id": CONTACTS[0].wxid, "staff_external_id": SELF_ID},
            staff_external_id=SELF_ID,
        )

    @pytest.fixture
    def invalid_configs(self, kit: Kit) -> list[InvalidConfig]:
        return [
            InvalidConfig(config={}, fields={"config.adapter", "config.endpoint", "secrets.token"}),
            InvalidConfig(
                config={"adapter": "wechaty", "endpoint": "127.0.0.1:99999"},
                fields={"config.endpoint"},
                secrets={"token": TOKEN},
            ),
            InvalidConfig(
                config={"adapter": "wechaty", "endpoint": kit.fake.endpoint},
                fields={"secrets.token"},
                secrets={"token": "spaces are not a token"},
            ),
            InvalidConfig(
                config={"adapter": "itchat", "endpoint": "gateway"},
                fields={"config.adapter", "config.endpoint"},
                secrets={"token": TOKEN},
            ),
        ]

    @pytest.fixture
    def provoke_failure(self, kit: Kit) -> Callable[[str], bool | None]:
        def provoke(kind: str) -> bool | None:
            if kind == "timeout_after_send":
                kit.stall_next_text()
            elif kind == "unreachable":
                kit.fake.stop()
            elif kind == "rate_limited" and kit.adapter == "wechaty":
                kit.fake.fail_next("MessageSendText", Status.RESOURCE_EXHAUSTED, "操作过于频繁，请稍后再试")
            elif kind == "rate_limited":  # the risk control refuses: WeChatFerry answers a bare status
                kit.account.tolerance.per_minute = 0
            elif kind == "credentials_rejected" and kit.adapter == "wechaty":
                kit.state.rotate_token(TOKEN, "rotated-token-0000000001")
            else:
                return False  # WeChatFerry has no credentials to reject
            return None

        return provoke
