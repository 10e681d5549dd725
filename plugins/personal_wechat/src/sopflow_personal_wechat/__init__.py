"""sopflow-personal-wechat: personal WeChat (个人号) for sopflow through a gateway.

``port`` is the gateway protocol the rest speaks, ``adapters`` speak each
gateway's wire protocol, ``pacing`` keeps an account ban-safe, ``channel``
sends, ``intake`` turns the event stream into sopflow events, ``fake`` is a
protocol-faithful gateway for tests, and ``plugin`` registers it all.
"""

from sopflow_personal_wechat.channel import PersonalWeChatChannel
from sopflow_personal_wechat.pacing import Admission, Pacer, Policy
from sopflow_personal_wechat.port import GatewayPort

__all__ = ["Admission", "GatewayPort", "Pacer", "PersonalWeChatChannel", "Policy"]
