"""sopflow-wecom: WeCom (企业微信) for sopflow.

``crypto`` verifies and decrypts callbacks, ``events`` maps them to sopflow
events, ``client`` calls the server API within WeCom's limits, ``fake`` is a
protocol-faithful WeCom for tests, and ``plugin`` registers it all with sopflow.
"""

from sopflow_wecom.client import WeComClient
from sopflow_wecom.crypto import BadPadding, BadSignature, Malformed, WeComCrypto, WrongReceiveId
from sopflow_wecom.events import parse_callback, to_ingest_events
from sopflow_wecom.limits import Limit, MemberMessageLimiter, RequestBudget
from sopflow_wecom.tokens import MemoryTokenCache, RedisTokenCache, redis_lock_factory

__all__ = [
    "BadPadding",
    "BadSignature",
    "Limit",
    "Malformed",
    "MemberMessageLimiter",
    "MemoryTokenCache",
    "RedisTokenCache",
    "RequestBudget",
    "WeComClient",
    "WeComCrypto",
    "WrongReceiveId",
    "parse_callback",
    "redis_lock_factory",
    "to_ingest_events",
]
