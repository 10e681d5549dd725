"""Stand-ins for core used by the WeCom plugin tests (a Host and a channel account)."""

from __future__ import annotations

from typing import Any

from sopflow_sdk import Secret

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


class StubHost:
    """The part of ``sopflow_sdk.Host`` the callback route uses; dedupes like core."""

    def __init__(self, *accounts: StubAccount) -> None:
        self.accounts = {a.id: a for a in accounts}
        self.events: list[Any] = []
        self.keys: set[str] = set()

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
