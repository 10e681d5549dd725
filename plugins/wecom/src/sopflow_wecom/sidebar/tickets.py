"""The jsapi tickets every sopflow process shares, within WeCom's fetch budget.

WeCom allows 400 ticket fetches an hour per corp and 100 per app (document
90506).  ``jsapi.TicketFetchLog`` counts them in one process's memory, so N
workers could spend N budgets; here the cached tickets and the log of fetches
live in the plugin's durable state (``host.transaction``), so every process
reads the same ticket and spends one budget:

- a fresh cached ticket is read without a lock (the common case: no fetch);
- otherwise the corp's fetch log row is locked (``SELECT … FOR UPDATE`` on
  Postgres, SQLite's write lock) and the ticket re-read, so of the processes
  that found it stale exactly one fetches while the others wait and then use
  the ticket it stored;
- a fetch that would pass either limit is refused with ``RetriableError``
  before WeCom sees it, and a fetch that failed still counts (WeCom may have
  counted it).

The state is the tenant's: two tenants on one corp each keep their own log,
so give each corp to one tenant (as channel accounts normally are).
"""

from __future__ import annotations

from typing import Any

from sopflow_sdk import Host, RetriableError, Secret

from sopflow_wecom.client import WeComClient
from sopflow_wecom.jsapi import (
    AGENT_TICKET_PATH,
    APP_FETCHES_PER_HOUR,
    CORP_FETCHES_PER_HOUR,
    CORP_TICKET_PATH,
    HOUR,
    signed_configs,
)
from sopflow_wecom.tokens import REFRESH_MARGIN

KINDS = {"corp": (CORP_TICKET_PATH, {}), "agent": (AGENT_TICKET_PATH, {"type": "agent_config"})}


def _log_key(corp_id: str) -> str:
    return f"jsapi.fetches.{corp_id}"


def _ticket_key(corp_id: str, agent_id: str, kind: str) -> str:
    return f"jsapi.ticket.{corp_id}.{agent_id}.{kind}"


class SharedTickets:
    """The corp and agent tickets of one app, shared by every process through
    ``host``'s durable plugin state for ``tenant_id``."""

    def __init__(
        self,
        host: Host,
        tenant_id: int,
        client: WeComClient,
        agent_id: int | str,
        *,
        corp_limit: int = CORP_FETCHES_PER_HOUR,
        app_limit: int = APP_FETCHES_PER_HOUR,
    ) -> None:
        self.host, self.tenant_id, self.client = host, tenant_id, client
        self.agent_id = str(agent_id)
        self.corp_limit, self.app_limit = corp_limit, app_limit

    def __repr__(self) -> str:
        return f"SharedTickets(corp_id={self.client.corp_id!r}, agent_id={self.agent_id!r})"

    def _fresh(self, cached: Any) -> Secret | None:
        if isinstance(cached, dict) and float(cached.get("refresh_at", 0)) > self.client.clock():
            return Secret(str(cached["ticket"]))
        return None

    def ticket(self, kind: str) -> Secret:
        """The cached ``corp`` or ``agent`` ticket, fetched (once, by one process) when
        missing or within 300 s of its expiry."""
        corp_id = self.client.corp_id
        key = _ticket_key(corp_id, self.agent_id, kind)
        state = self.host.state(self.tenant_id)
        cached = self._fresh(state.get(key))
        if cached is not None:
            return cached
        # the log row must exist to be locked; ``add`` lets exactly one process create it
        state.add(_log_key(corp_id), {"corp": [], "apps": {}})
        failure: Exception | None = None
        with self.host.transaction(self.tenant_id) as tx:
            log = tx.state.get(_log_key(corp_id), lock=True)
            cached = self._fresh(tx.state.get(key))
            if cached is not None:  # another process fetched while this one waited
                return cached
            now = self.client.clock()
            corp = [t for t in log.get("corp", []) if t > now - HOUR]
            apps = {a: [t for t in ts if t > now - HOUR] for a, ts in log.get("apps", {}).items()}
            mine = apps.setdefault(self.agent_id, [])
            refused = self._over_budget(corp, mine, now)
            if refused is None:
                corp.append(now)
                mine.append(now)
                path, params = KINDS[kind]
                try:
                    data = self.client.call("GET", path, params=dict(params))
                    value, expires_in = str(data["ticket"]), float(data.get("expires_in", 7200))
                except Exception as exc:  # counted all the same; raised after the log is stored
                    failure = exc
                else:
                    margin = min(REFRESH_MARGIN, expires_in / 2)
                    tx.state.set(key, {"ticket": value, "refresh_at": now + expires_in - margin})
                    cached = Secret(value)
                tx.state.set(_log_key(corp_id), {"corp": corp, "apps": apps})
        if refused is not None:
            raise refused
        if failure is not None:
            raise failure
        assert cached is not None
        return cached

    def _over_budget(self, corp: list[float], mine: list[float], now: float) -> RetriableError | None:
        for log, limit, whose in ((corp, self.corp_limit, "corp"), (mine, self.app_limit, "app")):
            if len(log) >= limit:
                wait = min(log) + HOUR - now
                return RetriableError(
                    f"WeCom allows {limit} jsapi_ticket fetches an hour per {whose}, and sopflow's "
                    f"processes have used them all; retry in {wait:.0f} s",
                    retry_after=wait,
                )
        return None

    def invalidate(self, kind: str) -> None:
        """Forget the cached ticket (WeCom said it is no longer valid)."""
        self.host.state(self.tenant_id).delete(_ticket_key(self.client.corp_id, self.agent_id, kind))

    def fetches_in_the_last_hour(self) -> dict[str, int]:
        """How many fetches the budget has spent: the corp's and this app's."""
        log = self.host.state(self.tenant_id).get(_log_key(self.client.corp_id)) or {}
        now = self.client.clock()
        corp = [t for t in log.get("corp", []) if t > now - HOUR]
        mine = [t for t in log.get("apps", {}).get(self.agent_id, []) if t > now - HOUR]
        return {"corp": len(corp), "app": len(mine)}

    def configs(
        self, url: str, *, noncestr: str | None = None, timestamp: int | None = None
    ) -> dict[str, Any]:
        """What the page passes to ``wx.config`` and ``wx.agentConfig`` for ``url``."""
        ts = int(self.client.clock()) if timestamp is None else timestamp
        return signed_configs(
            self.client.corp_id,
            self.agent_id,
            self.ticket("corp"),
            self.ticket("agent"),
            url,
            noncestr,
            ts,
        )
