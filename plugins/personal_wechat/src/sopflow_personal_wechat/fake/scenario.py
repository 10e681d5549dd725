"""One call to a running fake with a logged-in account and contacts (tests, the demo)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sopflow_personal_wechat.fake.puppet_service import FakePuppetService
from sopflow_personal_wechat.fake.state import GatewayState
from sopflow_personal_wechat.fake.wcferry_endpoint import FakeWcferry
from sopflow_personal_wechat.port import Contact, Room

TOKEN = "puppet_service_fake_token_0001"
SELF_ID = "wxid_sopflow_staff01"
CONTACTS = (
    Contact("wxid_customer_li", name="李女士", alias="li_mama", gender="female", city="上海"),
    Contact("wxid_customer_wang", name="王先生", alias="wang88", gender="male", city="杭州"),
)
ROOM = Room("2345678901@chatroom", topic="宝妈交流群", owner_id=SELF_ID)


def start_fake(clock: Callable[[], float] | None = None, **tolerance: Any) -> FakePuppetService:
    """A started fake puppet service (stop it with ``__exit__`` or use ``with``):
    account ``SELF_ID`` logged in under ``TOKEN``, ``CONTACTS`` and one room.
    Settings for the account: ``{"adapter": "wechaty", "endpoint": fake.endpoint,
    "tls": False}`` with the secret ``{"token": TOKEN}``."""
    fake = FakePuppetService(clock=clock).start()
    seed(fake.state, **tolerance)
    return fake


def start_fake_wcferry(clock: Callable[[], float] | None = None, **tolerance: Any) -> FakeWcferry:
    """The same account and contacts behind a started fake WeChatFerry endpoint:
    ``{"adapter": "wcferry", "endpoint": fake.endpoint}`` (WeChatFerry has no token)."""
    fake = FakeWcferry(token=TOKEN, clock=clock)
    seed(fake.state, **tolerance)
    return fake.start()


def seed(state: GatewayState, **tolerance: Any) -> None:
    """Account ``SELF_ID`` logged in under ``TOKEN`` with ``CONTACTS`` and ``ROOM``."""
    account = state.add_account(TOKEN, SELF_ID, "小助手", **tolerance)
    for contact in CONTACTS:
        state.add_contact(account, contact)
    account.rooms[ROOM.id] = Room(ROOM.id, ROOM.topic, ROOM.owner_id, (SELF_ID, CONTACTS[0].wxid))
