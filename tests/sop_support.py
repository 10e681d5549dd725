"""Helpers for SOP tests: drive the manual clock from due time to due time."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa


def run_to(app: Any, clock: Any, until: datetime, max_steps: int = 100_000) -> int:
    """Advance the manual clock through every due time up to ``until``,
    dispatching at each, then stop at ``until``.  Returns touches dispatched."""
    from sopflow.engine.delivery.dispatch import run_until_idle
    from sopflow.models import Touch

    total = run_until_idle(app)
    for _ in range(max_steps):
        with app.tx() as s:
            nxt = s.scalar(sa.select(sa.func.min(Touch.due_at)).where(Touch.status == "scheduled"))
        if nxt is None or nxt > until:
            break
        if nxt > clock.now():
            clock.set(nxt)
        total += run_until_idle(app)
    if until > clock.now():
        clock.set(until)
    return total + run_until_idle(app)


def run_days(app: Any, clock: Any, days: float) -> int:
    return run_to(app, clock, clock.now() + timedelta(days=days))


def touches(app: Any, **where: Any) -> list[Any]:
    from sopflow.models import Touch

    with app.tx() as s:
        q = sa.select(Touch).order_by(Touch.customer_id, Touch.step_index)
        for k, v in where.items():
            q = q.where(getattr(Touch, k) == v)
        return list(s.scalars(q))


def add_customer(
    api: Any,
    external_id: str,
    *,
    tags: list[str] | None = None,
    timezone: str | None = None,
    source: str | None = None,
    staff: str = "zhangsan",
    event_type: str = "customer.added",
    fields: dict[str, Any] | None = None,
) -> int:
    r = api.post(
        "/api/v1/events",
        json={
            "events": [
                {
                    "type": event_type,
                    "idempotency_key": f"add-{external_id}-{event_type}",
                    "identity": {"channel": "wecom", "external_id": external_id, "staff_external_id": staff},
                    "tags_add": tags or [],
                    "source": source,
                    "fields": fields or {},
                }
            ]
        },
    )
    assert r.status_code == 200, r.text
    customer_id = r.json()["results"][0]["customer_id"]
    if timezone:
        assert api.patch(f"/api/v1/customers/{customer_id}", json={"timezone": timezone}).status_code == 200
    return customer_id


def tag(api: Any, customer_id: int, *tags: str, key: str | None = None) -> None:
    r = api.post(
        "/api/v1/events",
        json={
            "events": [
                {
                    "type": "customer.updated",
                    "idempotency_key": key or f"tag-{customer_id}-{'-'.join(tags)}",
                    "customer_id": customer_id,
                    "tags_add": list(tags),
                }
            ]
        },
    )
    assert r.status_code == 200, r.text


def send(text: str, touchpoint: str = "private_chat") -> dict[str, Any]:
    return {"type": "send", "channel": "log", "touchpoint": touchpoint, "text": text}


def create_sop(api: Any, name: str, definition: dict[str, Any], start: bool = True) -> int:
    r = api.post("/api/v1/sops", json={"name": name, "definition": definition})
    assert r.status_code == 201, r.text
    sop_id = r.json()["id"]
    if start:
        r = api.post(f"/api/v1/sops/{sop_id}/start")
        assert r.status_code == 200, r.text
    return sop_id


def log_channel(app: Any, api: Any) -> Any:
    """The tenant's built-in log channel instance, which records what it sent."""
    from sopflow.engine.delivery.sends import channel_for

    return channel_for(app, api.tenant_id, "log")[0]
