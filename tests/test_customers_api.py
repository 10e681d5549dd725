"""Fields, customers with identities, ingest, merge, listing and stage moves."""

from __future__ import annotations

import pytest


@pytest.fixture
def fields(api):
    for body in (
        {"key": "order_count", "type": "number", "label": "Orders"},
        {"key": "city", "type": "text"},
        {"key": "vip", "type": "bool"},
        {"key": "birthday", "type": "date"},
        {"key": "last_order_at", "type": "datetime"},
        {"key": "intent", "type": "choice", "choices": ["high", "low"]},
        {"key": "interests", "type": "multi_choice", "choices": ["skin", "hair", "teeth"]},
    ):
        r = api.post("/api/v1/fields", json=body)
        assert r.status_code == 201, r.text
    return api


def test_acceptance_two_identities_one_customer(fields):
    api = fields
    r = api.post(
        "/api/v1/customers",
        json={
            "display_name": "王小明",
            "fields": {"order_count": 1, "city": "上海"},
            "identities": [
                {"channel": "wecom", "external_id": "wmABC", "staff_external_id": "zhangsan"},
                {"channel": "phone", "external_id": "+8613800000000"},
            ],
        },
    )
    assert r.status_code == 201, r.text
    customer = r.json()
    assert customer["owner_staff_id"] is not None  # first adding staff member is the owner
    events = [
        {
            "type": "message.received",
            "idempotency_key": "m1",
            "identity": {"channel": "wecom", "external_id": "wmABC"},
            "payload": {"text": "多少钱"},
        },
        {
            "type": "order.paid",
            "idempotency_key": "o1",
            "identity": {"channel": "phone", "external_id": "+8613800000000"},
            "fields": {"order_count": 2, "last_order_at": "2026-01-05T10:00:00+08:00"},
        },
    ]
    r = api.post("/api/v1/events", json={"events": events})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == ["created", "created"]
    assert {x["customer_id"] for x in results} == {customer["id"]}
    got = api.get(f"/api/v1/customers/{customer['id']}").json()
    assert got["fields"]["order_count"] == 2
    assert got["fields"]["last_order_at"] == "2026-01-05T02:00:00+00:00"
    listing = api.get("/api/v1/customers").json()
    assert [c["id"] for c in listing["items"]] == [customer["id"]]


def test_repeated_idempotency_key_is_duplicate_and_changes_nothing(fields):
    api = fields
    ev = {
        "type": "order.paid",
        "idempotency_key": "order-77",
        "identity": {"channel": "shop", "external_id": "buyer-1"},
        "fields": {"order_count": 1},
    }
    first = api.post("/api/v1/events", json={"events": [ev]}).json()["results"][0]
    assert first["status"] == "created" and first["customer_created"] is True
    again = api.post("/api/v1/events", json={"events": [{**ev, "fields": {"order_count": 5}}, ev]})
    assert [x["status"] for x in again.json()["results"]] == ["duplicate", "duplicate"]
    assert all(x["event_id"] == first["event_id"] for x in again.json()["results"])
    customer = api.get(f"/api/v1/customers/{first['customer_id']}").json()
    assert customer["fields"]["order_count"] == 1
    assert len(api.get("/api/v1/events").json()["items"]) == 1


def test_duplicate_within_one_batch(fields):
    ev = {"type": "x.y", "idempotency_key": "k", "identity": {"channel": "c", "external_id": "e"}}
    r = fields.post("/api/v1/events", json={"events": [ev, ev]})
    assert [x["status"] for x in r.json()["results"]] == ["created", "duplicate"]


def test_field_validation_names_field_and_fix(fields, sopflow_app):
    from tests.conftest import row_counts

    before = row_counts(sopflow_app)
    r = fields.post(
        "/api/v1/customers",
        json={
            "fields": {
                "ordr_count": 1,
                "vip": "yes",
                "intent": "medium",
                "birthday": "2026-13-01",
                "last_order_at": "2026-01-01T10:00:00",
            }
        },
    )
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    errors = {e["field"]: e["message"] for e in r.json()["errors"]}
    assert "did you mean 'order_count'" in errors["fields.ordr_count"]
    assert "true or false" in errors["fields.vip"]
    assert "'medium' is not one of" in errors["fields.intent"]
    assert "YYYY-MM-DD" in errors["fields.birthday"]
    assert "no UTC offset" in errors["fields.last_order_at"]
    assert row_counts(sopflow_app) == before


