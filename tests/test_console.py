"""The operator console over HTTP: sessions (cookie, expiry, sign-out, CSRF, scopes),
the board, the customer page's validated edits with their audit trail, the SOP
data page and editor, channels, and the labels in both languages."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sopflow_sdk.testing.harness import new_tenant

from tests.conftest import row_counts
from tests.console_support import board_setup, csrf_of, sign_in
from tests.sop_support import add_customer, create_sop, log_channel, run_days, send

PAGES = [
    "/console/",
    "/console/board",
    "/console/sops",
    "/console/channels",
    "/console/customers/1",
    "/console/sops/1",
    "/console/sops/1/edit",
    "/console/plugins/x/y",
]
POSTS = [
    "/console/board/move",
    "/console/customers/1",
    "/console/sops/1/edit",
    "/console/sops/1/start",
    "/console/sops/1/stop",
    "/console/sops/1/enrollments/1/end",
    "/console/sign-out",
]


def _key(app, tenant_id: int, scopes: str) -> str:
    from sopflow.engine.customers.tenants import issue_api_key

    with app.tx() as s:
        return issue_api_key(s, tenant_id, scopes.split(","), app.now())[1]


def test_nothing_is_reachable_without_a_session(api, test_client):
    for path in PAGES:
        r = test_client.get(path, follow_redirects=False)
        assert r.status_code in (302, 303) and r.headers["location"] == "/console/sign-in", path
    for path in POSTS:
        r = test_client.post(path, data={"customer_id": "1", "stage_id": "1"}, follow_redirects=False)
        assert r.status_code == 401, path
    # a made-up or an API key as the cookie is no session either
    test_client.cookies.set("sopflow_console", api.key, path="/console")
    assert test_client.get("/console/board", follow_redirects=False).status_code == 302


def test_sign_in_sets_a_strict_httponly_cookie_and_never_shows_the_key(api, test_client, sopflow_app):
    r = sign_in(test_client, api.key)
    assert r.status_code == 303 and r.headers["location"] == "/console/board"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("sopflow_console="))
    attrs = {p.strip().split("=")[0].lower(): p for p in cookie.split(";")}
    assert "httponly" in attrs and attrs["samesite"].strip().lower() == "samesite=strict"
    assert attrs["max-age"].strip() == f"Max-Age={sopflow_app.settings.console_session_minutes * 60}"
    assert attrs["path"].strip() == "Path=/console"
    assert api.key not in cookie
    board = test_client.get("/console/board")
    assert board.status_code == 200 and api.key not in board.text and "localStorage" not in board.text
    assert "script-src 'self'" in board.headers["content-security-policy"]
    from sopflow.models import ConsoleSession

    with sopflow_app.tx() as s:
        stored = s.scalar(sa.select(ConsoleSession))
        assert stored.token_hash != cookie.split(";")[0].split("=", 1)[1] and len(stored.token_hash) == 64


def test_a_bad_key_or_an_ingest_key_is_refused_at_the_field(api, test_client, sopflow_app):
    r = sign_in(test_client, "sfk_not-a-key")
    assert r.status_code == 422 and "unknown or revoked" in r.text and 'aria-invalid="true"' in r.text
    r = sign_in(test_client, _key(sopflow_app, api.tenant_id, "ingest"))
    assert r.status_code == 422 and "ingest-only" in r.text
    assert test_client.get("/console/board", follow_redirects=False).status_code == 302


def test_sign_in_without_its_form_token_is_refused(api, test_client):
    r = test_client.post("/console/sign-in", data={"api_key": api.key}, follow_redirects=False)
    assert r.status_code == 403
    assert test_client.get("/console/board", follow_redirects=False).status_code == 302


def test_sign_out_ends_the_session_on_the_server(api, test_client, sopflow_app):
    sign_in(test_client, api.key)
    cookie = test_client.cookies.get("sopflow_console")
    board = test_client.get("/console/board")
    r = test_client.post("/console/sign-out", data={"_csrf": csrf_of(board.text)}, follow_redirects=False)
    assert r.status_code == 303
    test_client.cookies.set("sopflow_console", cookie, path="/console")  # a copied cookie
    assert test_client.get("/console/board", follow_redirects=False).status_code == 302


def test_a_session_expires_and_dies_with_its_key(api, test_client, sopflow_app, manual_clock):
    sign_in(test_client, api.key)
    assert test_client.get("/console/board").status_code == 200
    manual_clock.advance(timedelta(minutes=sopflow_app.settings.console_session_minutes + 1))
    assert test_client.get("/console/board", follow_redirects=False).status_code == 302
    second = _key(sopflow_app, api.tenant_id, "read")
    sign_in(test_client, second)
    assert test_client.get("/console/board").status_code == 200
    key_id = next(k["id"] for k in api.get("/api/v1/api-keys").json() if k["scopes"] == ["read"])
    assert api.delete(f"/api/v1/api-keys/{key_id}").status_code == 204
    assert test_client.get("/console/board", follow_redirects=False).status_code == 302


def test_forms_without_the_csrf_token_are_refused_and_change_nothing(api, test_client, sopflow_app):
    setup = board_setup(api)
    sign_in(test_client, api.key)
    before = row_counts(sopflow_app)
    customer = setup["customers"][0]
    for path, data in [
        ("/console/board/move", {"customer_id": customer, "stage_id": setup["stages"][1]}),
        (f"/console/customers/{customer}", {"display_name": "changed"}),
        ("/console/sign-out", {}),
    ]:
        for token in (None, "wrong"):
            r = test_client.post(
                path, data={**data, **({"_csrf": token} if token else {})}, follow_redirects=False
            )
            assert r.status_code == 403, (path, token)
    assert row_counts(sopflow_app) == before
    assert test_client.get("/console/board").status_code == 200  # still signed in


def test_a_read_key_sees_but_cannot_change(api, test_client, sopflow_app):
    setup = board_setup(api)
    sign_in(test_client, _key(sopflow_app, api.tenant_id, "read"))
    board = test_client.get("/console/board")
    assert (
        board.status_code == 200
        and "Ann 安" in board.text
        and 'action="/console/board/move"' not in board.text
    )
    r = test_client.post(
        "/console/board/move",
        data={
            "customer_id": setup["customers"][0],
            "stage_id": setup["stages"][1],
            "_csrf": csrf_of(board.text),
        },
    )
    assert r.status_code == 403
    stages = api.get(f"/api/v1/customers/{setup['customers'][0]}").json()["stages"]
    assert [s["stage_id"] for s in stages] == [setup["stages"][0]]


def test_the_board_moves_a_card_as_a_manual_move(api, test_client):
    setup = board_setup(api)
    sign_in(test_client, api.key)
    board = test_client.get("/console/board")
    counts = re.findall(r"data-count>(\d+)<", board.text)
    assert counts == ["2", "0", "0"]
    customer = setup["customers"][0]
    r = test_client.post(
        "/console/board/move",
        data={"customer_id": customer, "stage_id": setup["stages"][2], "_csrf": csrf_of(board.text)},
        headers={"accept": "application/json"},
    )
    assert r.status_code == 200 and r.json() == {
        "moved": True,
        "customer_id": customer,
        "stage_id": setup["stages"][2],
    }
    history = api.get(f"/api/v1/customers/{customer}/stage-history").json()
    assert history[-1]["stage_id"] == setup["stages"][2] and history[-1]["cause"] == "manual"
    assert re.findall(r"data-count>(\d+)<", test_client.get("/console/board").text) == ["1", "0", "1"]


def test_the_board_filters_and_pages_its_columns(api, test_client):
    setup = board_setup(api, [f"Cust {i}" for i in range(23)])
    staff = api.post("/api/v1/staff", json={"external_id": "lisi", "name": "李四"}).json()["id"]
    api.patch(f"/api/v1/customers/{setup['customers'][0]}", json={"tags_add": ["hot"]})
    sign_in(test_client, api.key)
    first = test_client.get("/console/board")
    assert first.text.count('class="card"') == 20 and "Cust 22" in first.text and 'Cust 2"' not in first.text
    more = re.search(r'class="more" href="([^"]+)"', first.text).group(1).replace("&amp;", "&")
    rest = test_client.get(more)
    assert rest.text.count('class="card"') == 3 and "Cust 0" in rest.text
    hot = test_client.get("/console/board", params={"tag": "hot"})
    assert hot.text.count('class="card"') == 1 and re.findall(r"data-count>(\d+)<", hot.text) == [
        "1",
        "0",
        "0",
    ]
    named = test_client.get("/console/board", params={"q": "Cust 1"})
    assert named.text.count('class="card"') == 11  # Cust 1, 10-19
    assert test_client.get("/console/board", params={"owner": staff}).text.count('class="card"') == 0
    assert "李四" in first.text  # the owner filter lists the tenant's staff


def _customer_with_fields(api):
    api.post("/api/v1/fields", json={"key": "age", "type": "number", "label": "Age 年龄"})
    api.post("/api/v1/fields", json={"key": "level", "type": "choice", "choices": ["a", "b"]})
    return api.post("/api/v1/customers", json={"display_name": "Ann", "fields": {"age": 30}}).json()["id"]


def test_a_bad_field_value_is_shown_at_the_field_and_nothing_changes(api, test_client, sopflow_app):
    customer = _customer_with_fields(api)
    sign_in(test_client, api.key)
    page = test_client.get(f"/console/customers/{customer}")
    assert page.status_code == 200 and 'id="f-age"' in page.text and 'value="30"' in page.text
    before = row_counts(sopflow_app)
    r = test_client.post(
        f"/console/customers/{customer}",
        data={
            "_csrf": csrf_of(page.text),
            "display_name": "Renamed",
            "field.age": "old",
            "field.level": "a",
            "tags": "x",
        },
    )
    assert r.status_code == 422
    error = re.search(r'<p class="error" id="e-age" data-field="age">([^<]+)</p>', r.text)
    assert error and "number" in error.group(1)
    assert 'id="f-age" name="field.age" value="old"' in r.text  # what was typed stays to be fixed
    assert row_counts(sopflow_app) == before
    shown = api.get(f"/api/v1/customers/{customer}").json()
    assert shown["display_name"] == "Ann" and shown["fields"] == {"age": 30} and shown["tags"] == []


def test_a_long_name_or_tag_is_refused_at_its_field_like_the_api(api, test_client, sopflow_app):
    customer = _customer_with_fields(api)
    sign_in(test_client, api.key)
    token = csrf_of(test_client.get(f"/console/customers/{customer}").text)
    before = row_counts(sopflow_app)
    r = test_client.post(
        f"/console/customers/{customer}",
        data={"_csrf": token, "display_name": "n" * 201, "field.age": "30", "tags": "ok, " + "t" * 101},
    )
    assert r.status_code == 422
    assert 'id="e-display_name"' in r.text and "at most 200 characters" in r.text
    assert 'id="e-tags"' in r.text and "at most 100 characters" in r.text
    assert row_counts(sopflow_app) == before
    assert api.get(f"/api/v1/customers/{customer}").json()["tags"] == []


def test_every_edit_is_recorded_with_who_made_it(api, test_client, sopflow_app):
    customer = _customer_with_fields(api)
    sign_in(test_client, api.key)
    page = test_client.get(f"/console/customers/{customer}")
    r = test_client.post(
        f"/console/customers/{customer}",
        data={
            "_csrf": csrf_of(page.text),
            "display_name": "Ann",
            "field.age": "31",
            "field.level": "b",
            "tags": "vip, 新客",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    shown = api.get(f"/api/v1/customers/{customer}").json()
    assert shown["fields"] == {"age": 31, "level": "b"} and sorted(shown["tags"]) == ["vip", "新客"]
    event = api.get("/api/v1/events", params={"type": "customer.updated", "customer_id": customer}).json()[
        "items"
    ][-1]
    key_id = api.get("/api/v1/api-keys").json()[0]["id"]
    assert event["source"] == "console" and event["payload"]["actor"] == f"console:api_key:{key_id}"
    assert event["payload"]["changed"] == ["fields", "tags_add"]
    timeline = test_client.get(r.headers["location"]).text
    assert f"console:api_key:{key_id}" in timeline and "Saved" in timeline


@pytest.fixture
def sop_with_customers(api, sopflow_app, manual_clock):
    log_channel(sopflow_app, api)
    sop = create_sop(
        api,
        "welcome 欢迎",
        {
            "kind": "new_customer",
            "target": {},
            "goal_window_days": 7,
            "steps": [
                {"delay": "1h", "actions": [send("hi")]},
                {"day": 3, "at": "10:00", "actions": [send("d3")]},
            ],
        },
    )
    customers = [add_customer(api, f"wm-{i}") for i in range(3)]
    run_days(sopflow_app, manual_clock, 1)
    return sop, customers


def test_the_sop_data_page_shows_steps_chart_and_customers(api, test_client, sop_with_customers):
    sop, _ = sop_with_customers
    sign_in(test_client, api.key)
    assert "welcome 欢迎" in test_client.get("/console/sops").text
    page = test_client.get(f"/console/sops/{sop}")
    assert page.status_code == 200
    step1 = re.search(r'<tr data-step="0">(.*?)</tr>', page.text).group(1)
    assert re.findall(r"<td>(\d+)</td>", step1) == ["1", "3", "3", "0", "0", "0", "0"]
    bars = re.findall(r'class="bar-sent" data-day="([^"]+)" data-value="(\d+)"', page.text)
    assert len(bars) == 14 and sum(int(v) for _, v in bars) == 3
    assert "within 7 days" in page.text
    assert page.text.count('action="/console/sops/') >= 3  # an end form per active enrolment


def test_ending_an_enrolment_with_tags_and_a_flow_target(api, test_client, sop_with_customers):
    sop, customers = sop_with_customers
    target = create_sop(
        api,
        "after",
        {
            "kind": "nurture",
            "target": {"rule": {"tags": {"any_of": ["never"]}}},
            "steps": [{"delay": "2h", "actions": [send("t")]}],
        },
    )
    enrolment = next(
        e
        for e in api.get(f"/api/v1/sops/{sop}/enrollments").json()["items"]
        if e["customer_id"] == customers[0]
    )
    sign_in(test_client, api.key)
    page = test_client.get(f"/console/sops/{sop}")
    bad = test_client.post(
        f"/console/sops/{sop}/enrollments/{enrolment['id']}/end",
        data={"_csrf": csrf_of(page.text), "tags_add": "人工结束", "flow_to": "abc"},
    )
    assert bad.status_code == 422 and "flow_to" in bad.text
    r = test_client.post(
        f"/console/sops/{sop}/enrollments/{enrolment['id']}/end",
        data={"_csrf": csrf_of(page.text), "tags_add": "人工结束", "flow_to": str(target)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    ended = next(
        e for e in api.get(f"/api/v1/sops/{sop}/enrollments").json()["items"] if e["id"] == enrolment["id"]
    )
    assert ended["status"] == "ended_manual"
    assert "人工结束" in api.get(f"/api/v1/customers/{customers[0]}").json()["tags"]
    assert [e["customer_id"] for e in api.get(f"/api/v1/sops/{target}/enrollments").json()["items"]] == [
        customers[0]
    ]
    again = test_client.post(
        f"/console/sops/{sop}/enrollments/{enrolment['id']}/end", data={"_csrf": csrf_of(page.text)}
    )
    assert again.status_code == 409 and "already ended" in again.text


def test_the_editor_shows_errors_at_their_paths_and_previews_the_audience(api, test_client, sopflow_app):
    for i in range(3):
        add_customer(api, f"wm-{i}", tags=["vip"] if i else [])
    sop = create_sop(
        api,
        "draft",
        {
            "kind": "nurture",
            "target": {"rule": {"tags": {"any_of": ["vip"]}}},
            "steps": [{"delay": "1h", "actions": [send("a")]}],
        },
        start=False,
    )
    sign_in(test_client, api.key)
    page = test_client.get(f"/console/sops/{sop}/edit")
    token = csrf_of(page.text)
    before = row_counts(sopflow_app)
    r = test_client.post(
        f"/console/sops/{sop}/edit", data={"_csrf": token, "action": "save", "definition": "{nope"}
    )
    assert r.status_code == 422 and "not JSON" in r.text
    broken = '{"kind": "nurture", "target": {}, "steps": [{"delay": "soon", "actions": []}]}'
    r = test_client.post(
        f"/console/sops/{sop}/edit", data={"_csrf": token, "action": "save", "definition": broken}
    )
    assert r.status_code == 422 and "<code>definition.steps[0].delay</code>" in r.text
    assert row_counts(sopflow_app) == before
    good = json.dumps(
        {
            "kind": "nurture",
            "target": {"rule": {"tags": {"any_of": ["vip"]}}},
            "steps": [{"delay": "2h", "actions": [{"type": "send", "text": "b"}]}],
        }
    )
    r = test_client.post(
        f"/console/sops/{sop}/edit", data={"_csrf": token, "action": "check", "definition": good}
    )
    assert r.status_code == 200 and "<strong data-audience-count>2</strong>" in r.text
    assert (
        api.get(f"/api/v1/sops/{sop}").json()["definition"]["steps"][0]["delay"] == "1h"
    )  # a check saves nothing
    r = test_client.post(
        f"/console/sops/{sop}/edit",
        data={"_csrf": token, "action": "save", "definition": good},
        follow_redirects=False,
    )
    assert (
        r.status_code == 303
        and api.get(f"/api/v1/sops/{sop}").json()["definition"]["steps"][0]["delay"] == "2h"
    )
    r = test_client.post(f"/console/sops/{sop}/start", data={"_csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and api.get(f"/api/v1/sops/{sop}").json()["status"] == "started"
    r = test_client.post(f"/console/sops/{sop}/stop", data={"_csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and api.get(f"/api/v1/sops/{sop}").json()["status"] == "stopped"


def test_the_channels_page_shows_each_accounts_delivery_health(
    api, test_client, sopflow_app, manual_clock, monkeypatch
):
    from sopflow_sdk import FatalError

    made = api.post("/api/v1/channel-accounts", json={"channel": "log", "name": "log 账号"})
    assert made.status_code == 201, made.text
    sign_in(test_client, api.key)

    def cell() -> str:
        page = test_client.get("/console/channels", params={"lang": "en"})
        assert page.status_code == 200 and "log 账号" in page.text
        [row] = [r for r in page.text.split("<tr>") if "log 账号" in r]
        return row

    assert 'class="health-idle"' in cell() and "nothing sent" in cell()  # installed, enabled, unused
    create_sop(
        api,
        "welcome",
        {"kind": "new_customer", "target": {}, "steps": [{"delay": "0m", "actions": [send("hi")]}]},
    )
    for n in range(2):
        add_customer(api, f"wm-ok-{n}")
    run_days(sopflow_app, manual_clock, 0.01)
    assert 'class="health-ok"' in cell() and "2 sent, 0 failed" in cell()

    channel = log_channel(sopflow_app, api)
    assert made.json()["id"] in {r["account_id"] for r in touch_results(sopflow_app)}  # the account is named

    def refuse(message):
        raise FatalError("the provider refused the account's credentials")

    monkeypatch.setattr(channel, "send", refuse)
    add_customer(api, "wm-bad")
    run_days(sopflow_app, manual_clock, 0.01)
    row = cell()
    assert 'class="health-warn"' in row and "2 sent, 1 failed" in row
    assert "refused the account&#39;s credentials" in row or "refused the account's credentials" in row
    manual_clock.advance(timedelta(days=2))  # a day later the sends are old news, the failure too
    sign_in(test_client, api.key)  # the session expired meanwhile
    assert 'class="health-idle"' in cell()


def touch_results(app):
    from sopflow.models import Touch

    with app.tx() as s:
        return [r for o in s.scalars(sa.select(Touch.outcome)) for r in o.get("results", [])]


def test_labels_switch_language_and_every_label_has_both():
    from sopflow.console.labels import LABELS

    templates = Path(__file__).parents[1] / "core/src/sopflow/console/templates"
    used = set()
    for path in templates.glob("*.html"):
        used |= set(re.findall(r"\bt\.(\w+)", path.read_text()))
    assert used - set(LABELS) == set(), "labels the templates use but labels.py lacks"
    assert all(en and zh and en != zh for en, zh in LABELS.values())


def test_the_page_speaks_the_chosen_language(api, test_client):
    board_setup(api)
    sign_in(test_client, api.key)
    zh = test_client.get("/console/board", params={"lang": "zh"})
    assert '<html lang="zh-CN">' in zh.text and "商机看板" in zh.text
    assert "商机看板" in test_client.get("/console/board").text  # remembered
    assert "Board" in test_client.get("/console/board", params={"lang": "en"}).text


def test_a_second_tenants_session_sees_only_its_own_rows(api, test_client, sopflow_app):
    setup = board_setup(api)
    _, key_b = new_tenant(sopflow_app, "globex")
    sign_in(test_client, key_b)
    board = test_client.get("/console/board")
    assert "Ann 安" not in board.text and "Sales 销售" not in board.text
    assert test_client.get(f"/console/customers/{setup['customers'][0]}").status_code == 404
