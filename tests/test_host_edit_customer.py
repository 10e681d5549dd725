"""``Host.edit_customer``: a plugin's page (the WeCom sidebar) edits a customer as
the console does — form text turned into each field's value, checked by the
engine, a problem per field naming the fix and nothing changed, and every save
audited as a ``customer.updated`` event whose actor is the staff member."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tests.sop_support import add_customer


def host(app: Any) -> Any:
    from sopflow.host import PluginHost

    return PluginHost(app, "default_channels")


def updates(app: Any, customer_id: int) -> list[tuple[str, dict[str, Any]]]:
    from sopflow.models import Event

    with app.tx() as s:
        q = sa.select(Event.source, Event.payload).where(
            Event.customer_id == customer_id, Event.type == "customer.updated"
        )
        return [tuple(r) for r in s.execute(q.order_by(Event.id))]


def test_a_save_converts_the_text_and_is_audited_with_the_staff_member(api, sopflow_app):
    assert api.post("/api/v1/fields", json={"key": "order_count", "type": "number"}).status_code == 201
    c = add_customer(api, "wm-edit", tags=["old"])
    saved = host(sopflow_app).edit_customer(
        api.tenant_id, "wecom", "wm-edit", {"order_count": "3"}, ["vip"], ["old"], staff="sidebar:zhangsan"
    )
    assert saved == {}
    after = api.get(f"/api/v1/customers/{c}").json()
    assert after["fields"]["order_count"] == 3 and after["tags"] == ["vip"]
    [(source, payload)] = updates(sopflow_app, c)
    assert source == "default_channels" and payload["actor"] == "sidebar:zhangsan"
    assert payload["tags_added"] == ["vip"] and payload["tags_removed"] == ["old"]
    # the same text again: nothing to change, no event
    assert (
        host(sopflow_app).edit_customer(api.tenant_id, "wecom", "wm-edit", {"order_count": "3"}, staff="x")
        == {}
    )
    assert len(updates(sopflow_app, c)) == 1


def test_any_problem_is_named_at_its_field_and_nothing_changes(api, sopflow_app):
    assert api.post("/api/v1/fields", json={"key": "order_count", "type": "number"}).status_code == 201
    c = add_customer(api, "wm-bad")
    before = api.get(f"/api/v1/customers/{c}").json()
    edit = host(sopflow_app).edit_customer
    problems = edit(api.tenant_id, "wecom", "wm-bad", {"order_count": "lots"}, ["vip"], staff="s")
    assert list(problems) == ["order_count"] and "number" in problems["order_count"]
    problems = edit(api.tenant_id, "wecom", "wm-bad", {"nope": "1"}, ["vip"], staff="s")
    assert "unknown field 'nope'" in problems["nope"] and "/api/v1/fields" in problems["nope"]
    problems = edit(api.tenant_id, "wecom", "wm-bad", {}, ["x" * 500], staff="s")
    assert list(problems) == ["tags"]
    assert "wm-none" in edit(api.tenant_id, "wecom", "wm-none", {}, ["vip"], staff="s")["customer"]
    assert api.get(f"/api/v1/customers/{c}").json() == before
    assert updates(sopflow_app, c) == []
