"""WeComChannel through the SDK's channel conformance suite, against the fake WeCom.

The fake answers like WeCom (tokens, errcodes, rate limits); the two failures it
cannot stage, a connection refused and an answer lost after WeCom took the
request, come from ``FaultyTransport`` between the client and the fake.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs
import httpx
import pytest
from sopflow_sdk import InboundRequest, OutboundMessage, SignatureError
from sopflow_sdk.testing.conformance import (
    ChannelConformance,
    InboundCheck,
    InvalidConfig,
    as_secrets,
    registered_channels,
)
from sopflow_wecom import plugin
from sopflow_wecom.channel import WeComChannel
from sopflow_wecom.client import SEND_PATHS
from sopflow_wecom.crypto import WeComCrypto, build_envelope, to_xml
from sopflow_wecom.fake import FakeClock, FakeWeCom
from wecom_support import CALLBACK_AES_KEY, CALLBACK_TOKEN, StubAccount, StubHost

STAFF = "zhangsan"
CUSTOMER = "wmConformance0001"
MASS_SEND = "externalcontact/add_msg_template"


class FaultyTransport(httpx.HTTPTransport):
    """Real HTTP, except for one armed fault: ``before`` refuses the connection,
    ``after`` lets the fake take the request and then loses its answer."""

    def __init__(self) -> None:
        super().__init__()
        self.fault: tuple[str, str] | None = None
        self.down = False
        self._then_down = False

    def arm(self, when: str, path: str = "", *, then_down: bool = False) -> None:
        """``then_down``: after the fault, every request is refused (the network stays down)."""
        self.fault = (when, path)
        self._then_down = then_down

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("[Errno 101] Network is unreachable", request=request)
        if self.fault is None or not request.url.path.endswith(self.fault[1]):
            return super().handle_request(request)
        when, self.fault = self.fault[0], None
        self.down = self._then_down
        if when == "before":
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        response = super().handle_request(request)
        response.read()
        response.close()
        raise httpx.ReadTimeout("The read operation timed out", request=request)


def signed_callback(crypto: WeComCrypto, corp_id: str, fields: Mapping[str, Any]) -> InboundRequest:
    encrypted, signature, ts, nonce = crypto.encrypt(to_xml(dict(fields)), timestamp=1_700_000_000)
    return InboundRequest(
        method="POST",
        path="/plugins/wecom/callback/7",
        query={"msg_signature": signature, "timestamp": ts, "nonce": nonce},
        headers={"content-type": "text/xml"},
        body=build_envelope(corp_id, encrypted, "1000002").encode("utf-8"),
        path_params={"account_id": "7"},
    )


class TestWeComChannel(ChannelConformance):
    @pytest.fixture
    def transport(self) -> FaultyTransport:
        return FaultyTransport()

    @pytest.fixture
    def channel_spec(self) -> Any:
        return registered_channels(plugin)["wecom"]

    @pytest.fixture
    def channel_config(self, fake: FakeWeCom) -> Mapping[str, Any]:
        return {"corp_id": fake.corp_id, "agent_id": fake.agent_id, "base_url": fake.base_url}

    @pytest.fixture
    def channel_secrets(self, fake: FakeWeCom) -> Mapping[str, Any]:
        # What core passes: every secret of the account, not only the one the channel reads.
        return {"secret": fake.secret, "callback_token": CALLBACK_TOKEN, "encoding_aes_key": CALLBACK_AES_KEY}

    @pytest.fixture
    def channel(
        self,
        channel_spec: Any,
        channel_config: Mapping[str, Any],
        channel_secrets: Mapping[str, Any],
        transport: FaultyTransport,
        clock: FakeClock,
    ) -> Iterator[WeComChannel]:
        secrets = as_secrets(channel_secrets)
        with httpx.Client(transport=transport, timeout=5.0) as http:
            yield channel_spec.factory(dict(channel_config), secrets, http=http, clock=clock)

    @pytest.fixture
    def deliveries(self, fake: FakeWeCom) -> Callable[[], list[Any]]:
        return lambda: [r for r in fake.requests if r.path in SEND_PATHS and r.errcode == 0]

    @pytest.fixture
    def outbound_message(self, fake: FakeWeCom) -> OutboundMessage:
        fake.add_customer(STAFF, CUSTOMER, welcome=False)
        return OutboundMessage(
            touchpoint="private_chat",
            text="您好，这是您的护理指南",
            idempotency_key="conformance:send",
            recipient={"external_id": CUSTOMER, "staff_external_id": STAFF},
            staff_external_id=STAFF,
        )

    @pytest.fixture
    def invalid_configs(self, fake: FakeWeCom) -> list[InvalidConfig]:
        return [
            InvalidConfig(config={}, fields={"config.corp_id", "secrets.secret"}),
            InvalidConfig(
                config={"agent_id": fake.agent_id, "base_url": fake.base_url},
                fields={"config.corp_id"},
                secrets={"secret": fake.secret, "callback_token": CALLBACK_TOKEN},
            ),
            # a malformed token or key is refused when the account is saved, not at the first callback
            InvalidConfig(
                config={"corp_id": fake.corp_id, "callback_max_age_seconds": 5},
                fields={
                    "secrets.callback_token",
                    "secrets.encoding_aes_key",
                    "config.callback_max_age_seconds",
                },
                secrets={"secret": fake.secret, "callback_token": "has spaces", "encoding_aes_key": "short"},
            ),
            InvalidConfig(
                config={"corp_id": "ww corp/1"}, fields={"config.corp_id"}, secrets={"secret": "s"}
            ),
        ]

    @pytest.fixture
    def provoke_failure(self, fake: FakeWeCom, transport: FaultyTransport) -> Callable[[str], bool | None]:
        def provoke(kind: str) -> bool | None:
            if kind == "timeout_after_send":
                # The channel looks a lost mass send up in get_groupmsg_list_v2 and follows
                # the task it finds (test_wecom_channel.py); with the network still down it
                # cannot tell, which is the case this check is about.
                transport.arm("after", MASS_SEND, then_down=True)
            elif kind == "unreachable":
                transport.arm("before")
            elif kind == "rate_limited":
                fake.fail_next(MASS_SEND, 45009, "api freq out of limit")
            elif kind == "credentials_rejected":  # an admin reset the app secret in the console
                fake.add_corp(fake.corp_id, "rotated-app-secret-9876543210")
                fake.invalidate_tokens()
            else:
                return False
            return None

        return provoke

    @pytest.fixture
    def inbound(self, fake: FakeWeCom) -> InboundCheck:
        """The callback route itself: 403 for a forgery becomes ``SignatureError``."""
        host = StubHost(StubAccount(fake.corp_id), clock=fake.clock)
        crypto = WeComCrypto(CALLBACK_TOKEN, CALLBACK_AES_KEY, fake.corp_id)
        fields = {
            "ToUserName": fake.corp_id,
            "FromUserName": "sys",
            "CreateTime": 1_700_000_000,
            "MsgType": "event",
            "Event": "change_external_contact",
            "ChangeType": "add_external_contact",
            "UserID": STAFF,
            "ExternalUserID": CUSTOMER,
        }
        valid = signed_callback(crypto, fake.corp_id, fields)

        def verify(request: InboundRequest) -> None:
            response = plugin.handle_callback(request, host)
            if response.status == 403:
                raise SignatureError(str(response.body))
            assert response.status == 200, response.body

        query = dict(valid.query)
        other_corp = WeComCrypto(CALLBACK_TOKEN, CALLBACK_AES_KEY, "wwsomeoneelse0001")
        tampered = [
            attrs.evolve(valid, query={**query, "timestamp": str(int(query["timestamp"]) + 1)}),
            attrs.evolve(valid, query={**query, "nonce": query["nonce"] + "0"}),
            attrs.evolve(valid, query={**query, "msg_signature": "0" * 40}),
            signed_callback(other_corp, fake.corp_id, fields),  # signed right, encrypted for another corp
        ]
        return InboundCheck(verify=verify, valid=valid, tampered=tampered)
