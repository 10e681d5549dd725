"""One customer across channels and staff: relations (every staff member who
follows a customer, with add time, source and remark; the owner the first
adder), ending one relation, merging relations, and shared keys (unionid,
phone) landing a new channel identity on the customer who holds them."""

from __future__ import annotations

from typing import Any


def _event(
    key: str, type_: str, channel: str, external_id: str, staff: str | None = None, **more: Any
) -> dict:
    ident = {"channel": channel, "external_id": external_id}
    if staff:
        ident["staff_external_id"] = staff
    return {"type": type_, "idempotency_key": key, "identity": ident, **more}


def _post(api: Any, *events: dict) -> list[dict]:
    r = api.post("/api/v1/events", json={"events": list(events)})
    assert r.status_code == 200, r.text
    return r.json()["results"]


def _customer(api: Any, customer_id: int) -> dict:
    r = api.get(f"/api/v1/customers/{customer_id}")
    assert r.status_code == 200, r.text
    return r.json()


def _staff_id(api: Any, external_id: str) -> int:
    items = api.get("/api/v1/staff").json()
    return next(m["id"] for m in items if m["external_id"] == external_id)


def test_second_adder_adds_a_relation_not_a_customer_and_keeps_the_owner(api):
    first = _post(
        api,
        _event(
            "a1",
            "customer.added",
            "wecom",
            "wmX",
            "alice",
            occurred_at="2026-01-01T08:00:00Z",
            source="live-1",
            payload={"state": "live-1"},
        ),
    )[0]
    second = _post(
        api,
        _event(
            "a2",
            "customer.added",
            "wecom",
            "wmX",
            "bob",
            occurred_at="2026-01-03T08:00:00Z",
            payload={"state": "live-2", "remark": "VIP"},
        ),
    )[0]
    assert second["customer_id"] == first["customer_id"] and not second["customer_created"]
    c = _customer(api, first["customer_id"])
    assert c["owner_staff_id"] == _staff_id(api, "alice")
    rels = [
        (r["staff_external_id"], r["added_at"][:10], r["source"], r["remark"], r["active"])
        for r in c["relations"]
    ]
    assert rels == [
        ("alice", "2026-01-01", "live-1", None, True),
        ("bob", "2026-01-03", "live-2", "VIP", True),
    ]


def test_deleted_by_one_member_ends_that_relation_only(api):
    cid = _post(api, _event("a1", "customer.added", "wecom", "wmY", "alice"))[0]["customer_id"]
    _post(api, _event("a2", "customer.added", "wecom", "wmY", "bob"))
    _post(api, _event("d1", "customer.churned", "wecom", "wmY", "alice"))
    c = _customer(api, cid)
    assert not c["churned"], "bob still follows the customer"
    assert {r["staff_external_id"]: r["active"] for r in c["relations"]} == {"alice": False, "bob": True}
    assert c["relations"][0]["end_reason"] == "customer.churned"
    assert c["owner_staff_id"] == _staff_id(api, "alice")  # the first adder stays the owner
    _post(api, _event("d2", "customer.deleted_by_staff", "wecom", "wmY", "bob"))
    _post(api, _event("d3", "customer.churned", "wecom", "wmY", "bob"))
    c = _customer(api, cid)
    assert c["churned"] and not any(r["active"] for r in c["relations"])


def test_relations_list_from_the_channel(api):
    rels = [
        {"staff_external_id": "alice", "added_at": "2025-12-01T00:00:00Z", "source": "live-1", "remark": "A"},
        {"staff_external_id": "carol", "added_at": "2025-11-01T00:00:00Z", "remark": "C"},
    ]
    cid = _post(api, _event("a1", "customer.added", "wecom", "wmZ", "alice"))[0]["customer_id"]
    _post(api, _event("p1", "customer.updated", "wecom", "wmZ", relations=rels))
    c = _customer(api, cid)
    got = {r["staff_external_id"]: (r["added_at"][:10], r["remark"]) for r in c["relations"]}
    # the channel's add time is the truth: alice's relation takes the earlier createtime
    assert got == {"alice": ("2025-12-01", "A"), "carol": ("2025-11-01", "C")}
    assert c["owner_staff_id"] == _staff_id(api, "alice")  # never moved by a later relation


def test_personal_contact_with_the_phone_of_a_wecom_customer_lands_on_it(api):
    cid = _post(api, _event("a1", "customer.added", "wecom", "wmP", "alice"))[0]["customer_id"]
    r = api.patch(
        f"/api/v1/customers/{cid}", json={"identities": [{"channel": "phone", "external_id": "138"}]}
    )
    assert r.status_code == 200, r.text
    out = _post(
        api,
        _event(
            "f1",
            "customer.added",
            "personal_wechat",
            "wxid_p",
            "wxid_me",
            shared_identities=[{"channel": "phone", "external_id": "138"}],
        ),
    )[0]
    assert out["customer_id"] == cid and not out["customer_created"]
    c = _customer(api, cid)
    assert {(i["channel"], i["external_id"]) for i in c["identities"]} >= {("personal_wechat", "wxid_p")}
    assert [(r["channel"], r["staff_external_id"]) for r in c["relations"]] == [
        ("wecom", "alice"),
        ("personal_wechat", "wxid_me"),
    ]
    assert c["owner_staff_id"] == _staff_id(api, "alice")


