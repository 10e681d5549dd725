"""The personal WeChat touchpoints as a sopflow ``Channel``.

A send goes through three gates before any gateway call: the touchpoint has
somewhere to go (a wxid, a room, a gateway that can post moments), the
account's pacing admits it (``pacing.Pacer``, shared by every worker through
the database), and the account is not paused.  A held-back send raises
``DeferredError`` ("not before T, because ..."), so the engine re-schedules
it without counting an attempt.  A personal-account send has no idempotency
key: an answer lost after the request left is ``AmbiguousSendError`` and the
touch goes to review, never resent blindly.  A send to a contact who deleted
the account fails (``NotAFriend``, never retried) and is noted for the intake's
``customer.churned`` (``unfriended``).
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sopflow_sdk import (
    AmbiguousSendError,
    Attachment,
    Capabilities,
    Channel,
    ChannelContext,
    ConfigError,
    CustomerCap,
    DeferredError,
    OutboundMessage,
    Secret,
    SendReceipt,
    SkippableError,
    SopflowError,
)

from sopflow_personal_wechat import metrics, settings, unfriended
from sopflow_personal_wechat.pacing import Admission, Kind, Pacer, Policy
from sopflow_personal_wechat.port import (
    GatewayLoggedOut,
    GatewayPort,
    GatewayRestricted,
    NotAFriend,
    Payload,
)

log = logging.getLogger("sopflow_personal_wechat")

CHANNEL = "personal_wechat"
#: the identity channel of a room (group chat) "customer"
ROOM_CHANNEL = "personal_wechat_room"
TOUCHPOINT_KIND: dict[str, Kind] = {"private_chat": "message", "group_chat": "group", "moments": "moment"}
#: where the pacing lives when no ``pacer`` is given: every worker of a deployment reads it
PACING_URL_ENV = ("SOPFLOW_PERSONAL_WECHAT_PACING_URL", "SOPFLOW_DATABASE_URL")


@functools.lru_cache(maxsize=8)
def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url, pool_pre_ping=True)


def default_pacer(clock: Callable[[], float]) -> Pacer:
    """The pacer on the deployment's database (``SOPFLOW_PERSONAL_WECHAT_PACING_URL``,
    else ``SOPFLOW_DATABASE_URL``: the plugin's migration made its table there)."""
    url = next((os.environ[n] for n in PACING_URL_ENV if os.environ.get(n)), "")
    if not url:
        raise ConfigError(
            [("SOPFLOW_DATABASE_URL", "set it: the pacing is kept in the database")],
            subject="personal WeChat pacing",
        )
    return Pacer(_engine(url), clock)


def make_gateway(config: Mapping[str, Any], token: Secret, timeout: float) -> GatewayPort:
    """The adapter ``config.adapter`` names (imported here: loading the plugin for
    migrations or the CLI needs neither wire stack)."""
    if config["adapter"] == "wcferry":
        from sopflow_personal_wechat.adapters.wcferry import WcferryGateway

        return WcferryGateway(config["endpoint"], timeout=timeout)
    from sopflow_personal_wechat.adapters.wechaty import WechatyGateway

    return WechatyGateway(config["endpoint"], token, tls=config["tls"], timeout=timeout)


def to_payload(attachment: Attachment) -> Payload:
    return Payload(
        attachment.kind if attachment.kind in ("image", "link", "miniprogram") else "file",
        url=attachment.url,
        title=attachment.title,
        description=attachment.description,
        media_id=attachment.media_id,
    )


