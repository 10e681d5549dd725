"""The per-process configuration cache: hot paths stop re-reading a tenant's
configuration, and a change made anywhere is seen by the very next event in
every process (here: two apps on one database, each with its own cache)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sop_support import add_customer, create_sop, send, tag


@pytest.fixture(autouse=True)
def start_clock(manual_clock):
    manual_clock.set(datetime(2026, 3, 2, 10, 30, tzinfo=ZoneInfo("Asia/Shanghai")))


@pytest.fixture
def other(sopflow_app, manual_clock, api) -> Iterator:
    """A second process on the same database: its own app, sessions and cache."""
    from litestar.testing import TestClient
    from sopflow.api.app import build_api
    from sopflow_sdk.testing.harness import ApiClient, make_test_app

    app = make_test_app(sopflow_app.settings.database_url, clock=manual_clock)
    with TestClient(build_api(app), raise_server_exceptions=False) as client:
        yield ApiClient(client, api.key, api.tenant_id)
    app.dispose()


def _cache(app):
    from sopflow.config_cache import _CACHE

    return app.sessions.kw["info"][_CACHE]


def _enrolled(api, sop_id: int) -> list[int]:
    return sorted(e["customer_id"] for e in api.get(f"/api/v1/sops/{sop_id}/enrollments").json()["items"])


VIP = {
    "kind": "nurture",
    "target": {"rule": {"tags": {"any_of": ["vip"]}}},
    "steps": [{"delay": "1h", "actions": [send("hello")]}],
}


def test_evaluating_reads_the_configuration_once_per_version(api, sopflow_app):
    create_sop(api, "vip", VIP)
    add_customer(api, "warm")
    cache = _cache(sopflow_app)
    misses = cache.misses
    for n in range(5):
        add_customer(api, f"c{n}", tags=["vip"])
    assert cache.hits > 0
    assert cache.misses == misses  # five events, nothing reloaded: no configuration changed


def test_a_sop_started_in_another_process_enrols_on_the_next_event_here(api, other):
    first = add_customer(api, "a")  # this process has the tenant's SOPs cached (none)
    sop = create_sop(other, "vip", VIP)  # the other process starts a SOP
    tag(api, first, "vip")
    assert _enrolled(api, sop) == [first]
    other_customer = add_customer(other, "b", tags=["vip"])
    assert _enrolled(api, sop) == [first, other_customer]


def test_a_sop_stopped_in_another_process_enrols_nobody_here_from_the_next_event(api, other):
    sop = create_sop(api, "vip", VIP)
    first = add_customer(api, "a", tags=["vip"])
    assert other.post(f"/api/v1/sops/{sop}/stop").status_code == 200
    add_customer(api, "b", tags=["vip"])
    assert _enrolled(api, sop) == [first]


def test_a_field_defined_in_another_process_is_accepted_here_at_once(api, other):
    add_customer(api, "warm")  # field definitions cached without the new field
    event = {
        "type": "customer.updated",
        "idempotency_key": "plan-1",
        "identity": {"channel": "wecom", "external_id": "warm"},
        "fields": {"plan": "gold"},
    }
    assert api.post("/api/v1/events", json={"events": [event]}).status_code == 422
    r = other.post("/api/v1/fields", json={"key": "plan", "type": "text", "label": "Plan"})
    assert r.status_code == 201, r.text
    r = api.post("/api/v1/events", json={"events": [event]})
    assert r.status_code == 200, r.text


def test_a_change_rolled_back_never_reaches_the_cache(api, sopflow_app):
    import sqlalchemy as sa
    from sopflow.engine.customers.fields import field_definitions
    from sopflow.models import FieldDefinition

    add_customer(api, "warm")
    with pytest.raises(RuntimeError), sopflow_app.tx() as s:
        ghost = {"key": "ghost", "type": "text", "label": "", "choices": []}
        s.add(FieldDefinition(tenant_id=api.tenant_id, created_at=sopflow_app.now(), **ghost))
        assert "ghost" in field_definitions(s, api.tenant_id, sopflow_app.plugins)  # its own change
        raise RuntimeError("rolled back")
    with sopflow_app.tx() as s:
        assert "ghost" not in field_definitions(s, api.tenant_id, sopflow_app.plugins)
        assert s.scalar(sa.select(sa.func.count()).select_from(FieldDefinition)) == 0


def test_a_bulk_statement_on_a_configuration_table_bumps_every_tenant(api, sopflow_app):
    import sqlalchemy as sa
    from sopflow.models import Sop, Tenant

    sop = create_sop(api, "vip", VIP)
    with sopflow_app.tx() as s:
        before = s.scalar(sa.select(Tenant.config_version).where(Tenant.id == api.tenant_id))
    with sopflow_app.tx() as s:
        s.execute(sa.update(Sop).where(Sop.id == sop).values(status="stopped"))
    with sopflow_app.tx() as s:
        assert s.scalar(sa.select(Tenant.config_version).where(Tenant.id == api.tenant_id)) == before + 1
    add_customer(api, "late", tags=["vip"])
    assert _enrolled(api, sop) == []
