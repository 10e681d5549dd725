"""Keyword rules (F6): matching, validation, reload without restart, the event chain."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import row_counts
from tests.sop_support import add_customer, create_sop, send

RULES = "/api/v1/keyword-rules"


def rule(api: Any, name: str, keywords: list[str], actions: list[dict[str, Any]], **extra: Any) -> dict:
    r = api.post(RULES, json={"name": name, "keywords": keywords, "actions": actions, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def add_tag(tag: str) -> dict[str, Any]:
    return {"type": "add_tag", "tag": tag}


def message(api: Any, external_id: str, text: str, key: str) -> dict[str, Any]:
    r = api.post(
        "/api/v1/events",
        json={
            "events": [
                {
                    "type": "message.received",
                    "idempotency_key": key,
                    "identity": {"channel": "wecom", "external_id": external_id},
                    "payload": {"text": text},
                }
            ]
        },
    )
    assert r.status_code == 200, r.text
    return r.json()["results"][0]


def customer(api: Any, customer_id: int) -> dict[str, Any]:
    r = api.get(f"/api/v1/customers/{customer_id}")
    assert r.status_code == 200, r.text
    return r.json()


def keyword_events(api: Any, customer_id: int) -> list[dict[str, Any]]:
    items = api.get(f"/api/v1/events?type=customer.updated&customer_id={customer_id}").json()["items"]
    return [e for e in items if e["payload"].get("cause") == "keyword_rule"]


@pytest.fixture
def fields(api):
    for body in (
        {"key": "intent", "type": "choice", "choices": ["price", "repurchase"]},
        {"key": "order_count", "type": "number"},
        {"key": "last_asked_at", "type": "datetime"},
        {"key": "interests", "type": "multi_choice", "choices": ["education", "skin"]},
    ):
        assert api.post("/api/v1/fields", json=body).status_code == 201
    return api


def test_overlapping_keywords_both_match(api):
    rule(api, "优惠", ["优惠"], [add_tag("问优惠")])
    rule(api, "优惠券", ["优惠券"], [add_tag("问优惠券")])
    result = message(api, "wm-1", "有优惠券吗？", "m1")
    assert set(customer(api, result["customer_id"])["tags"]) == {"问优惠", "问优惠券"}
    hits = api.post(f"{RULES}/test", json={"text": "有优惠券吗？"}).json()["hits"]
    assert [(h["keyword"], h["start"], h["end"]) for h in hits] == [("优惠", 1, 3), ("优惠券", 1, 4)]


def test_seed_examples_and_one_event_per_message(fields):
    api = fields
    price = rule(
        api,
        "询价",
        ["多少钱", "价格"],
        [add_tag("询价"), {"type": "set_field", "field": "intent", "value": "price"}],
    )
    rule(api, "太贵", ["太贵"], [add_tag("需激活"), {"type": "remove_tag", "tag": "询价"}])
    rule(api, "教育", ["教育", "学习"], [{"type": "set_field", "field": "interests", "value": ["education"]}])
    first = message(api, "wm-1", "这个多少钱？价格表有吗？多少钱", "m1")
    c = customer(api, first["customer_id"])
    assert c["tags"] == ["询价"] and c["fields"]["intent"] == "price"
    events = keyword_events(api, c["id"])
    assert len(events) == 1  # three keyword hits, one rule, one event
    assert events[0]["payload"]["rules"] == [price["id"]]
    assert events[0]["payload"]["keywords"] == ["多少钱", "价格"]
    assert events[0]["payload"]["tags_added"] == ["询价"]
    assert events[0]["payload"]["fields"] == {"intent": "price"}
    # a later rule (by id) wins a conflict: 太贵 removes 询价 that 询价 adds
    message(api, "wm-1", "多少钱？太贵了。我想学习", "m2")
    c = customer(api, c["id"])
    assert c["tags"] == ["需激活"] and c["fields"]["interests"] == ["education"]
    # nothing changes: no event
    message(api, "wm-1", "太贵", "m3")
    assert len(keyword_events(api, c["id"])) == 2


def test_case_folding_and_case_sensitive_rules(api):
    rule(api, "price", ["Price", "STRASSE"], [add_tag("price")])
    rule(api, "sku", ["SKU"], [add_tag("sku")], case_sensitive=True)
    c = message(api, "wm-1", "what is the PRICE of this sku?", "m1")["customer_id"]
    assert customer(api, c)["tags"] == ["price"]
    message(api, "wm-1", "SKU 42", "m2")
    assert customer(api, c)["tags"] == ["price", "sku"]
    # offsets point into the original text even where folding lengthens it (ß → ss)
    body = api.post(f"{RULES}/test", json={"text": "Die Straße, bitte"}).json()
    assert [(h["keyword"], h["start"], h["end"]) for h in body["hits"]] == [("STRASSE", 4, 10)]
    # a case-insensitive rule de-duplicates keywords by their folded form
    r = rule(api, "dup", ["Hi", "hi", " HI ", "hello"], [add_tag("greet")])
    assert r["keywords"] == ["Hi", "hello"]
    r2 = rule(api, "dup-cs", ["Hi", "hi"], [add_tag("greet")], case_sensitive=True)
    assert r2["keywords"] == ["Hi", "hi"]


def test_set_field_values_are_checked_and_normalised(fields, sopflow_app):
    api = fields
    r = rule(
        api,
        "asked",
        ["price"],
        [{"type": "set_field", "field": "last_asked_at", "value": "2026-01-05T10:00:00+08:00"}],
    )
    assert r["actions"][0]["value"] == "2026-01-05T02:00:00+00:00"
    before = row_counts(sopflow_app)
    bad = api.post(
        RULES,
        json={
            "name": "bad",
            "keywords": ["ok", "", "x" * 101, 7],
            "actions": [
                {"type": "set_field", "field": "ordr_count", "value": 1},
                {"type": "set_field", "field": "order_count", "value": "3"},
                {"type": "set_field", "field": "intent", "value": "cheap"},
                {"type": "set_field", "field": "intent"},
                {"type": "add_tag", "tag": " "},
                {"type": "tag_it"},
                {"type": "add_tag", "tag": "x", "colour": "red"},
            ],
        },
    )
    assert bad.status_code == 422, bad.text
    assert bad.headers["content-type"].startswith("application/problem+json")
    errors = {e["field"]: e["message"] for e in bad.json()["errors"]}
    assert "empty keyword" in errors["keywords[1]"]
    assert "longer than 100" in errors["keywords[2]"]
    assert "string" in errors["keywords[3]"]
    assert errors["actions[0].field"] == "unknown field 'ordr_count' — did you mean 'order_count'?"
    assert "expected a number" in errors["actions[1].value"]
    assert "'cheap' is not one of" in errors["actions[2].value"]
    assert "give the value" in errors["actions[3].value"]
    assert "non-empty tag" in errors["actions[4].tag"]
    assert "add_tag, remove_tag, set_field" in errors["actions[5].type"]
    assert "unknown setting" in errors["actions[6].colour"]
    assert row_counts(sopflow_app) == before
    c = message(api, "wm-1", "Price?", "m1")["customer_id"]
    assert customer(api, c)["fields"]["last_asked_at"] == "2026-01-05T02:00:00+00:00"


def test_limits_and_bad_requests_change_nothing(api, sopflow_app, monkeypatch):
    import sopflow.engine.keywords.rules as kw

    r = rule(api, "a", ["a"], [add_tag("a")])
    before = row_counts(sopflow_app)
    cases = [
        ({"name": "b", "keywords": ["k"] * 0, "actions": [add_tag("b")]}, "keywords"),
        ({"name": "b", "keywords": [f"k{i}" for i in range(2001)], "actions": [add_tag("b")]}, "keywords"),
        ({"name": "b", "keywords": ["k"], "actions": [add_tag(f"t{i}") for i in range(11)]}, "actions"),
        ({"name": "", "keywords": ["k"], "actions": [add_tag("b")]}, "name"),
        ({"name": "b", "keywords": ["k"], "actions": [add_tag("b")], "colour": 1}, "colour"),
        ({"name": "b", "keywords": "k", "actions": [add_tag("b")]}, "keywords"),
        ({"name": "b", "keywords": ["k\u0000"], "actions": [add_tag("b")]}, "keywords[0]"),
        ({"name": "b", "keywords": ["k"], "actions": [add_tag("b\u0000")]}, "actions[0].tag"),
    ]
    for body, field in cases:
        bad = api.post(RULES, json=body)
        assert bad.status_code == 422, (body, bad.text)
        assert field in {e["field"] for e in bad.json()["errors"]}, bad.json()
    taken = api.post(RULES, json={"name": "a", "keywords": ["x"], "actions": [add_tag("x")]})
    assert taken.status_code == 409
    monkeypatch.setattr(kw, "MAX_RULES", 1)
    full = api.post(RULES, json={"name": "c", "keywords": ["c"], "actions": [add_tag("c")]})
    assert full.status_code == 422 and full.json()["errors"][0]["field"] == "keyword_rules"
    bad_patch = api.patch(f"{RULES}/{r['id']}", json={"keywords": ["ok", " "], "actions": []})
    assert bad_patch.status_code == 422
    assert {e["field"] for e in bad_patch.json()["errors"]} == {"keywords[1]", "actions"}
    assert api.get(f"{RULES}/{r['id']}").json() == r
    assert row_counts(sopflow_app) == before
    assert api.get(f"{RULES}/999").status_code == 404
    assert api.delete(f"{RULES}/999").status_code == 404


def test_crud_and_scopes(api, sopflow_app):
    from sopflow_sdk.testing.harness import new_tenant

    r = rule(api, "询价", ["多少钱"], [add_tag("询价")])
    assert api.get(RULES).json() == [r]
    changed = api.patch(f"{RULES}/{r['id']}", json={"keywords": ["价格"], "enabled": False}).json()
    assert changed["keywords"] == ["价格"] and changed["enabled"] is False and changed["name"] == "询价"
    reader = api.as_key(_key(sopflow_app, api.tenant_id, ["read"]))
    assert reader.get(RULES).status_code == 200
    assert reader.post(f"{RULES}/test", json={"text": "价格"}).status_code == 200
    denied = reader.post(RULES, json={"name": "x", "keywords": ["x"], "actions": [add_tag("x")]})
    assert denied.status_code == 403
    assert reader.patch(f"{RULES}/{r['id']}", json={"enabled": True}).status_code == 403
    assert reader.delete(f"{RULES}/{r['id']}").status_code == 403
    # another tenant neither sees the rule nor gets tagged by it
    _, other_key = new_tenant(sopflow_app, "other")
    other = api.as_key(other_key)
    assert other.get(RULES).json() == []
    assert other.get(f"{RULES}/{r['id']}").status_code == 404
    api.patch(f"{RULES}/{r['id']}", json={"enabled": True})
    c = message(other, "wm-x", "价格", "o1")["customer_id"]
    assert customer(other, c)["tags"] == []
    assert api.delete(f"{RULES}/{r['id']}").status_code == 204
    assert api.get(RULES).json() == []


def _key(app: Any, tenant_id: int, scopes: list[str]) -> str:
    from sopflow.engine.customers.tenants import issue_api_key

    with app.tx() as s:
        return issue_api_key(s, tenant_id, scopes, app.now())[1]


def test_dry_run_changes_nothing(fields, sopflow_app):
    api = fields
    a = rule(
        api,
        "询价",
        ["多少钱", "价格"],
        [add_tag("询价"), {"type": "set_field", "field": "intent", "value": "price"}],
    )
    b = rule(api, "off", ["钱"], [add_tag("钱")], enabled=False)
    before = row_counts(sopflow_app)
    body = api.post(f"{RULES}/test", json={"text": "多少钱，价格？"}).json()
    assert [(h["rule_id"], h["keyword"], h["start"], h["end"]) for h in body["hits"]] == [
        (a["id"], "多少钱", 0, 3),
        (a["id"], "价格", 4, 6),
    ]
    assert body["hit_count"] == 2
    assert body["rules"] == [{"id": a["id"], "name": "询价", "actions": a["actions"]}]
    assert body["tags_add"] == ["询价"] and body["fields"] == {"intent": "price"}
    with_off = api.post(f"{RULES}/test", json={"text": "多少钱", "include_disabled": True}).json()
    assert {h["rule_id"] for h in with_off["hits"]} == {a["id"], b["id"]}
    assert api.post(f"{RULES}/test", json={"text": 5}).status_code == 422
    assert api.post(f"{RULES}/test", json={"text": "x" * 20_001}).status_code == 422
    assert row_counts(sopflow_app) == before


def test_rules_reload_without_restart_across_two_app_instances(api, sopflow_app, manual_clock):
    """Two processes on one database: a change made through one takes effect on
    the next message handled by the other, which had compiled the old rules."""
    from litestar.testing import TestClient
    from sopflow.api.app import build_api
    from sopflow_sdk.testing.harness import ApiClient, make_test_app

    other_app = make_test_app(sopflow_app.settings.database_url, clock=manual_clock)
    try:
        with TestClient(build_api(other_app), raise_server_exceptions=False) as client:
            other = ApiClient(client, api.key, api.tenant_id)
            r = rule(api, "询价", ["多少钱"], [add_tag("询价")])
            c = message(other, "wm-1", "多少钱", "m1")["customer_id"]  # other compiles the rules
            assert customer(api, c)["tags"] == ["询价"]
            # change the keywords through the first instance, same clock instant
            assert api.patch(f"{RULES}/{r['id']}", json={"keywords": ["价格"]}).status_code == 200
            api.patch(f"/api/v1/customers/{c}", json={"tags_remove": ["询价"]})
            message(other, "wm-1", "多少钱", "m2")
            assert customer(api, c)["tags"] == []
            message(other, "wm-1", "价格", "m3")
            assert customer(api, c)["tags"] == ["询价"]
            # a new rule, then switching one off, then deleting
            rule(api, "太贵", ["太贵"], [add_tag("需激活")])
            message(other, "wm-1", "太贵", "m4")
            assert customer(api, c)["tags"] == ["询价", "需激活"]
            api.patch(f"{RULES}/{r['id']}", json={"enabled": False})
            api.patch(f"/api/v1/customers/{c}", json={"tags_remove": ["询价", "需激活"]})
            message(other, "wm-1", "价格太贵", "m5")
            assert customer(api, c)["tags"] == ["需激活"]
            for x in api.get(RULES).json():
                assert api.delete(f"{RULES}/{x['id']}").status_code == 204
            api.patch(f"/api/v1/customers/{c}", json={"tags_remove": ["需激活"]})
            message(other, "wm-1", "价格太贵", "m6")
            assert customer(api, c)["tags"] == []
            # the same name and id may come back with other words: still picked up
            rule(api, "询价", ["多少钱"], [add_tag("again")])
            message(other, "wm-1", "多少钱", "m7")
            assert customer(api, c)["tags"] == ["again"]
    finally:
        other_app.dispose()


def test_reprocessing_the_same_message_adds_nothing(api, sopflow_app):
    from sopflow.engine.customers.ingest import event_to_dict
    from sopflow.models import Event
    from sopflow.worker.runtime import evaluate as evaluate_event

    rule(api, "询价", ["多少钱"], [add_tag("询价")])
    result = message(api, "wm-1", "多少钱", "m1")
    c = result["customer_id"]
    assert len(keyword_events(api, c)) == 1
    api.patch(f"/api/v1/customers/{c}", json={"tags_remove": ["询价"]})
    with sopflow_app.tx() as s:
        ev = event_to_dict(s.get(Event, result["event_id"]))
    counts = evaluate_event(sopflow_app, api.tenant_id, ev)  # a retried evaluation
    assert counts["keyword_rules"] == 0
    assert customer(api, c)["tags"] == []
    assert len(keyword_events(api, c)) == 1
    again = message(api, "wm-1", "多少钱", "m1")  # a redelivered webhook
    assert again["status"] == "duplicate"
    assert customer(api, c)["tags"] == [] and len(keyword_events(api, c)) == 1


def test_message_tag_event_chain_enrols_in_sop(api):
    """message → keyword rule → tag → customer.updated (caused by the message) → SOP entry."""
    rule(api, "询价", ["多少钱"], [add_tag("询价")])
    sop = create_sop(
        api,
        "询价跟进",
        {
            "kind": "nurture",
            "target": {"rule": {"tags": {"any_of": ["询价"]}}},
            "steps": [{"delay": "1h", "actions": [send("报价单")]}],
        },
    )
    add_customer(api, "wm-1")
    assert api.get(f"/api/v1/sops/{sop}/enrollments").json()["items"] == []
    result = message(api, "wm-1", "请问多少钱", "m1")
    (updated,) = keyword_events(api, result["customer_id"])
    assert updated["causation_id"] == result["event_id"]
    assert updated["depth"] == 1 and updated["source"] == "sopflow"
    assert updated["idempotency_key"] == f"keyword:{result['event_id']}"
    assert updated["payload"]["changed"] == ["tags_add"]
    enrolled = api.get(f"/api/v1/sops/{sop}/enrollments").json()["items"]
    assert [e["customer_id"] for e in enrolled] == [result["customer_id"]]


def test_messages_without_text_or_rules_are_ignored(api, sopflow_app):
    from sopflow.models import Event

    c = message(api, "wm-1", "多少钱", "m1")["customer_id"]  # no rules at all
    rule(api, "询价", ["多少钱"], [add_tag("询价")])
    r = api.post(
        "/api/v1/events",
        json={
            "events": [
                {"type": "message.received", "idempotency_key": k, "customer_id": c, "payload": p}
                for k, p in (("m2", {}), ("m3", {"text": 42}), ("m4", {"image": "x"}))
            ]
        },
    )
    assert r.status_code == 200
    assert customer(api, c)["tags"] == []
    with sopflow_app.tx() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Event).where(Event.source == "sopflow")) == 0


# --------------------------------------------------------------------------- property test

ALPHABET = "aAbBsSßẞİi\u0307Ωω优惠券价格😀 "
texts = st.one_of(st.text(alphabet=ALPHABET, max_size=40), st.text(max_size=40))
words = st.one_of(st.text(alphabet=ALPHABET, min_size=1, max_size=4), st.text(min_size=1, max_size=4))


def naive(text: str, rules: list[Any]) -> set[tuple[int, str, int, int]]:
    from sopflow.engine.keywords.matching import fold

    folded, origin = fold(text)
    out = set()
    for r in rules:
        for word in r.keywords:
            hay, key = (text, word) if r.case_sensitive else (folded, word.casefold())
            for i in range(len(hay) - len(key) + 1):
                if hay.startswith(key, i):
                    if r.case_sensitive:
                        out.add((r.id, word, i, i + len(key)))
                    else:
                        out.add((r.id, word, origin[i], origin[i + len(key) - 1] + 1))
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=texts,
    sensitive=st.lists(words, max_size=6),
    insensitive=st.lists(words, max_size=6),
    shared=st.lists(words, max_size=3),
)
def test_aho_corasick_agrees_with_a_naive_scan(text, sensitive, insensitive, shared):
    from sopflow.engine.keywords.matching import CompiledRule, CompiledRules

    rules = [
        CompiledRule(1, "s", tuple(sensitive + shared), (), case_sensitive=True),
        CompiledRule(2, "i", tuple(insensitive + shared), (), case_sensitive=False),
        CompiledRule(3, "i2", tuple(shared), (), case_sensitive=False),
    ]
    compiled = CompiledRules(rules)
    hits = compiled.match(text)
    got = [(h.rule_id, h.keyword, h.start, h.end) for h in hits]
    assert len(got) == len(set(got))
    assert set(got) == naive(text, rules)
    for h in hits:
        assert 0 <= h.start < h.end <= len(text)
        if h.rule_id == 1:
            assert text[h.start : h.end] == h.keyword
        else:
            assert h.keyword.casefold() in text[h.start : h.end].casefold()