class PersonalWeChatChannel(Channel):
    """``factory(config, secrets)``; tests pass ``gateway=``, ``pacer=`` and ``clock=``."""

    name = CHANNEL
    capabilities = Capabilities(
        touchpoints=frozenset({"private_chat", "group_chat", "moments"}),
        max_attachments=9,
        needs_staff_confirmation=False,
        idempotent_send=False,
        # a friend who gets more than one push a day reports the account (docs say why)
        customer_cap=CustomerCap(count=1, period="day"),
    )

    def __init__(
        self,
        config: Mapping[str, Any],
        secrets: Mapping[str, Any],
        *,
        gateway: GatewayPort | None = None,
        pacer: Pacer | None = None,
        clock: Callable[[], float] | None = None,
        timeout: float = 10.0,
        context: ChannelContext | None = None,
    ) -> None:
        filled = settings.check(config, secrets)
        self.key = f"{filled['adapter']}:{filled['endpoint']}"
        self.policy = Policy.from_config(filled)
        token = secrets.get("token")
        token = token if isinstance(token, Secret) else Secret(str(token or ""))
        self.gateway: GatewayPort = gateway or make_gateway(filled, token, timeout)
        if pacer is None and context is not None:  # built by core: its clock, its database
            now = context.now
            pacer = Pacer(_engine(context.database_url), clock or (lambda: now().timestamp()))
        self.pacer = pacer or default_pacer(clock or time.time)
        metrics.watch(self.pacer.engine)
        self._holds: dict[Kind, Admission] = {}

    def __repr__(self) -> str:
        return f"<PersonalWeChatChannel {self.key}>"

    def send(self, message: OutboundMessage) -> SendReceipt:
        self.check(message)
        kind = TOUCHPOINT_KIND[message.touchpoint]
        if kind == "moment" and not self.gateway.can_post_moments:
            raise SkippableError(f"the {self.gateway.name} gateway cannot post moments (朋友圈)")
        target = "" if kind == "moment" else conversation(message)
        if kind == "message" and unfriended.known(self.pacer.engine, self.key, target):
            raise NotAFriend(target, "known from an earlier send or WeChat's notice")  # no gateway call
        now = self.pacer.clock()
        held = self._holds.get(kind)
        if held is None or held.not_before <= now:
            held = self.pacer.admit(self.key, kind, self.policy)
        if not held.ok:
            # Remembered in this process: a hold can only grow later (another worker
            # sends, a cap fills), so asking again before it ends would answer the same.
            self._holds[kind] = held
            raise DeferredError(
                f"personal WeChat account held back: {held.reason}",
                retry_after=max(1.0, held.not_before - now),
                reason=held.reason,
            )
        payloads = [Payload("text", text=message.text)] if message.text else []
        payloads += [to_payload(a) for a in message.attachments]
        ids: list[str] = []
        for payload in payloads:
            try:
                if kind == "moment":
                    ids.append(self.gateway.post_moment(message.text, payloads[1:]))
                    break
                ids.append(self.gateway.send(target, payload))
            except AmbiguousSendError:
                raise  # it may have gone out: the slot stays taken
            except SopflowError as exc:
                if isinstance(exc, NotAFriend):  # the intake turns the row into customer.churned
                    contact = exc.contact_id or target
                    unfriended.record(self.pacer.engine, self.key, contact, self.pacer.clock(), exc.detail)
                self._held(exc, kind, delivered=len(ids))
        return SendReceipt(status="sent", provider_ref=ids[0] if ids else None, detail={"message_ids": ids})

    def _held(self, exc: SopflowError, kind: Kind, delivered: int) -> None:
        """A gateway refusal mid-touch.  Before anything left: the slot is given back and
        the touch deferred (restriction, logout) or failed as the gateway said.  After part
        of it left: the rest cannot be told apart from a resend, so it is ambiguous."""
        if delivered:
            raise AmbiguousSendError(
                f"{delivered} part(s) of the touch were delivered before the gateway refused the rest "
                f"({type(exc).__name__}); left for review so nothing is sent twice"
            ) from None
        self.pacer.refund(self.key, kind)
        if isinstance(exc, GatewayRestricted):
            backoff = self.policy.restriction_backoff_minutes * 60
            log.warning(
                "personal WeChat account %s restricted, pausing %d s: %s", self.key, backoff, exc.user_message
            )
            until = self.pacer.pause(
                self.key, backoff, f"restricted: {exc.user_message}"[:200], restriction=True
            )
            raise DeferredError(
                f"WeChat restricted the account; paused: {exc.user_message}",
                retry_after=until - self.pacer.clock(),
                reason="restricted",
            ) from None
        if isinstance(exc, GatewayLoggedOut):
            self.pacer.seen(self.key, logged_in=False)
            raise DeferredError(
                "the account is logged out; its touches wait for the re-login",
                retry_after=300,
                reason="logged_out",
            ) from None
        raise exc


def conversation(message: OutboundMessage) -> str:
    """The wxid (private chat) or room id (group chat) a touch goes to."""
    recipient = message.recipient
    wanted = ROOM_CHANNEL if message.touchpoint == "group_chat" else CHANNEL
    direct = recipient.get("chat_id") if message.touchpoint == "group_chat" else recipient.get("external_id")
    if direct:
        return str(direct)
    for ident in recipient.get("identities") or ():
        if ident.get("channel") == wanted and ident.get("external_id"):
            return str(ident["external_id"])
    raise SkippableError(f"the customer has no {wanted} identity to send to")
