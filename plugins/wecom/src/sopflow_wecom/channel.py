"""The WeCom touchpoints as a sopflow ``Channel``.

WeCom cannot push a private message to a customer directly: an API "send"
creates a mass-send task that the member must confirm in their client, so a
private-chat send returns ``pending`` and the engine polls for the outcome.
The declared capabilities say so up front (confirmation, no idempotent send,
one push per customer per day, which satisfies every cap rule an admin can
pick: days-of-the-month per month, 7 per week, 1 per day).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from sopflow_sdk import (
    AmbiguousSendError,
    Attachment,
    Capabilities,
    Channel,
    ChannelAccountView,
    ConfigError,
    CustomerCap,
    FatalError,
    OutboundMessage,
    Secret,
    SendReceipt,
    Setting,
    SettingsSchema,
    SkippableError,
    SopflowError,
)

from sopflow_wecom.archive.settings import ARCHIVE_SETTINGS
from sopflow_wecom.client import BASE_URL, WeComClient
from sopflow_wecom.events import GROUP_CHANNEL

#: groupchat/get errcodes for a group that was dismissed or that the app cannot see.
GROUP_GONE = frozenset({40050})
#: get_groupmsg_send_result status → what the engine records.
_RESULT = {0: "pending", 1: "sent", 2: "failed", 3: "failed"}
#: seconds either side of a lost add_msg_template in which its task is looked for
#: (WeCom stamps create_time with its own clock)
RECONCILE_SLACK = 300


def to_wecom_attachment(attachment: Attachment) -> dict[str, Any]:
    """sopflow's attachment record in WeCom's ``attachments[]`` shape."""
    if attachment.kind == "link":
        body = {"title": attachment.title, "url": attachment.url, "desc": attachment.description}
    elif attachment.kind == "miniprogram":
        body = {"title": attachment.title, "pic_media_id": attachment.media_id, "page": attachment.url}
    else:
        body = {"media_id": attachment.media_id}
    return {"msgtype": attachment.kind, attachment.kind: body}


def to_app_message(attachment: Attachment) -> tuple[str, dict[str, Any]]:
    """An attachment as an app message (``message/send``) for a staff member."""
    if attachment.kind == "link":
        article = {
            "title": attachment.title or attachment.url,
            "description": attachment.description,
            "url": attachment.url,
        }
        return "news", {"articles": [article]}
    if attachment.kind == "miniprogram":  # app messages cannot carry a customer mini-program card
        return "text", {"content": f"小程序「{attachment.title}」: {attachment.url}"}
    if attachment.kind == "video":
        return "video", {
            "media_id": attachment.media_id,
            "title": attachment.title,
            "description": attachment.description,
        }
    return attachment.kind, {"media_id": attachment.media_id}


#: How far a callback's ``timestamp`` may be from now before it is refused as a
#: replay (accounts saved before the setting existed get it too).  WeCom sends a
#: callback at once and retries within seconds; five minutes leaves room for
#: clock skew without letting an old, captured request be replayed.
CALLBACK_MAX_AGE_SECONDS = 300

#: A WeCom account's settings, checked by core when the account is connected.
WECOM_SETTINGS = SettingsSchema(
    Setting(
        "corp_id",
        required=True,
        pattern="[A-Za-z0-9]{1,64}",
        example="ww0123456789abcdef",
        description="the corp's CorpID (My Company → Company Information)",
    ),
    Setting(
        "agent_id",
        "integer",
        minimum=1,
        example=1000002,
        description="the self-built app's AgentId; needed for staff notices",
    ),
    Setting(
        "callback_max_age_seconds",
        "integer",
        minimum=30,
        maximum=86_400,
        default=CALLBACK_MAX_AGE_SECONDS,
        description="refuse a callback whose timestamp is further than this from now (replays)",
    ),
    Setting("base_url", pattern=r"https?://\S+", description="the WeCom API's address (tests, a proxy)"),
    Setting(
        "create_missing_tags",
        "boolean",
        default=False,
        description="create corp tags SOPs add that WeCom does not have yet",
    ),
    Setting(
        "secret",
        secret=True,
        required=True,
        max_length=128,
        description="the self-built app's Secret (added to 客户联系)",
    ),
    Setting(
        "callback_token",
        secret=True,
        pattern="[A-Za-z0-9]{1,32}",
        description="the Token of the app's 接收消息 (API receive) settings: up to 32 letters/digits",
    ),
    Setting(
        "encoding_aes_key",
        secret=True,
        pattern="[A-Za-z0-9]{43}",
        description="the EncodingAESKey of the same settings: 43 letters/digits",
    ),
    *ARCHIVE_SETTINGS,
)


class WeComChannel(Channel):
    """``factory(config, secrets)``: config ``corp_id``, ``agent_id`` (and optional
    ``base_url``); secrets ``secret`` (the self-built app's secret)."""

    name = "wecom"
    capabilities = Capabilities(
        touchpoints=frozenset({"private_chat", "group_chat", "moments", "welcome", "staff_notice"}),
        max_attachments=9,
        needs_staff_confirmation=True,
        idempotent_send=False,
        customer_cap=CustomerCap(count=1, period="day"),
    )

    def __init__(self, config: Mapping[str, Any], secrets: Mapping[str, Any], **client_options: Any) -> None:
        problems = [
            (f"config.{k}", "copy it from the WeCom admin console") for k in ("corp_id",) if not config.get(k)
        ]
        if not secrets.get("secret"):
            problems.append(("secrets.secret", "use the secret of the self-built app added to 客户联系"))
        if problems:
            raise ConfigError(problems, subject="WeCom channel account")
        self.agent_id = config.get("agent_id")
        self.client = WeComClient(
            config["corp_id"], Secret(secrets["secret"]), config.get("base_url", BASE_URL), **client_options
        )

    def send(self, message: OutboundMessage) -> SendReceipt:
        self.check(message)
        attachments = [to_wecom_attachment(a) for a in message.attachments]
        recipient = message.recipient
        if message.touchpoint == "welcome":
            code = recipient.get("welcome_code")
            if not code:  # no fresh code: WeCom would refuse (41051); a welcome is never late
                raise SkippableError("no welcome code within WeCom's 20-second window")
            self.client.send_welcome_msg(code, message.text, attachments)
            return SendReceipt(status="sent")
        if message.touchpoint == "staff_notice":
            staff = recipient.get("staff_external_id") or recipient.get("staff_userid")  # the older name
            staff = staff or message.staff_external_id
            if not staff:
                raise SkippableError("no staff member to notify: the customer has no WeCom staff contact")
            if not self.agent_id:
                raise FatalError(
                    "a WeCom staff notice is an app message and needs config.agent_id "
                    "(the self-built app's AgentId, shown on its page in the admin console)"
                )
            # 81013 (the member is outside the app's visible range or left) is skippable
            result = self.client.send_app_message(self.agent_id, str(staff), message.text)
            # attachments follow as their own app messages, each ready to forward with one tap
            for attachment in message.attachments:
                msgtype, content = to_app_message(attachment)
                self.client.send_app_payload(self.agent_id, str(staff), msgtype, content)
            return SendReceipt(status="sent", provider_ref=str(result.get("msgid", "")))
        if message.touchpoint == "moments":
            jobid = self.client.add_moment_task(
                message.text, attachments, recipient.get("visible_range") or None
            )
            return SendReceipt(status="pending", provider_ref=f"moment:{jobid}")
        if message.touchpoint == "group_chat":
            chat_id = group_chat_id(recipient)
            sent = self.mass_send(
                chat_id,
                chat_type="group",
                chat_id_list=[chat_id],
                sender=self.group_owner(chat_id),
                text=message.text,
                attachments=attachments,
            )
        else:
            if not recipient.get("external_id"):
                raise SkippableError("the customer has no WeCom identity (external_userid)")
            sent = self.mass_send(
                str(recipient["external_id"]),
                external_userid=[recipient["external_id"]],
                sender=message.staff_external_id,
                text=message.text,
                attachments=attachments,
            )
        return SendReceipt(status="pending", provider_ref=str(sent["msgid"]), detail=dict(sent))

    def mass_send(self, recipient_id: str, **template: Any) -> Mapping[str, Any]:
        """``add_msg_template`` for one recipient.  When its answer is lost (the task
        may or may not exist), WeCom's own record of mass sends decides: one task
        created meanwhile with this text for this recipient is the send, and is
        followed like any other; otherwise the touch stays ambiguous, for review."""
        started = int(self.client.clock())
        try:
            return self.client.add_msg_template(**template)
        except AmbiguousSendError as exc:
            msgid = self.find_mass_send(started, recipient_id, template)
            if msgid is None:
                raise AmbiguousSendError(
                    f"{exc.user_message}; get_groupmsg_list_v2 shows no single matching task, "
                    "so the touch is left for review",
                    internal_message=exc.internal_message,
                ) from None
            return {"msgid": msgid, "fail_list": [], "reconciled": True}

    def find_mass_send(self, started: int, recipient_id: str, template: Mapping[str, Any]) -> str | None:
        """The msgid of the one task (from ``get_groupmsg_list_v2``) created since
        ``started`` with the template's text whose recipients include ``recipient_id``."""
        text = template.get("text")
        chat_type = str(template.get("chat_type") or "single")
        start, end = started - RECONCILE_SLACK, int(self.client.clock()) + RECONCILE_SLACK
        try:
            listed = _pages(
                lambda c: self.client.get_groupmsg_list_v2(start, end, chat_type, c), "group_msg_list"
            )
            candidates = [
                str(t["msgid"])
                for t in listed
                if ((t.get("text") or {}).get("content") or None) == (text or None)
            ]
            matches = [m for m in candidates if recipient_id in self.poll(m)]
        except SopflowError:  # the record cannot be read now: stay ambiguous
            return None
        return matches[0] if len(matches) == 1 else None

    def group_owner(self, chat_id: str) -> str:
        """The group's current owner (群主): only the owner can send a group mass message,
        and ownership moves with transfers, so it is read when sending."""
        try:
            owner = self.client.groupchat_get(chat_id).get("owner")
        except FatalError as exc:
            code = getattr(exc, "errcode", None)
            if code in GROUP_GONE:
                raise SkippableError(
                    f"WeCom customer group {chat_id} is gone or not visible to the app (errcode {code})"
                ) from None
            raise
        if not owner:
            raise SkippableError(f"WeCom customer group {chat_id} has no owner to send from")
        return str(owner)

    def poll(self, provider_ref: str) -> Mapping[str, str]:
        """Recipient → ``sent``/``failed``/``pending`` for a mass-send or moment task."""
        if provider_ref.startswith("moment:"):
            jobid = provider_ref.removeprefix("moment:")
            done = self.client.get_moment_task_result(jobid).get("status") == 3
            return {jobid: "sent" if done else "pending"}
        outcome: dict[str, str] = {}
        for task in _pages(lambda c: self.client.get_groupmsg_task(provider_ref, c), "task_list"):
            userid = task["userid"]
            fetch = lambda c, u=userid: self.client.get_groupmsg_send_result(provider_ref, u, c)  # noqa: E731
            for row in _pages(fetch, "send_list"):
                key = row.get("external_userid") or row.get("chat_id", "")
                outcome[key] = _RESULT.get(int(row.get("status", 0)), "failed")
        return outcome

    def cancel(self, provider_ref: str) -> bool:
        """Stop a mass-send task its member has not sent (the customer moved to another
        member); a moment task cannot be stopped."""
        if provider_ref.startswith("moment:"):
            return False
        self.client.cancel_groupmsg_send(provider_ref)
        return True


def group_chat_id(recipient: Mapping[str, Any]) -> str:
    """The chat id of a ``group_chat`` touch: ``recipient["chat_id"]``, else the
    recipient's ``wecom_group`` identity (a group "customer", see events.py)."""
    chat_id = recipient.get("chat_id")
    if not chat_id:
        chat_id = next(
            (
                i.get("external_id")
                for i in recipient.get("identities") or ()
                if i.get("channel") == GROUP_CHANNEL and i.get("external_id")
            ),
            None,
        )
    if not chat_id:
        raise SkippableError(
            "no WeCom customer group to send to: the recipient has no wecom_group identity "
            "(target group customers, which WeCom group callbacks create, e.g. with "
            '"sources": ["wecom_group"])'
        )
    return str(chat_id)


def _pages(fetch: Callable[[str], Mapping[str, Any]], field: str) -> Iterator[Mapping[str, Any]]:
    cursor = ""
    while True:
        page = fetch(cursor)
        yield from page.get(field, [])
        cursor = page.get("next_cursor", "")
        if not cursor:
            return


_by_account: dict[tuple[int, str], WeComChannel] = {}
_by_account_guard = threading.Lock()


def account_channel(account: ChannelAccountView) -> WeComChannel:
    """One live channel per account (and per version of its settings), so ad-hoc
    calls (profile fetches, live codes) share its token, budget and connections."""
    fingerprint = hashlib.sha256(
        json.dumps([dict(account.config), _revealed(account.secrets)], sort_keys=True, default=str).encode()
    ).hexdigest()
    key = (account.id, fingerprint)
    with _by_account_guard:
        channel = _by_account.get(key)
        if channel is None:
            for stale in [k for k in _by_account if k[0] == account.id]:
                del _by_account[stale]
            channel = _by_account[key] = WeComChannel(account.config, account.secrets)
        return channel


def _revealed(secrets: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.reveal() if isinstance(v, Secret) else v for k, v in secrets.items()}
