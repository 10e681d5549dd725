"""The JS-SDK signatures a page inside WeCom needs (the chat sidebar, 聊天工具栏).

A page calls ``wx.config`` with a signature over the corp's ``jsapi_ticket`` and
``wx.agentConfig`` (for ``getCurExternalContact``: which customer's chat is open)
with one over the app's ``agent_config`` ticket (document 90506):
``sha1("jsapi_ticket=<ticket>&noncestr=<nonce>&timestamp=<ts>&url=<url>")``, the
url being the page's address without its ``#fragment``.

WeCom limits ticket fetches to 400 an hour per corp and 100 an hour per app, and
a ticket is valid for 7200 s, so tickets are cached like access tokens
(``tokens.TokenProvider``: memory or Redis, refreshed 300 s early, one fetch at
a time) and every fetch is also counted here, so a storm of invalidations fails
with a clear ``RetriableError`` instead of locking the corp out.  The count of
``TicketFetchLog`` is per process; ``sidebar.tickets.SharedTickets`` keeps the
tickets and the fetch log in the plugin's durable state instead, so every
process shares one cached ticket and one budget (what the sidebar uses).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import urldefrag

from sopflow_sdk import RetriableError, Secret

from sopflow_wecom.client import WeComClient
from sopflow_wecom.tokens import LockFactory, MemoryTokenCache, TokenCache, TokenProvider

CORP_TICKET_PATH = "get_jsapi_ticket"
AGENT_TICKET_PATH = "ticket/get"
#: WeCom's limits on ticket fetches in any hour (document 90506)
CORP_FETCHES_PER_HOUR, APP_FETCHES_PER_HOUR = 400, 100
HOUR = 3600.0


def js_signature(ticket: str, noncestr: str, timestamp: int | str, url: str) -> str:
    """WeCom's JS-SDK signature of ``url`` (its fragment dropped)."""
    page, _fragment = urldefrag(url)
    plain = f"jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={timestamp}&url={page}"
    return hashlib.sha1(plain.encode("utf-8")).hexdigest()


class TicketFetchLog:
    """How many tickets were fetched in the last hour, per corp and per app; refuses
    the fetch that would pass WeCom's limits.  Share one per process."""

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        corp_limit: int = CORP_FETCHES_PER_HOUR,
        app_limit: int = APP_FETCHES_PER_HOUR,
    ) -> None:
        self.clock = clock
        self.corp_limit, self.app_limit = corp_limit, app_limit
        self._corp: dict[str, deque[float]] = {}
        self._app: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, log: deque[float], now: float) -> deque[float]:
        while log and log[0] <= now - HOUR:
            log.popleft()
        return log

    def take(self, corp_id: str, app: str) -> None:
        """Count one fetch, or raise ``RetriableError`` (with ``retry_after``)."""
        now = self.clock()
        with self._lock:
            corp = self._recent(self._corp.setdefault(corp_id, deque()), now)
            mine = self._recent(self._app.setdefault((corp_id, app), deque()), now)
            for log, limit, whose in ((corp, self.corp_limit, "corp"), (mine, self.app_limit, "app")):
                if len(log) >= limit:
                    wait = log[0] + HOUR - now
                    raise RetriableError(
                        f"WeCom allows {limit} jsapi_ticket fetches an hour per {whose}; "
                        f"retry in {wait:.0f} s (tickets are cached: share a Redis token cache "
                        "between processes)",
                        retry_after=wait,
                    )
            corp.append(now)
            mine.append(now)


class JsapiTickets:
    """The corp and agent tickets of one app, cached, and the signed configs."""

    def __init__(
        self,
        client: WeComClient,
        agent_id: int | str,
        cache: TokenCache | None = None,
        lock_factory: LockFactory | None = None,
        fetch_log: TicketFetchLog | None = None,
    ) -> None:
        self.client, self.agent_id = client, str(agent_id)
        self.fetch_log = fetch_log or TicketFetchLog(client.clock)
        cache = cache or MemoryTokenCache()
        app = f"{client.corp_id}:{self.agent_id}"
        self._corp = TokenProvider(f"jsapi:corp:{app}", self._fetch_corp, cache, lock_factory, client.clock)
        self._agent = TokenProvider(
            f"jsapi:agent:{app}", self._fetch_agent, cache, lock_factory, client.clock
        )

    def __repr__(self) -> str:
        return f"JsapiTickets(corp_id={self.client.corp_id!r}, agent_id={self.agent_id!r})"

    def _fetch(self, path: str, params: dict[str, str]) -> tuple[str, float]:
        self.fetch_log.take(self.client.corp_id, self.agent_id)
        data = self.client.call("GET", path, params=params)
        return str(data["ticket"]), float(data.get("expires_in", 7200))

    def _fetch_corp(self) -> tuple[str, float]:
        return self._fetch(CORP_TICKET_PATH, {})

    def _fetch_agent(self) -> tuple[str, float]:
        return self._fetch(AGENT_TICKET_PATH, {"type": "agent_config"})

    def corp_ticket(self) -> Secret:
        return self._corp.get()

    def agent_ticket(self) -> Secret:
        return self._agent.get()

    def configs(
        self, url: str, *, noncestr: str | None = None, timestamp: int | None = None
    ) -> dict[str, Any]:
        """What the page passes to ``wx.config`` and ``wx.agentConfig`` for ``url``."""
        ts = int(self.client.clock()) if timestamp is None else timestamp
        return signed_configs(
            self.client.corp_id, self.agent_id, self.corp_ticket(), self.agent_ticket(), url, noncestr, ts
        )


def signed_configs(
    corp_id: str,
    agent_id: str,
    corp_ticket: Secret,
    agent_ticket: Secret,
    url: str,
    noncestr: str | None,
    timestamp: int,
) -> dict[str, Any]:
    """The ``wx.config`` and ``wx.agentConfig`` parameters for ``url``, signed with the
    corp's and the app's ticket (the tickets themselves are not in the answer)."""
    nonce = noncestr or secrets.token_urlsafe(12)
    return {
        "config": {
            "appId": corp_id,
            "timestamp": timestamp,
            "nonceStr": nonce,
            "signature": js_signature(corp_ticket.reveal(), nonce, timestamp, url),
        },
        "agentConfig": {
            "corpid": corp_id,
            "agentid": str(agent_id),
            "timestamp": timestamp,
            "nonceStr": nonce,
            "signature": js_signature(agent_ticket.reveal(), nonce, timestamp, url),
            "jsApiList": ["getCurExternalContact"],
        },
    }