def test_bad_event_rejects_whole_batch(fields, sopflow_app):
    from tests.conftest import row_counts

    before = row_counts(sopflow_app)
    good = {"type": "a.b", "idempotency_key": "g", "identity": {"channel": "c", "external_id": "1"}}
    bad = {
        "type": "a.b",
        "idempotency_key": "b",
        "identity": {"channel": "c", "external_id": "2"},
        "fields": {"order_count": "many"},
    }
    r = fields.post("/api/v1/events", json={"events": [good, bad]})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "events[1].fields.order_count"
    assert row_counts(sopflow_app) == before


def test_merge_moves_identities_tags_and_events(fields):
    api = fields
    a = api.post(
        "/api/v1/customers",
        json={
            "identities": [{"channel": "wecom", "external_id": "w1"}],
            "tags": ["vip"],
            "fields": {"city": "北京"},
        },
    ).json()
    b = api.post(
        "/api/v1/customers",
        json={
            "identities": [{"channel": "phone", "external_id": "p1"}],
            "tags": ["拔牙"],
            "fields": {"city": "上海", "order_count": 3},
        },
    ).json()
    api.post(
        "/api/v1/events",
        json={
            "events": [
                {"type": "x", "idempotency_key": "e1", "identity": {"channel": "phone", "external_id": "p1"}}
            ]
        },
    )
    r = api.post(f"/api/v1/customers/{a['id']}/merge", json={"other_customer_id": b["id"]})
    assert r.status_code == 200, r.text
    merged = r.json()
    assert merged["tags"] == ["vip", "拔牙"]
    assert merged["fields"] == {"city": "北京", "order_count": 3}
    assert {i["external_id"] for i in merged["identities"]} == {"w1", "p1"}
    assert api.get(f"/api/v1/customers/{b['id']}").status_code == 404
    r = api.post(
        "/api/v1/events",
        json={
            "events": [
                {"type": "x", "idempotency_key": "e2", "identity": {"channel": "phone", "external_id": "p1"}}
            ]
        },
    )
    assert r.json()["results"][0]["customer_id"] == a["id"]
    events = api.get(f"/api/v1/events?customer_id={a['id']}").json()["items"]
    assert [e["type"] for e in events].count("x") == 2  # b's event moved to a, plus the new one
    assert [e["type"] for e in events].count("customer.created") == 2  # both API creations


def test_identity_taken_by_another_customer_is_refused(fields):
    api = fields
    api.post("/api/v1/customers", json={"identities": [{"channel": "wecom", "external_id": "w1"}]})
    r = api.post("/api/v1/customers", json={"identities": [{"channel": "wecom", "external_id": "w1"}]})
    assert r.status_code == 422
    assert "merge" in r.json()["errors"][0]["message"]


def test_list_filters_and_cursor_pagination(fields):
    api = fields
    ids = []
    for i in range(7):
        tags = ["even"] if i % 2 == 0 else []
        ids.append(
            api.post(
                "/api/v1/customers",
                json={"display_name": f"c{i}", "tags": tags, "source": "qr_a" if i < 3 else "qr_b"},
            ).json()["id"]
        )
    seen, cursor = [], None
    while True:
        url = "/api/v1/customers?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = api.get(url).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    assert [c["display_name"] for c in api.get("/api/v1/customers?tag=even").json()["items"]] == [
        "c0",
        "c2",
        "c4",
        "c6",
    ]
    assert len(api.get("/api/v1/customers?source=qr_a").json()["items"]) == 3
    assert api.get("/api/v1/customers?cursor=%%%").status_code == 422
    assert api.get("/api/v1/customers?limit=0").status_code == 422


