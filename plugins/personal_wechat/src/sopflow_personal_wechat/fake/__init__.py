"""Protocol-faithful fake gateways for tests and demos (importable by plugin authors).

``FakePuppetService`` is a Wechaty puppet service (gRPC) and ``FakeWcferry``
a WeChatFerry endpoint (nng Pair1 + protobuf); both serve a
``GatewayState`` of accounts with contacts, friend requests, rooms, a record
of every delivery and the platform's risk control.  ``start_fake`` and
``start_fake_wcferry`` start one with a logged-in account and contacts in one call.
"""

from sopflow_personal_wechat.fake.clock import FakeClock
from sopflow_personal_wechat.fake.puppet_service import FakePuppetService
from sopflow_personal_wechat.fake.scenario import start_fake, start_fake_wcferry
from sopflow_personal_wechat.fake.state import Delivery, FakeAccount, GatewayState, Tolerance
from sopflow_personal_wechat.fake.wcferry_endpoint import FakeWcferry

__all__ = [
    "Delivery",
    "FakeAccount",
    "FakeClock",
    "FakePuppetService",
    "FakeWcferry",
    "GatewayState",
    "Tolerance",
    "start_fake",
    "start_fake_wcferry",
]
