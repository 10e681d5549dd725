"""Stand-ins for core used by the WeCom plugin tests (a Host and a channel account)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sopflow_sdk import Secret
from sopflow_sdk.testing.plugin_state import LocalState
from sopflow_wecom import store

CALLBACK_TOKEN = "cbTokenForTests0123456789abcdef"
CALLBACK_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


class StubAccount:
    def __init__(self, corp_id: str, account_id: int = 7, tenant_id: int = 3) -> None:
        self.id, self.tenant_id, self.channel, self.name = account_id, tenant_id, "wecom", "main"
        self.config = {"corp_id": corp_id, "agent_id": 1000002}
        self.secrets = {
            "callback_token": Secret(CALLBACK_TOKEN),
            "encoding_aes_key": Secret(CALLBACK_AES_KEY),
        }


class StubHost(LocalState):
    """The part of ``sopflow_sdk.Host`` the callback route uses; dedupes like core."""

    def __init__(self, *accounts: StubAccount, clock: Callable[[], float] = time.time) -> None:
        super().__init__(store.metadata, self.ingest)
        self.clock = clock
        self.accounts = {a.id: a for a in accounts}
        self.events: list[Any] = []
        self.keys: set[str] = set()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), tz=UTC)

    def channel_account(self, account_id: int) -> StubAccount | None:
        return self.accounts.get(account_id)

    def ingest(self, tenant_id: int, events: Any) -> list[dict[str, Any]]:
        results = []
        for event in events:
            duplicate = event.idempotency_key in self.keys
            self.keys.add(event.idempotency_key)
            if not duplicate:
                self.events.append((tenant_id, event))
            results.append({"duplicate": duplicate})
        return results


class WeComApp:
    """The ``wecom_app`` fixture: sopflow's API client, the fake WeCom, the channel
    account id and sopflow's manual clock (which the fake shares)."""

    def __init__(self, api: Any, fake: Any, account_id: int, clock: Any) -> None:
        self.api, self.fake, self.account_id, self.clock = api, fake, account_id, clock

    @property
    def base(self) -> str:
        return f"/plugins/wecom/accounts/{self.account_id}"

    def all(self, path: str) -> list[dict[str, Any]]:
        """Every item of a paged sopflow list."""
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            sep = "&" if "?" in path else "?"
            page = self.api.get(f"{path}{sep}limit=500" + (f"&cursor={cursor}" if cursor else ""))
            assert page.status_code == 200, page.text
            items += page.json()["items"]
            cursor = page.json()["next_cursor"]
            if not cursor:
                return items
