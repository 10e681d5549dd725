"""Helpers for the console tests: sign a client in with a key, read a form's CSRF token,
and a tenant with a journey, customers and a SOP to look at."""

from __future__ import annotations

import re
from typing import Any

SIGN_IN_TOKEN = re.compile(r'name="_sign_in" value="([^"]+)"')
CSRF = re.compile(r'name="_csrf" value="([^"]+)"')


def sign_in(client: Any, key: str) -> Any:
    """Sign ``client`` (a Litestar TestClient or httpx.Client) in; returns the answer."""
    form = client.get("/console/sign-in")
    token = SIGN_IN_TOKEN.search(form.text).group(1)
    return client.post("/console/sign-in", data={"api_key": key, "_sign_in": token}, follow_redirects=False)


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def board_setup(api: Any, names: list[str] | None = None) -> dict[str, Any]:
    """A journey over a three-stage pipeline with customers in its first stage."""
    journey = api.post(
        "/api/v1/journeys",
        json={
            "name": "Sales 销售",
            "stages": [{"name": "New 新线索"}, {"name": "Talking 沟通中"}, {"name": "Won 成交"}],
        },
    )
    assert journey.status_code == 201, journey.text
    stages = [s["id"] for s in journey.json()["stages"]]
    customers = []
    for name in names or ["Ann 安", "Bo 波"]:
        c = api.post("/api/v1/customers", json={"display_name": name, "tags": ["vip"]}).json()
        moved = api.post(f"/api/v1/customers/{c['id']}/stage", json={"stage_id": stages[0]})
        assert moved.status_code == 200, moved.text
        customers.append(c["id"])
    return {"journey": journey.json()["id"], "stages": stages, "customers": customers}
