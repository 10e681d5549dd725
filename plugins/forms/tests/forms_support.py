"""Helpers the forms/orders tests share: a sopflow app served over real HTTP with
source accounts made through the public API."""

from __future__ import annotations

from typing import Any

YOUZAN_CLIENT_ID = "yz-client-0001"
YOUZAN_SECRET = "yz-secret-very-private-4242"
SHOP_SECRET = "shop-signing-secret-0123456789"


class LiveSopflow:
    """The ``live`` fixture: the API client, the real-HTTP base URL and the manual clock."""

    def __init__(self, api: Any, base_url: str, clock: Any) -> None:
        self.api, self.base_url, self.clock = api, base_url, clock

    def account(self, channel: str, config: dict[str, Any], secrets: dict[str, Any]) -> int:
        made = self.api.post(
            "/api/v1/channel-accounts",
            json={"channel": channel, "name": channel, "config": config, "secrets": secrets},
        )
        assert made.status_code == 201, made.text
        return int(made.json()["id"])

    def events(self, type: str | None = None) -> list[dict[str, Any]]:
        params = {"limit": 500, **({"type": type} if type else {})}
        return self.api.get("/api/v1/events", params=params).json()["items"]

    def customer(self, channel: str, external_id: str) -> dict[str, Any] | None:
        items = self.api.get(
            "/api/v1/customers", params={"channel": channel, "external_id": external_id}
        ).json()["items"]
        assert len(items) <= 1
        return items[0] if items else None
