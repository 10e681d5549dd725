"""Inputs that once answered 500: huge integers, deep nesting, extreme offsets.
Each answers a 4xx problem, logs no traceback and changes nothing."""

from __future__ import annotations

import base64
import json

import pytest

from tests.conftest import row_counts

HUGE = "99999999999999999999"
#: Inside 64 bits, outside the 32-bit id columns Postgres has.
BEYOND_32_BITS = str(2**31)

ID_PATHS = [
    "/api/v1/customers/{}",
    "/api/v1/customers/{}/stage-history",
    "/api/v1/sops/{}",
    "/api/v1/sops/{}/stats",
    "/api/v1/sops/{}/enrollments",
    "/api/v1/segments/{}",
    "/api/v1/journeys/{}",
    "/api/v1/journeys/{}/board",
    "/api/v1/staff/{}",
    "/api/v1/channel-accounts/{}",
    "/api/v1/keyword-rules/{}",
    "/api/v1/pipelines/{}",
]


@pytest.mark.parametrize("path", ID_PATHS)
def test_an_id_beyond_64_bits_is_not_found(api, path, capfd):
    for value in (HUGE, BEYOND_32_BITS):
        r = api.get(path.format(value))
        assert r.status_code in (404, 422), r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize(
    "query",
    [
        f"/api/v1/customers?cursor={base64.urlsafe_b64encode(HUGE.encode()).decode()}",
        f"/api/v1/customers?limit={HUGE}",
        f"/api/v1/events?customer_id={HUGE}",
        f"/api/v1/touches?cursor={base64.urlsafe_b64encode(HUGE.encode()).decode()}",
    ],
)
def test_huge_query_integers_are_refused(api, query, capfd):
    r = api.get(query)
    assert r.status_code in (400, 404, 422), r.text
    assert "Traceback" not in capfd.readouterr().err
    assert "SQLite" not in r.text and "psycopg" not in r.text


def test_unauthenticated_callback_with_a_huge_account_id(anon_api, capfd):
    r = anon_api.request("POST", f"/plugins/wecom/callback/{HUGE}?msg_signature=a&timestamp=1&nonce=n")
    assert r.status_code in (404, 422), r.text
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize("path", ["/api/v1/segments/preview", "/api/v1/customers", "/api/v1/events"])
def test_deep_nesting_is_refused_before_parsing(api, sopflow_app, path):
    before = row_counts(sopflow_app)
    body = "[" * 5000 + "]" * 5000
    r = api.request("POST", path, content=body.encode(), headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert "nest" in r.json()["detail"]
    assert row_counts(sopflow_app) == before


@pytest.mark.parametrize("stamp", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59"])
def test_an_occurred_at_out_of_range_is_422_on_its_path(api, sopflow_app, stamp):
    before = row_counts(sopflow_app)
    events = [
        {"type": "x", "idempotency_key": "a", "identity": {"channel": "c", "external_id": "e"}},
        {
            "type": "x",
            "idempotency_key": "b",
            "identity": {"channel": "c", "external_id": "e"},
            "occurred_at": stamp,
        },
    ]
    r = api.post("/api/v1/events", json={"events": events})
    assert r.status_code == 422, r.text
    assert "events[1].occurred_at" in json.dumps(r.json())
    assert row_counts(sopflow_app) == before


def test_free_text_is_bounded_and_the_bound_is_in_the_schema(api, sopflow_app):
    before = row_counts(sopflow_app)
    r = api.post("/api/v1/customers", json={"display_name": "x" * 500_000})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "display_name"
    assert row_counts(sopflow_app) == before
    schema = api.get("/schema/openapi.json").json()
    customer = schema["components"]["schemas"]["CustomerCreate"]["properties"]["display_name"]
    assert customer["maxLength"] == 200
    get_one = schema["paths"]["/api/v1/customers/{customer_id}"]["get"]["parameters"]
    (param,) = [p for p in get_one if p["name"] == "customer_id"]
    assert param["schema"]["maximum"] == 2**31 - 1 and param["schema"]["minimum"] == 1


def test_a_nul_character_in_a_free_json_document_is_422_on_its_path(api, sopflow_app):
    """Postgres's JSONB cannot store U+0000: a payload or channel config holding one
    was a 500 on the Postgres back-end (found by the fuzz test)."""
    before = row_counts(sopflow_app)
    event = {
        "type": "x",
        "idempotency_key": "nul",
        "identity": {"channel": "c", "external_id": "e"},
        "payload": {"ok": "fine", "notes": ["a", {"deep": "b\x00c"}]},
    }
    r = api.post("/api/v1/events", json={"events": [event]})
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["events[0].payload.notes[1].deep"]
    account = {"channel": "log", "name": "main", "config": {"x\x00": 1, "y": "\x00"}, "secrets": {}}
    r = api.post("/api/v1/channel-accounts", json=account)
    assert r.status_code == 422, r.text
    assert sorted(e["field"] for e in r.json()["errors"]) == ["config.x\\u0000", "config.y"]
    assert row_counts(sopflow_app) == before
