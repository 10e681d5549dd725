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
        self.made = 0

    def account(self, channel: str, config: dict[str, Any], secrets: dict[str, Any]) -> int:
        made = self.api.post(
            "/api/v1/channel-accounts",
            json={"channel": channel, "name": f"{channel}-{self.made}", "config": config, "secrets": secrets},
        )
        assert made.status_code == 201, made.text
        self.made += 1
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


def add_customer(api: Any, external_id: str, tags: list[str] | None = None) -> int:
    """A WeCom customer, added the way the WeCom plugin would report it."""
    r = api.post(
        "/api/v1/events",
        json={
            "events": [
                {
                    "type": "customer.added",
                    "idempotency_key": f"add-{external_id}",
                    "identity": {
                        "channel": "wecom",
                        "external_id": external_id,
                        "staff_external_id": "zhangsan",
                    },
                    "tags_add": tags or [],
                }
            ]
        },
    )
    assert r.status_code == 200, r.text
    return int(r.json()["results"][0]["customer_id"])


def nurture(api: Any, text: str, tag: str) -> int:
    """A started nurture SOP sending ``text`` on the log channel a day after ``tag`` is set."""
    step = {
        "day": 1,
        "at": "10:00",
        "actions": [{"type": "send", "channel": "log", "touchpoint": "private_chat", "text": text}],
    }
    sop = {"kind": "nurture", "target": {"rule": {"tags": {"any_of": [tag]}}}, "steps": [step]}
    made = api.post("/api/v1/sops", json={"name": tag, "definition": sop})
    assert made.status_code == 201, made.text
    assert api.post(f"/api/v1/sops/{made.json()['id']}/start").status_code == 200
    return int(made.json()["id"])


def sent_texts(app: Any, api: Any) -> list[str]:
    """What the tenant's log channel sent."""
    from sopflow.engine.delivery.sends import channel_for

    return [m.text for m in channel_for(app, api.tenant_id, "log")[0].sent]


FORM_KEY = "form-links-signing-key-0123456789abcdef"
SURVEY = {
    "slug": "skin-survey",
    "title": "Your skin <survey>",
    "intro": "Two quick questions & you're done.",
    "questions": [
        {"field": "skin_type", "label": "Your skin type", "required": True},
        {"field": "age", "label": "Your age"},
    ],
    "thank_you": "Thank you! Your routine is on its way.",
}


def hosted_setup(live: LiveSopflow) -> int:
    """Fields skin_type (choice) and age (number), a hosted_forms account on the live
    server's address, and the skin survey; returns the account id."""
    for field in (
        {"key": "skin_type", "type": "choice", "label": "Skin type", "choices": ["dry", "oily", "mixed"]},
        {"key": "age", "type": "number", "label": "Age"},
    ):
        assert live.api.post("/api/v1/fields", json=field).status_code == 201
    account = live.account(
        "hosted_forms", {"public_url": live.base_url, "link_days": 7}, {"signing_key": FORM_KEY}
    )
    made = live.api.post("/plugins/forms/hosted", json=SURVEY)
    assert made.status_code == 201, made.text
    return account


def signed_form_link(
    live: LiveSopflow, account: int, customer_id: int, *, expires_in: float = 86400, slug: str = "skin-survey"
) -> str:
    from sopflow_forms.senders import form_link

    expires = int(live.clock.now().timestamp() + expires_in)
    return form_link(live.base_url, account, FORM_KEY, slug, customer_id, expires)