def test_unionid_wins_over_phone_and_a_late_unionid_merges(api):
    a = _post(
        api,
        _event(
            "a1",
            "customer.added",
            "wecom",
            "wmU",
            "alice",
            shared_identities=[{"channel": "unionid", "external_id": "oU1"}],
        ),
    )[0]["customer_id"]
    b = _post(
        api,
        _event(
            "b1",
            "customer.added",
            "forms",
            "f-1",
            shared_identities=[{"channel": "phone", "external_id": "139"}],
        ),
    )[0]["customer_id"]
    assert a != b
    keys = [{"channel": "phone", "external_id": "139"}, {"channel": "unionid", "external_id": "oU1"}]
    out = _post(
        api, _event("f1", "customer.added", "personal_wechat", "wxid_u", "me", shared_identities=keys)
    )[0]
    assert out["customer_id"] == a  # the unionid's customer, though the phone names another
    # a personal friend first, WeCom's unionid learnt later: the two become one, relations merged
    p = _post(
        api,
        _event(
            "f2",
            "customer.added",
            "personal_wechat",
            "wxid_v",
            "me",
            shared_identities=[{"channel": "unionid", "external_id": "oU2"}],
        ),
    )[0]["customer_id"]
    w = _post(api, _event("a2", "customer.added", "wecom", "wmV", "bob"))[0]["customer_id"]
    merged = _post(
        api,
        _event(
            "p2",
            "customer.updated",
            "wecom",
            "wmV",
            shared_identities=[{"channel": "unionid", "external_id": "oU2"}],
        ),
    )[0]
    assert merged["customer_id"] == p != w
    c = _customer(api, p)
    assert sorted((r["channel"], r["staff_external_id"]) for r in c["relations"]) == [
        ("personal_wechat", "me"),
        ("wecom", "bob"),
    ]
    assert api.get(f"/api/v1/customers/{w}").status_code == 404


def test_bad_shared_key_and_relation_are_named_and_nothing_is_written(api):
    bad = _event(
        "x1",
        "customer.added",
        "wecom",
        "wmB",
        "alice",
        shared_identities=[{"channel": "email", "external_id": "a@b"}],
        relations=[{"staff_external_id": "bob", "added_at": "yesterday"}],
    )
    r = api.post("/api/v1/events", json={"events": [bad]})
    assert r.status_code == 422, r.text
    fields = {e["field"] for e in r.json()["errors"]}
    assert {"events[0].shared_identities[0].channel", "events[0].relations[0].added_at"} <= fields
    assert api.get("/api/v1/customers", params={"external_id": "wmB"}).json()["items"] == []


def test_a_transfer_event_moves_owner_relation_and_identity_to_the_taker(api):
    [added] = _post(
        api,
        _event(
            "t1", "customer.added", "wecom", "wmMove", "zhangsan", source="qr_a", payload={"remark": "老客"}
        ),
    )
    _post(api, _event("t2", "customer.added", "wecom", "wmMove", "wangwu"))  # a second member follows too
    [moved] = _post(
        api,
        _event(
            "t3",
            "customer.transferred",
            "wecom",
            "wmMove",
            "lisi",
            payload={"from_staff_external_id": "zhangsan"},
        ),
    )
    assert moved["customer_id"] == added["customer_id"] and not moved["customer_created"]
    c = _customer(api, added["customer_id"])
    assert c["owner_staff_id"] == _staff_id(api, "lisi")
    assert c["identities"] == [{"channel": "wecom", "external_id": "wmMove", "staff_external_id": "lisi"}]
    rel = {r["staff_external_id"]: r for r in c["relations"]}
    assert (rel["zhangsan"]["active"], rel["zhangsan"]["end_reason"]) == (False, "customer.transferred")
    assert (rel["lisi"]["active"], rel["lisi"]["source"], rel["lisi"]["remark"]) == (True, "qr_a", "老客")
    assert rel["wangwu"]["active"] and not c["churned"]


def test_a_transfer_event_without_its_staff_is_refused_naming_the_fields(api):
    [added] = _post(api, _event("u1", "customer.added", "wecom", "wmStay", "zhangsan"))
    before = _customer(api, added["customer_id"])
    no_giver = _event("u2", "customer.transferred", "wecom", "wmStay", "lisi")
    same = _event(
        "u3", "customer.transferred", "wecom", "wmStay", "lisi", payload={"from_staff_external_id": "lisi"}
    )
    no_taker = _event(
        "u4", "customer.transferred", "wecom", "wmStay", payload={"from_staff_external_id": "zhangsan"}
    )
    r = api.post("/api/v1/events", json={"events": [no_giver, same, no_taker]})
    assert r.status_code == 422, r.text
    fields = {e["field"] for e in r.json()["errors"]}
    assert fields == {
        "events[0].payload.from_staff_external_id",
        "events[1].payload.from_staff_external_id",
        "events[2].identity.staff_external_id",
    }
    assert _customer(api, added["customer_id"]) == before
