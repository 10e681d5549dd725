"""Saved segments and the preview, and segments inside SOP targets (F15)."""

from __future__ import annotations

from tests.sop_support import add_customer, create_sop, send


def test_preview_counts_and_pages(api):
    api.post("/api/v1/fields", json={"key": "order_count", "type": "number"})
    for i in range(25):
        add_customer(api, f"wm-{i}", fields={"order_count": i}, tags=["防晒霜"] if i % 2 else [])
    rule = {"all": [{"tags": {"any_of": ["防晒霜"]}}, {"field": "order_count", "op": "gte", "value": 5}]}
    r = api.post("/api/v1/segments/preview", json={"rule": rule, "limit": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == 10  # odd numbers 5..23
    assert [c["fields"]["order_count"] for c in body["sample"]] == [5, 7, 9, 11, 13]
    nxt = api.post(
        "/api/v1/segments/preview", json={"rule": rule, "limit": 5, "after_id": body["next_after_id"]}
    ).json()
    assert [c["fields"]["order_count"] for c in nxt["sample"]] == [15, 17, 19, 21, 23]


def test_segment_errors_name_the_path(api):
    api.post("/api/v1/fields", json={"key": "order_count", "type": "number"})
    r = api.post(
        "/api/v1/segments",
        json={
            "name": "x",
            "rule": {
                "all": [
                    {"tags": {"any_of": ["a"]}},
                    {"any": [{"field": "ordr_count", "op": "gt", "value": 1}]},
                ]
            },
        },
    )
    assert r.status_code == 422
    error = r.json()["errors"][0]
    assert error["field"] == "rule.all[1].any[0].field" and "did you mean 'order_count'" in error["message"]
    r = api.post("/api/v1/segments/preview", json={"rule": {"segment": 999}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "rule.segment"


def test_segment_as_sop_target(api, sopflow_app):
    seg = api.post("/api/v1/segments", json={"name": "dental", "rule": {"tags": {"any_of": ["拔牙"]}}}).json()
    assert api.get("/api/v1/segments").json()[0]["name"] == "dental"
    add_customer(api, "wm-tooth", tags=["拔牙"])
    add_customer(api, "wm-other")
    sop = create_sop(
        api,
        "after-care",
        {
            "kind": "nurture",
            "target": {"rule": {"segment": seg["id"]}},
            "steps": [{"delay": "1h", "actions": [send("care")]}],
        },
    )
    enrolled = api.get(f"/api/v1/sops/{sop}/enrollments").json()["items"]
    assert len(enrolled) == 1
    assert api.get(f"/api/v1/sops/{sop}").json()["definition"]["target"]["rule"] == {
        "tags": {"any_of": ["拔牙"]}
    }
    assert api.get(f"/api/v1/sops/{sop}").json()["audience"]["state"] == "done"
