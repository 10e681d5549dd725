"""Tenant isolation and authentication: a key sees only its tenant's rows."""

from __future__ import annotations

import pytest
from sopflow_sdk.testing.harness import new_tenant

from tests.conftest import row_counts


@pytest.fixture
def two_tenants(api, sopflow_app):
    """Tenant B with one of every resource; returns (api for A, ids of B's rows)."""
    _, key_b = new_tenant(sopflow_app, "globex")
    b = api.as_key(key_b)
    ids = {}
    ids["field"] = b.post("/api/v1/fields", json={"key": "secret_field", "type": "text"}).json()["key"]
    p = b.post("/api/v1/pipelines", json={"name": "bp", "stages": [{"name": "s1"}]}).json()
    ids["pipeline"], ids["stage"] = p["id"], p["stages"][0]["id"]
    c = b.post(
        "/api/v1/customers",
        json={
            "display_name": "B's customer",
            "identities": [{"channel": "wecom", "external_id": "shared-id"}],
        },
    ).json()
    ids["customer"] = c["id"]
    ids["staff"] = b.post("/api/v1/staff", json={"external_id": "b-staff"}).json()["id"]
    ids["account"] = b.post("/api/v1/channel-accounts", json={"channel": "log", "name": "b-log"}).json()["id"]
    ids["key"] = b.get("/api/v1/api-keys").json()[0]["id"]
    b.post(
        "/api/v1/events", json={"events": [{"type": "x", "idempotency_key": "b-1", "customer_id": c["id"]}]}
    )
    return api, ids


def test_every_resource_of_another_tenant_is_404(two_tenants):
    api, ids = two_tenants
    for method, path, body in [
        ("GET", f"/api/v1/fields/{ids['field']}", None),
        ("PATCH", f"/api/v1/fields/{ids['field']}", {"label": "x"}),
        ("DELETE", f"/api/v1/fields/{ids['field']}", None),
        ("GET", f"/api/v1/pipelines/{ids['pipeline']}", None),
        ("DELETE", f"/api/v1/pipelines/{ids['pipeline']}", None),
        ("POST", f"/api/v1/pipelines/{ids['pipeline']}/stages", {"name": "x"}),
        ("PATCH", f"/api/v1/stages/{ids['stage']}", {"name": "x"}),
        ("DELETE", f"/api/v1/stages/{ids['stage']}", None),
        ("GET", f"/api/v1/customers/{ids['customer']}", None),
        ("PATCH", f"/api/v1/customers/{ids['customer']}", {"display_name": "x"}),
        ("DELETE", f"/api/v1/customers/{ids['customer']}", None),
        ("GET", f"/api/v1/customers/{ids['customer']}/stage-history", None),
        ("POST", f"/api/v1/customers/{ids['customer']}/stage", {"stage_id": ids["stage"]}),
        ("POST", f"/api/v1/customers/{ids['customer']}/merge", {"other_customer_id": ids["customer"]}),
        ("GET", f"/api/v1/staff/{ids['staff']}", None),
        ("PATCH", f"/api/v1/staff/{ids['staff']}", {"name": "x"}),
        ("GET", f"/api/v1/channel-accounts/{ids['account']}", None),
        ("PATCH", f"/api/v1/channel-accounts/{ids['account']}", {"name": "x"}),
        ("DELETE", f"/api/v1/channel-accounts/{ids['account']}", None),
        ("DELETE", f"/api/v1/api-keys/{ids['key']}", None),
    ]:
        r = api.request(method, path, json=body)
        assert r.status_code == 404, (method, path, r.status_code, r.text)


def test_moving_own_customer_into_foreign_stage_is_404(two_tenants):
    api, ids = two_tenants
    mine = api.post("/api/v1/customers", json={}).json()
    r = api.post(f"/api/v1/customers/{mine['id']}/stage", json={"stage_id": ids["stage"]})
    assert r.status_code == 404
    r = api.post(f"/api/v1/customers/{mine['id']}/merge", json={"other_customer_id": ids["customer"]})
    assert r.status_code == 404


