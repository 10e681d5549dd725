"""Live QR codes through sopflow's API against the fake WeCom: list, update,
delete, bad input, and a source change that steers the next scan."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

from wecom_support import WeComApp

UPDATE = "externalcontact/update_contact_way"


def _create(env: WeComApp, source: str, staff: list[str], remark: str = "") -> dict[str, Any]:
    made = env.api.post(f"{env.base}/live-codes", json={"source": source, "staff": staff, "remark": remark})
    assert made.status_code == 201, made.text
    return made.json()


def _customer(env: WeComApp, external_id: str) -> dict[str, Any]:
    [customer] = env.api.get(f"/api/v1/customers?channel=wecom&external_id={external_id}").json()["items"]
    return customer


def test_list_update_delete_round_trip(wecom_app: WeComApp) -> None:
    env, fake = wecom_app, wecom_app.fake
    single = _create(env, "poster_metro", ["zhangsan"], "地铁海报")
    multi = _create(env, "fair_spring", ["zhangsan", "lisi"])

    listed = env.api.get(f"{env.base}/live-codes")
    assert listed.status_code == 200, listed.text
    by_id = {c["config_id"]: c for c in listed.json()["items"]}
    assert listed.json()["next_cursor"] is None
    assert by_id[single["config_id"]] | {"created_between": None} == {
        "config_id": single["config_id"],
        "source": "poster_metro",
        "staff": ["zhangsan"],
        "remark": "地铁海报",
        "qr_code": single["qr_code"],
        "multi_person": False,
        "created_between": None,
    }
    start, end = (datetime.fromisoformat(t) for t in by_id[multi["config_id"]]["created_between"])
    assert start <= env.clock.now() <= end
    assert by_id[multi["config_id"]]["staff"] == ["zhangsan", "lisi"]

    changed = env.api.patch(
        f"{env.base}/live-codes/{multi['config_id']}", json={"staff": ["lisi", "wangwu"], "remark": "春季"}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["staff"] == ["lisi", "wangwu"] and changed.json()["source"] == "fair_spring"
    way = fake.contact_ways[multi["config_id"]]
    assert (way["user"], way["remark"], way["state"], way["type"]) == (
        ["lisi", "wangwu"],
        "春季",
        "fair_spring",
        2,
    )
    assert way["skip_verify"] is True  # settings the route does not manage are kept
    relisted = {c["config_id"]: c for c in env.api.get(f"{env.base}/live-codes").json()["items"]}
    assert relisted[multi["config_id"]]["remark"] == "春季"

    assert env.api.delete(f"{env.base}/live-codes/{single['config_id']}").status_code == 204
    assert single["config_id"] not in fake.contact_ways
    remaining = env.api.get(f"{env.base}/live-codes").json()["items"]
    assert [c["config_id"] for c in remaining] == [multi["config_id"]]
    gone = env.api.delete(f"{env.base}/live-codes/{single['config_id']}")
    assert gone.status_code == 404


def _console_code(env: WeComApp, source: str, staff: list[str]) -> str:
    """A code made in the WeCom console (straight through WeCom's API, not sopflow)."""
    from sopflow_wecom.client import WeComClient

    client = WeComClient(env.fake.corp_id, env.fake.secret, base_url=env.fake.base_url)
    try:
        way = client.add_contact_way(type=1, scene=2, state=source, user=staff, remark="", skip_verify=True)
    finally:
        client.close()
    return str(way["config_id"])


def test_the_list_is_read_from_the_plugins_table(wecom_app: WeComApp) -> None:
    """Codes made through sopflow are listed without asking WeCom, even while WeCom fails."""
    env, fake = wecom_app, wecom_app.fake
    first = _create(env, "poster_a", ["zhangsan"])
    env.clock.advance(timedelta(minutes=1))
    second = _create(env, "poster_b", ["lisi"])
    before = len(fake.requests)
    for path in ("externalcontact/list_contact_way", "externalcontact/get_contact_way"):
        fake.fail_next(path, -1, "system busy")
    page = env.api.get(f"{env.base}/live-codes?limit=1").json()
    assert [c["config_id"] for c in page["items"]] == [second["config_id"]] and page["next_cursor"]
    rest = env.api.get(f"{env.base}/live-codes?limit=1&cursor={page['next_cursor']}").json()
    assert [c["config_id"] for c in rest["items"]] == [first["config_id"]] and rest["next_cursor"] is None
    start, end = (datetime.fromisoformat(t) for t in rest["items"][0]["created_between"])
    assert start == end == env.clock.now() - timedelta(minutes=1)  # made here: the exact moment
    assert len(fake.requests) == before  # not one WeCom call


def test_sync_adopts_console_codes_back_through_wecoms_windows(wecom_app: WeComApp) -> None:
    """WeCom lists ways by creation time, 90 days at a time by default: the sync walks
    back to 2021-07-10, adopts codes made in the console, and drops deleted ones."""
    env = wecom_app
    old = _console_code(env, "autumn_2025", ["zhangsan"])
    made_old = env.clock.now()
    env.clock.advance(timedelta(days=200))
    new = _console_code(env, "spring_2026", ["zhangsan"])
    gone = _create(env, "poster_gone", ["lisi"])
    env.fake.contact_ways.pop(gone["config_id"])  # deleted in the console
    env.clock.advance(timedelta(hours=1))
    listed = env.api.get(f"{env.base}/live-codes").json()["items"]
    assert [c["config_id"] for c in listed] == [gone["config_id"]]  # only what sopflow made

    synced = env.api.post(f"{env.base}/live-codes/sync")
    assert synced.status_code == 200, synced.text
    assert synced.json() == {"adopted": 2, "updated": 0, "unchanged": 0, "removed": 1}
    first = env.api.get(f"{env.base}/live-codes?limit=1").json()
    assert [c["config_id"] for c in first["items"]] == [new] and first["next_cursor"]
    second = env.api.get(f"{env.base}/live-codes?limit=1&cursor={first['next_cursor']}").json()
    assert [c["config_id"] for c in second["items"]] == [old] and second["next_cursor"] is None
    assert second["items"][0]["source"] == "autumn_2025"
    start, end = (datetime.fromisoformat(t) for t in second["items"][0]["created_between"])
    assert start <= made_old <= end and end - start < timedelta(days=90)
    windows = [r.body for r in env.fake.requests if r.path == "externalcontact/list_contact_way"]
    assert all(0 < w["end_time"] - w["start_time"] < 90 * 86_400 for w in windows)
    assert min(w["start_time"] for w in windows) == 1_625_846_400  # WeCom lists nothing older
    again = env.api.post(f"{env.base}/live-codes/sync").json()
    assert again == {"adopted": 0, "updated": 0, "unchanged": 2, "removed": 0}


def test_new_source_steers_the_next_scan(wecom_app: WeComApp) -> None:
    env, fake = wecom_app, wecom_app.fake
    code = _create(env, "poster_a", ["zhangsan"])
    fake.scan(code["config_id"], "wmBefore", "李雷")
    assert _customer(env, "wmBefore")["source"] == "poster_a"

    changed = env.api.patch(f"{env.base}/live-codes/{code['config_id']}", json={"source": "poster_b"})
    assert changed.status_code == 200, changed.text
    assert fake.contact_ways[code["config_id"]]["state"] == "poster_b"
    fake.scan(code["config_id"], "wmAfter", "韩梅梅")
    assert _customer(env, "wmAfter")["source"] == "poster_b"
    assert _customer(env, "wmBefore")["source"] == "poster_a"  # a customer's source is set once


def test_bad_input_names_the_field_and_changes_nothing(wecom_app: WeComApp) -> None:
    env, fake = wecom_app, wecom_app.fake
    single = _create(env, "poster_a", ["zhangsan"])
    path = f"{env.base}/live-codes/{single['config_id']}"
    before = copy.deepcopy(fake.contact_ways)

    for body, field in (
        ({"source": "x" * 31}, "source"),
        ({"source": ""}, "source"),
        ({"staff": []}, "staff"),
        ({"staff": ["a", ""]}, "staff"),
        ({"staff": ["a", "a"]}, "staff"),
        ({"staff": [f"u{i}" for i in range(101)]}, "staff"),
        ({"remark": "r" * 31}, "remark"),
        ({"remark": None}, "remark"),
        ({"type": 2}, "type"),
        ({"staff": ["zhangsan", "lisi"]}, "staff"),  # a single-person code stays single
    ):
        answer = env.api.patch(path, json=body)
        assert answer.status_code == 422, (body, answer.text)
        [error] = answer.json()["errors"]
        assert error["field"] == field and error["message"], answer.text
    assert env.api.patch(path, json={}).status_code == 422
    assert (
        env.api.patch(path, content=b"not json", headers={"content-type": "application/json"}).status_code
        == 400
    )
    assert env.api.patch(f"{env.base}/live-codes/cwUnknown", json={"remark": "x"}).status_code == 404
    assert env.api.client.patch(path, json={"remark": "x"}).status_code == 401
    other = f"/plugins/wecom/accounts/{env.account_id + 99}/live-codes"
    assert env.api.patch(f"{other}/{single['config_id']}", json={"remark": "x"}).status_code == 404
    assert env.api.get(other).status_code == 404
    for query, field in (("limit=0", "limit"), ("limit=101", "limit"), ("cursor=%25%25", "cursor")):
        answer = env.api.get(f"{env.base}/live-codes?{query}")
        assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == field, answer.text

    assert fake.contact_ways == before
    assert fake.count(UPDATE) == 0


def test_wecom_errors_are_mapped(wecom_app: WeComApp) -> None:
    env, fake = wecom_app, wecom_app.fake
    code = _create(env, "poster_a", ["zhangsan"])
    before = copy.deepcopy(fake.contact_ways)
    fake.fail_next(UPDATE, 45009, "api freq out of limit")
    refused = env.api.patch(f"{env.base}/live-codes/{code['config_id']}", json={"remark": "x"})
    assert refused.status_code == 502 and "45009" in refused.json()["detail"], refused.text
    assert fake.contact_ways == before
    fake.fail_next("externalcontact/list_contact_way", -1, "system busy")
    assert env.api.post(f"{env.base}/live-codes/sync").status_code == 502
    assert env.api.get(f"{env.base}/live-codes").json()["items"][0]["remark"] == ""  # unchanged
    fake.fail_next("externalcontact/del_contact_way", 45033, "api concurrent out of limit")
    assert env.api.delete(f"{env.base}/live-codes/{code['config_id']}").status_code == 502
    assert code["config_id"] in fake.contact_ways


def test_the_console_shows_the_live_codes_escaped(wecom_app: WeComApp) -> None:
    """register_console_pages: the codes as a page and a panel on the console's channels page."""
    import re

    env = wecom_app
    _create(env, "poster_metro", ["zhangsan"], "<b>地铁</b>")
    client = env.api.client
    form = client.get("/console/sign-in").text
    token = re.search(r'name="_sign_in" value="([^"]+)"', form).group(1)
    signed = client.post(
        "/console/sign-in", data={"api_key": env.api.key, "_sign_in": token}, follow_redirects=False
    )
    assert signed.status_code == 303
    channels = client.get("/console/channels")
    assert channels.status_code == 200 and 'data-plugin="wecom"' in channels.text
    assert "poster_metro" in channels.text and "&lt;b&gt;地铁&lt;/b&gt;" in channels.text
    page = client.get("/console/plugins/wecom/live-codes", params={"lang": "zh"})
    assert page.status_code == 200 and "来源" in page.text and "zhangsan" in page.text
