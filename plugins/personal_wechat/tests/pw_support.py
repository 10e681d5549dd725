"""Test helpers: a recording gateway (the port with no wire, for bursts of
thousands of touches) and a scheduler loop that behaves like the engine with a
channel's deferrals (due again at "not before", nothing counted as an attempt)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs
from sopflow_personal_wechat.channel import PersonalWeChatChannel
from sopflow_personal_wechat.fake import FakeAccount, GatewayState
from sopflow_personal_wechat.fake.scenario import TOKEN
from sopflow_personal_wechat.port import (
    Contact,
    FriendRequest,
    GatewayEvent,
    GatewayLoggedOut,
    LoginState,
    Payload,
    Room,
)
from sopflow_sdk import DeferredError, OutboundMessage, SkippableError
from wcferry import wcf_pb2


class RecordingGateway:
    """Every send with the clock's time; ``witness`` is shared by every worker's copy.
    While ``logged_in`` is false a send is refused as a gateway refuses it."""

    name = "recording"
    can_post_moments = True
    logged_in = True

    def __init__(
        self, account: str, clock: Callable[[], float], witness: list[tuple[str, str, float]]
    ) -> None:
        self.account, self.clock, self.witness = account, clock, witness
        self.self_id = account

    def send(self, conversation_id: str, payload: Payload) -> str:
        if not self.logged_in:
            raise GatewayLoggedOut("the account is logged out of WeChat: scan its QR code again")
        self.witness.append((self.account, payload.text, self.clock()))
        return f"m{len(self.witness)}"

    def post_moment(self, text: str, media: Sequence[Payload] = ()) -> str:
        return self.send("moments", Payload("text", text=text))

    def login_state(self) -> LoginState:
        return LoginState(True, self.account)

    def contacts(self) -> list[str]:
        return []

    def contact(self, wxid: str) -> Contact:
        return Contact(wxid)

    def friend_requests(self) -> list[FriendRequest]:
        return []

    def accept_friend(self, request_id: str) -> None:
        pass

    def rooms(self) -> list[str]:
        return []

    def room(self, room_id: str) -> Room:
        return Room(room_id)

    def invite(self, room_id: str, wxid: str) -> None:
        pass

    def events(self, idle_timeout: float = 1.0) -> Iterator[GatewayEvent]:
        return iter(())

    def close(self) -> None:
        pass


@attrs.define
class Kit:
    """One adapter against its fake: what a port-level test needs."""

    adapter: str
    fake: Any
    gateway: Any
    state: GatewayState

    @property
    def account(self) -> FakeAccount:
        return self.state.account(TOKEN)  # type: ignore[return-value]

    def stall_next_text(self) -> None:
        self.fake.stall_next("MessageSendText" if self.adapter == "wechaty" else wcf_pb2.FUNC_SEND_TXT)


@attrs.define
class Touch:
    id: int
    channel_index: int  # which account
    text: str
    touchpoint: str = "private_chat"
    due: float = 0.0
    sent_at: float | None = None
    reasons: list[str] = attrs.field(factory=list)


def message(touch: Touch) -> OutboundMessage:
    return OutboundMessage(
        touchpoint=touch.touchpoint,
        text=touch.text,
        idempotency_key=f"touch:{touch.id}",
        recipient={"external_id": f"wxid_c{touch.id}", "chat_id": f"{touch.id}@chatroom"},
    )


def run_burst(
    workers: Sequence[Sequence[PersonalWeChatChannel]],
    touches: list[Touch],
    clock: Any,
    until: float,
    on_step: Callable[[float], None] = lambda now: None,
    make_message: Callable[[Touch], OutboundMessage] = message,
) -> None:
    """Deliver ``touches`` as the engine would, the workers taking turns: each due
    touch is sent or deferred to the time its channel names; time jumps to the next
    due touch.  Stops when every touch is sent or at ``until``."""
    turn = 0
    while True:
        waiting = sorted((t for t in touches if t.sent_at is None), key=lambda t: (t.due, t.id))
        if not waiting or waiting[0].due > until:
            return
        if waiting[0].due > clock():
            clock.set(waiting[0].due)
        now = clock()
        on_step(now)
        for touch in (t for t in waiting if t.due <= now):
            channel = workers[turn % len(workers)][touch.channel_index]
            turn += 1
            try:
                channel.send(make_message(touch))
                touch.sent_at = now
            except DeferredError as exc:
                touch.reasons.append(exc.reason)
                touch.due = now + float(exc.retry_after or 1)
            except SkippableError as exc:  # pragma: no cover - a failure of the test's setup
                raise AssertionError(exc.user_message) from exc


def intake_via_api(api: Any, account_id: int, idle_seconds: float = 0.3) -> int:
    """One intake run of the account through its route; how many events it ingested."""
    ran = api.post(f"/plugins/personal_wechat/accounts/{account_id}/intake?idle_seconds={idle_seconds}")
    assert ran.status_code == 200, ran.text
    return int(ran.json()["ingested"])