def test_lists_never_include_another_tenants_rows(two_tenants):
    api, ids = two_tenants
    assert api.get("/api/v1/customers").json()["items"] == []
    assert api.get("/api/v1/customers?external_id=shared-id").json()["items"] == []
    assert api.get("/api/v1/events").json()["items"] == []
    assert api.get(f"/api/v1/events?customer_id={ids['customer']}").json()["items"] == []
    assert api.get("/api/v1/pipelines").json() == []
    assert api.get("/api/v1/staff").json() == []
    assert api.get("/api/v1/channel-accounts").json() == []
    assert "secret_field" not in {f["key"] for f in api.get("/api/v1/fields").json()}
    assert len(api.get("/api/v1/api-keys").json()) == 1
    assert api.get("/api/v1/tenants/current").json()["name"] == "acme"


def test_same_identity_in_two_tenants_is_two_customers(two_tenants):
    api, ids = two_tenants
    r = api.post(
        "/api/v1/events",
        json={
            "events": [
                {
                    "type": "x",
                    "idempotency_key": "b-1",
                    "identity": {"channel": "wecom", "external_id": "shared-id"},
                }
            ]
        },
    )
    out = r.json()["results"][0]
    assert out["status"] == "created"  # B's idempotency key does not collide with A's
    assert out["customer_id"] != ids["customer"]


def test_missing_wrong_and_revoked_keys(api, anon_api, sopflow_app):
    before = row_counts(sopflow_app)
    r = anon_api.post("/api/v1/customers", json={})
    assert r.status_code == 401 and "Authorization: Bearer" in r.json()["detail"]
    assert api.as_key("sfk_not-a-real-key").get("/api/v1/customers").status_code == 401
    assert api.as_key("garbage").get("/api/v1/customers").status_code == 401
    assert api.get("/api/v1/customers", headers={"authorization": "Basic abc"}).status_code == 401
    assert row_counts(sopflow_app) == before
    created = api.post("/api/v1/api-keys", json={"scopes": ["read"], "name": "ro"}).json()
    ro = api.as_key(created["api_key"])
    assert ro.get("/api/v1/customers").status_code == 200
    api.delete(f"/api/v1/api-keys/{created['id']}")
    assert ro.get("/api/v1/customers").status_code == 401


def test_scopes(api, sopflow_app):
    read = api.as_key(api.post("/api/v1/api-keys", json={"scopes": ["read"]}).json()["api_key"])
    ingest = api.as_key(api.post("/api/v1/api-keys", json={"scopes": ["ingest"]}).json()["api_key"])
    before = row_counts(sopflow_app)
    r = read.post("/api/v1/customers", json={})
    assert r.status_code == 403 and "needs 'admin'" in r.json()["detail"]
    assert (
        read.post(
            "/api/v1/events",
            json={
                "events": [
                    {"type": "x", "idempotency_key": "k", "identity": {"channel": "c", "external_id": "e"}}
                ]
            },
        ).status_code
        == 403
    )
    assert ingest.get("/api/v1/customers").status_code == 403
    assert read.post("/api/v1/api-keys", json={"scopes": ["admin"]}).status_code == 403
    assert row_counts(sopflow_app) == before
    ok = ingest.post(
        "/api/v1/events",
        json={
            "events": [
                {"type": "x", "idempotency_key": "k", "identity": {"channel": "c", "external_id": "e"}}
            ]
        },
    )
    assert ok.status_code == 200
    assert api.post("/api/v1/api-keys", json={"scopes": ["root"]}).status_code == 422