def test_stage_move_records_history_and_event(fields, manual_clock):
    from datetime import timedelta

    api = fields
    p = api.post(
        "/api/v1/pipelines",
        json={
            "name": "lifecycle",
            "stages": [
                {"name": "激活"},
                {"name": "兴趣"},
                {"name": "孵化"},
                {"name": "决策"},
                {"name": "签单"},
            ],
        },
    ).json()
    stages = {s["name"]: s["id"] for s in p["stages"]}
    c = api.post("/api/v1/customers", json={"display_name": "x"}).json()
    r = api.post(f"/api/v1/customers/{c['id']}/stage", json={"stage_id": stages["激活"]})
    assert r.status_code == 200 and r.json()["moved"] is True
    manual_clock.advance(timedelta(days=2))
    api.post(f"/api/v1/customers/{c['id']}/stage", json={"stage_id": stages["兴趣"]})
    again = api.post(f"/api/v1/customers/{c['id']}/stage", json={"stage_id": stages["兴趣"]})
    assert again.json()["moved"] is False
    history = api.get(f"/api/v1/customers/{c['id']}/stage-history").json()
    assert [h["stage_id"] for h in history] == [stages["激活"], stages["兴趣"]]
    assert history[0]["left_at"] == history[1]["entered_at"]
    assert history[1]["left_at"] is None and history[1]["cause"] == "api"
    changes = api.get("/api/v1/events?type=stage.changed").json()["items"]
    assert [e["payload"]["to_stage"] for e in changes] == ["激活", "兴趣"]
    assert changes[1]["payload"]["from_stage"] == "激活"
    board = api.get(f"/api/v1/customers?stage_id={stages['兴趣']}").json()["items"]
    assert [x["id"] for x in board] == [c["id"]]


def test_pipeline_and_stage_validation(api):
    r = api.post("/api/v1/pipelines", json={"name": "p", "stages": [{"name": "a"}, {"name": "a"}]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "stages[1].name"
    p = api.post("/api/v1/pipelines", json={"name": "p", "stages": [{"name": "a"}]}).json()
    s = api.post(f"/api/v1/pipelines/{p['id']}/stages", json={"name": "b", "position": 0}).json()
    assert [x["name"] for x in api.get(f"/api/v1/pipelines/{p['id']}").json()["stages"]] == ["b", "a"]
    assert api.patch(f"/api/v1/stages/{s['id']}", json={"position": 5}).status_code == 200
    assert [x["name"] for x in api.get(f"/api/v1/pipelines/{p['id']}").json()["stages"]] == ["a", "b"]
    assert api.post("/api/v1/pipelines", json={"name": "p", "stages": [{"name": "x"}]}).status_code == 409


def test_field_definitions_crud(api):
    assert api.post("/api/v1/fields", json={"key": "Bad Key", "type": "text"}).status_code == 422
    r = api.post("/api/v1/fields", json={"key": "tier", "type": "color"})
    assert "use one of" in r.json()["errors"][0]["message"]
    assert api.post("/api/v1/fields", json={"key": "tier", "type": "choice"}).status_code == 422
    assert (
        api.post("/api/v1/fields", json={"key": "tier", "type": "choice", "choices": ["a"]}).status_code
        == 201
    )
    assert api.post("/api/v1/fields", json={"key": "tier", "type": "text"}).status_code == 409
    assert api.patch("/api/v1/fields/tier", json={"add_choices": ["b"]}).json()["choices"] == ["a", "b"]
    c = api.post("/api/v1/customers", json={"fields": {"tier": "b"}}).json()
    assert api.delete("/api/v1/fields/tier").status_code == 409
    api.patch(f"/api/v1/customers/{c['id']}", json={"fields": {"tier": None}})
    assert api.delete("/api/v1/fields/tier").status_code == 204
    builtin = api.get("/api/v1/fields/first_added_at").json()
    assert builtin["read_only"] is True and builtin["plugin"] == "default_fields"
    assert api.delete("/api/v1/fields/first_added_at").status_code == 409
    r = api.post("/api/v1/customers", json={"fields": {"first_added_at": "2026-01-01T00:00:00Z"}})
    assert "read-only" in r.json()["errors"][0]["message"]


def test_customer_delete_erases_identity(api):
    c = api.post(
        "/api/v1/customers", json={"identities": [{"channel": "wecom", "external_id": "w9"}], "tags": ["t"]}
    ).json()
    api.post(
        "/api/v1/events",
        json={
            "events": [
                {"type": "x", "idempotency_key": "z", "customer_id": c["id"], "payload": {"text": "私人"}}
            ]
        },
    )
    assert api.delete(f"/api/v1/customers/{c['id']}").status_code == 204
    assert api.get(f"/api/v1/customers/{c['id']}").status_code == 404
    ev = api.get("/api/v1/events").json()["items"][0]
    assert ev["customer_id"] is None and ev["payload"] == {}
