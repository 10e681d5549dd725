"""The operator console in a real headless Chromium (Debian's ``chromium``) over
real HTTP: sign in, drag a card and move one by keyboard (the stage changes
through the API), a bad field value shown at the field with nothing changed,
ending an enrolment, the chart drawn.  With ``CONSOLE_SCREENSHOTS=docs/console``
each page is also saved there as a PNG (docs/console.md shows them)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sopflow_sdk.testing import LiveServer
from sopflow_sdk.testing.browser import Chromium

from tests.console_support import board_setup
from tests.sop_support import add_customer, create_sop, log_channel, run_days, send

SHOTS = os.environ.get("CONSOLE_SCREENSHOTS")


@pytest.fixture
def live(test_client: Any) -> Iterator[str]:
    with LiveServer(test_client.app) as server:
        yield server.base_url


@pytest.fixture
def browser() -> Iterator[Chromium]:
    with Chromium() as b:
        yield b


def _shot(browser: Chromium, name: str) -> None:
    if SHOTS:
        browser.screenshot(Path(SHOTS) / f"{name}.png")


def _sign_in(browser: Chromium, base: str, key: str) -> None:
    browser.open(f"{base}/console/board")  # no session: sent to the sign-in page
    assert browser.js("location.pathname") == "/console/sign-in"
    _shot(browser, "sign-in")
    browser.js(f"document.querySelector('#api_key').value = {json.dumps(key)}")
    browser.submit()
    assert browser.js("location.pathname") == "/console/board"
    # the key is nowhere the page's script can read it
    assert key not in browser.js("document.documentElement.outerHTML")
    assert browser.js("document.cookie") == "" and browser.js("localStorage.length") == 0


def _stage_of(api: Any, customer: int) -> tuple[int, str]:
    last = api.get(f"/api/v1/customers/{customer}/stage-history").json()[-1]
    return last["stage_id"], last["cause"]


def test_sign_in_then_drag_and_keyboard_move_cards(api, live, browser):
    setup = board_setup(api)
    api.patch(f"/api/v1/customers/{setup['customers'][0]}", json={"tags_add": ["hot 热"]})
    _sign_in(browser, live, api.key)
    assert browser.js("document.querySelectorAll('.column').length") == 3
    assert "Ann 安" in browser.text() and "hot 热" in browser.text()
    _shot(browser, "board")
    ann, bo = setup["customers"]
    browser.js(
        f"""(() => {{
        const card = document.querySelector('.card[data-customer-id="{ann}"]');
        const target = document.querySelectorAll('.column')[2];
        const dt = new DataTransfer();
        card.dispatchEvent(new DragEvent('dragstart', {{bubbles: true, dataTransfer: dt}}));
        const over = {{bubbles: true, cancelable: true, dataTransfer: dt}};
        target.dispatchEvent(new DragEvent('dragover', over));
        target.dispatchEvent(new DragEvent('drop', over));
        }})()"""
    )
    browser.wait_for(f"document.querySelectorAll('.column')[2].querySelector('[data-customer-id=\"{ann}\"]')")
    assert _stage_of(api, ann) == (setup["stages"][2], "manual")
    assert browser.js("[...document.querySelectorAll('[data-count]')].map(e => e.textContent)") == [
        "1",
        "0",
        "1",
    ]
    # the keyboard: focus Bo's card, press → once
    browser.js(f"document.querySelector('.card[data-customer-id=\"{bo}\"]').focus()")
    browser.press("ArrowRight", "ArrowRight", 39)
    browser.wait_for(f"document.querySelectorAll('.column')[1].querySelector('[data-customer-id=\"{bo}\"]')")
    assert _stage_of(api, bo) == (setup["stages"][1], "manual")
    assert browser.js("document.activeElement.dataset.customerId") == str(bo)  # focus stays on the card
    assert "→" in browser.js("document.getElementById('board-status').textContent")
    # a reload shows what the server holds
    browser.open(f"{live}/console/board")
    assert browser.js("[...document.querySelectorAll('[data-count]')].map(e => e.textContent)") == [
        "0",
        "1",
        "1",
    ]


def test_a_bad_field_value_shows_at_the_field_and_changes_nothing(api, live, browser):
    api.post("/api/v1/fields", json={"key": "age", "type": "number", "label": "Age 年龄"})
    customer = api.post("/api/v1/customers", json={"display_name": "Ann", "fields": {"age": 30}}).json()["id"]
    _sign_in(browser, live, api.key)
    browser.open(f"{live}/console/customers/{customer}")
    browser.js(
        "document.querySelector('#f-age').value = 'old';document.querySelector('#f-display_name').value = 'X'"
    )
    browser.submit("form.card")
    assert browser.js("document.querySelector('#f-age').getAttribute('aria-invalid')") == "true"
    error = browser.js("document.querySelector('#e-age').textContent")
    assert "number" in error and browser.js("document.querySelector('#f-age').value") == "old"
    _shot(browser, "customer-error")
    shown = api.get(f"/api/v1/customers/{customer}").json()
    assert shown["fields"] == {"age": 30} and shown["display_name"] == "Ann"
    browser.js("document.querySelector('#f-age').value = '31'")
    browser.submit("form.card")
    assert "Saved" in browser.text() and api.get(f"/api/v1/customers/{customer}").json()["fields"] == {
        "age": 31
    }


def test_end_an_enrolment_and_see_the_chart(api, live, browser, sopflow_app, manual_clock):
    log_channel(sopflow_app, api)
    sop = create_sop(
        api,
        "welcome 欢迎",
        {
            "kind": "new_customer",
            "target": {},
            "steps": [
                {"delay": "1h", "actions": [send("hi")]},
                {"day": 3, "at": "10:00", "actions": [send("d3")]},
            ],
        },
    )
    customers = [add_customer(api, f"wm-{i}") for i in range(3)]
    run_days(sopflow_app, manual_clock, 1)
    _sign_in(browser, live, api.key)
    browser.open(f"{live}/console/sops/{sop}")
    bars = browser.js(
        "[...document.querySelectorAll('svg.chart rect.bar-sent')]"
        ".map(r => [Number(r.dataset.value), r.getBoundingClientRect().height])"
    )
    assert len(bars) == 14 and sum(v for v, _ in bars) == 3
    assert all((h > 0) == (v > 0) for v, h in bars)  # drawn: a bar's height follows its value
    _shot(browser, "sop-data")
    enrolment = next(
        e
        for e in api.get(f"/api/v1/sops/{sop}/enrollments").json()["items"]
        if e["customer_id"] == customers[1]
    )
    row = f"tr[data-enrollment='{enrolment['id']}']"
    browser.js(f"document.querySelector(\"{row} input[name=tags_add]\").value = '人工结束'")
    browser.submit(f"{row} form")
    assert browser.js(f'document.querySelector("{row} [data-status]").textContent') == "ended_manual"
    assert browser.js(f'document.querySelector("{row} form")') is None
    ended = next(
        e for e in api.get(f"/api/v1/sops/{sop}/enrollments").json()["items"] if e["id"] == enrolment["id"]
    )
    assert (
        ended["status"] == "ended_manual"
        and "人工结束" in api.get(f"/api/v1/customers/{customers[1]}").json()["tags"]
    )
    if SHOTS:
        browser.open(f"{live}/console/sops/{sop}/edit")
        _shot(browser, "sop-editor")
        api.post("/api/v1/channel-accounts", json={"channel": "log", "name": "日志 log"})
        browser.open(f"{live}/console/channels?lang=zh")
        _shot(browser, "channels-zh")