def test_the_scope_is_checked_before_the_body(api, sopflow_app):
    """A key of too small a scope learns nothing about bodies it may not send."""
    read = api.as_key(api.post("/api/v1/api-keys", json={"scopes": ["read"]}).json()["api_key"])
    before = row_counts(sopflow_app)
    for path, body in (
        ("/api/v1/customers", {"display_name": 5}),
        ("/api/v1/sops", {"kind": "nonsense"}),
        ("/api/v1/events", {"events": "not a list"}),
        ("/api/v1/segments", {}),
    ):
        r = read.post(path, json=body)
        assert r.status_code == 403, (path, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    r = read.request(
        "POST", "/api/v1/customers", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 403
    assert row_counts(sopflow_app) == before


def test_tenant_creation_takes_the_operator_token_before_the_body(anon_api, sopflow_app, monkeypatch):
    monkeypatch.setenv("SOPFLOW_OPERATOR_TOKEN", "op-token-for-tests")
    before = row_counts(sopflow_app)
    missing = anon_api.post("/api/v1/tenants", json={"name": 5})  # a bad body: the token comes first
    assert missing.status_code == 401 and "SOPFLOW_OPERATOR_TOKEN" in missing.json()["detail"]
    wrong = anon_api.post("/api/v1/tenants", json={"name": "x"}, headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 403 and "op-token-for-tests" not in wrong.text
    assert row_counts(sopflow_app) == before
    ok = anon_api.post(
        "/api/v1/tenants", json={"name": "beta"}, headers={"authorization": "Bearer op-token-for-tests"}
    )
    assert ok.status_code == 201 and ok.json()["api_key"].startswith("sfk_"), ok.text
    monkeypatch.delenv("SOPFLOW_OPERATOR_TOKEN")
    off = anon_api.post(
        "/api/v1/tenants", json={"name": "gamma"}, headers={"authorization": "Bearer op-token-for-tests"}
    )
    assert off.status_code == 403  # unset: tenant creation over HTTP is off


def test_a_console_session_never_reaches_another_tenants_rows(two_tenants, sopflow_app, test_client):
    """The operator console's pages and forms, signed in as tenant A, on tenant B's ids."""
    import re

    from tests.console_support import csrf_of, sign_in

    api, ids = two_tenants
    _, key_b = new_tenant(sopflow_app, "initech")
    b = api.as_key(key_b)
    journey = b.post(
        "/api/v1/journeys", json={"name": "B journey", "stages": [{"name": "b1"}, {"name": "b2"}]}
    )
    journey = journey.json()
    customer = b.post("/api/v1/customers", json={"display_name": "B person"}).json()["id"]
    b.post(f"/api/v1/customers/{customer}/stage", json={"stage_id": journey["stages"][0]["id"]})
    sop = b.post(
        "/api/v1/sops",
        json={
            "name": "B sop",
            "definition": {
                "kind": "new_customer",
                "target": {},
                "steps": [{"delay": "1h", "actions": [{"type": "send", "text": "hi"}]}],
            },
        },
    ).json()["id"]
    assert sign_in(test_client, api.key).status_code == 303
    token = csrf_of(test_client.get("/console/board").text)
    before = row_counts(sopflow_app)
    for path in [
        f"/console/customers/{customer}",
        f"/console/customers/{ids['customer']}",
        f"/console/board?journey={journey['id']}",
        f"/console/sops/{sop}",
        f"/console/sops/{sop}/edit",
    ]:
        r = test_client.get(path)
        assert r.status_code == 404, (path, r.status_code)
    for path, data in [
        ("/console/board/move", {"customer_id": customer, "stage_id": journey["stages"][1]["id"]}),
        ("/console/board/move", {"customer_id": customer, "stage_id": ids["stage"]}),
        (f"/console/customers/{customer}", {"display_name": "mine now"}),
        (f"/console/sops/{sop}/edit", {"action": "check", "definition": "{}"}),
        (f"/console/sops/{sop}/start", {}),
        (f"/console/sops/{sop}/stop", {}),
        (f"/console/sops/{sop}/enrollments/1/end", {}),
    ]:
        r = test_client.post(path, data={**data, "_csrf": token})
        assert r.status_code == 404, (path, r.status_code, r.text[:200])
    assert row_counts(sopflow_app) == before
    for page in ("/console/board", "/console/sops", "/console/channels"):
        text = test_client.get(page).text
        assert not re.search(r"B journey|B person|B sop|B's customer|b-log", text), page
