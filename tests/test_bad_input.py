"""Malformed, oversized and mistyped requests: a clear 4xx and nothing written."""

from __future__ import annotations

from tests.conftest import row_counts


def test_malformed_json(api, sopflow_app):
    before = row_counts(sopflow_app)
    r = api.request(
        "POST",
        "/api/v1/customers",
        content=b'{"display_name": ',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "not valid JSON" in r.json()["detail"]
    assert row_counts(sopflow_app) == before


def test_wrong_types_and_unknown_keys_name_the_field(api, sopflow_app):
    before = row_counts(sopflow_app)
    r = api.post("/api/v1/customers", json={"display_name": 5})
    assert r.status_code in (400, 422)
    assert r.json()["errors"][0]["field"] == "display_name"
    r = api.post("/api/v1/customers", json={"nickname": "x"})
    assert r.status_code in (400, 422) and "nickname" in r.text
    r = api.post("/api/v1/events", json={"events": [{"type": "x"}]})
    assert r.status_code in (400, 422) and "idempotency_key" in r.text
    assert row_counts(sopflow_app) == before


def test_body_over_the_size_limit(api, sopflow_app):
    before = row_counts(sopflow_app)
    limit = sopflow_app.settings.max_body_bytes
    r = api.request(
        "POST",
        "/api/v1/customers",
        content=b'{"display_name": "' + b"x" * limit + b'"}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413
    assert str(limit) in r.json()["detail"]
    assert row_counts(sopflow_app) == before


def test_too_many_events_in_a_batch(api, sopflow_app):
    n = sopflow_app.settings.max_batch_events + 1
    events = [
        {"type": "x", "idempotency_key": f"k{i}", "identity": {"channel": "c", "external_id": "e"}}
        for i in range(n)
    ]
    r = api.post("/api/v1/events", json={"events": events})
    assert r.status_code == 422 and "split it" in r.json()["detail"]
    assert api.post("/api/v1/events", json={"events": []}).status_code == 422


def test_unknown_route_and_method(api):
    r = api.get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.json()["status"] == 404
    assert api.put("/api/v1/customers", json={}).status_code == 405


def test_bad_timezone_and_naive_datetimes(api, sopflow_app):
    before = row_counts(sopflow_app)
    r = api.post("/api/v1/customers", json={"timezone": "Mars/Olympus"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "timezone"
    r = api.post(
        "/api/v1/events",
        json={
            "events": [
                {
                    "type": "x",
                    "idempotency_key": "k",
                    "occurred_at": "yesterday",
                    "identity": {"channel": "c", "external_id": "e"},
                }
            ]
        },
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "events[0].occurred_at"
    assert row_counts(sopflow_app) == before


def test_clock_advance_refused_without_manual_clock(sopflow_database, request):
    from litestar.testing import TestClient
    from sopflow.api.app import build_api
    from sopflow.clock import SystemClock
    from sopflow_sdk.testing.harness import ApiClient, make_test_app, new_tenant

    app = make_test_app(
        sopflow_database.url_for_test(request.node.name), clock=SystemClock(), env={"SOPFLOW_CLOCK": "system"}
    )
    _, key = new_tenant(app, "t")
    with TestClient(build_api(app)) as client:
        r = ApiClient(client, key).post("/api/v1/clock/advance", json={"days": 1})
    app.dispose()
    assert r.status_code == 409 and "SOPFLOW_CLOCK=manual" in r.json()["detail"]


def test_manual_clock_advances(api, manual_clock):
    start = manual_clock.now()
    r = api.post("/api/v1/clock/advance", json={"days": 5, "hours": 2})
    assert r.status_code == 200
    assert (manual_clock.now() - start).total_seconds() == 5 * 86400 + 7200
    assert api.post("/api/v1/clock/advance", json={"days": -1}).status_code == 422


def test_sop_keys_outside_definition_say_where_they_go(api, sopflow_app):
    before = row_counts(sopflow_app)
    r = api.post("/api/v1/sops", json={"name": "welcome", "kind": "new_customer", "steps": []})
    assert r.status_code == 422
    [error] = r.json()["errors"]
    assert error["field"] in ("kind", "steps")
    assert 'inside "definition"' in error["message"]
    nested = api.post(
        "/api/v1/customers", json={"identities": [{"channel": "c", "external_id": "e", "x": 1}]}
    )
    assert nested.status_code == 422
    assert nested.json()["errors"][0]["field"] == "identities[0].x"
    assert row_counts(sopflow_app) == before


def test_a_body_is_read_with_json_types_not_coerced(api, sopflow_app):
    """``0``/``1`` for a boolean and a number as text are refused with the field
    named, as the OpenAPI states, instead of being read as ``false``/``true``/5."""
    staff = api.post("/api/v1/staff", json={"external_id": "zs", "name": "Z"}).json()
    before = row_counts(sopflow_app)
    for path, method, body, field in (
        (f"/api/v1/staff/{staff['id']}", "PATCH", {"left": 1}, "left"),
        ("/api/v1/plugins/wecom", "PUT", {"enabled": 0}, "enabled"),
        (
            "/api/v1/events",
            "POST",
            {"events": [{"type": "x", "idempotency_key": "k", "customer_id": str(staff["id"])}]},
            "events[0].customer_id",
        ),
    ):
        r = api.request(method, path, json=body)
        assert r.status_code == 422, (path, r.text)
        assert [e["field"] for e in r.json()["errors"]] == [field]
        assert "Expected" in r.json()["errors"][0]["message"]
    assert row_counts(sopflow_app) == before
    assert api.get(f"/api/v1/staff/{staff['id']}").json()["left_at"] is None
    # the JSON types themselves still pass
    assert api.patch(f"/api/v1/staff/{staff['id']}", json={"left": True}).status_code == 200


def test_a_nul_anywhere_in_a_body_is_refused_by_name(api, sopflow_app):
    """Postgres stores no NUL in text or JSONB: every JSON body is checked for
    one, in keys and strings at any depth, before anything is written (on
    Postgres these were 500s), and the schema says so on every string."""
    before = row_counts(sopflow_app)
    for path, body, fields in (
        ("/api/v1/fields", {"key": "a1", "type": "text", "label": "a\x00b"}, ["label"]),
        ("/api/v1/fields", {"key": "a2", "type": "choice", "choices": ["ok", "x\x00"]}, ["choices[1]"]),
        ("/api/v1/staff", {"external_id": "zs", "name": "Z\x00"}, ["name"]),
        ("/api/v1/journeys", {"name": "j\x00", "pipeline_id": 1}, ["name"]),
        (
            "/api/v1/events",
            {"events": [{"type": "x", "idempotency_key": "k", "customer_id": 1, "payload": {"a\x00": 1}}]},
            ["events[0].payload.a\\u0000"],
        ),
    ):
        r = api.post(path, json=body)
        assert r.status_code == 422, (path, r.text)
        assert [e["field"] for e in r.json()["errors"]] == fields
        assert all("NUL" in e["message"] for e in r.json()["errors"])
    assert row_counts(sopflow_app) == before
    schemas = api.get("/schema/openapi.json").json()["components"]["schemas"]
    assert schemas["FieldCreate"]["properties"]["label"]["pattern"] == "^[^\\u0000]*$"
    assert schemas["StaffCreate"]["properties"]["name"]["pattern"] == "^[^\\u0000]*$"
