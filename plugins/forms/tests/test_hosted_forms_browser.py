"""The hosted form in a real headless Chromium: open the signed link, answer,
submit, see the thank-you page, the field is set; a tampered or expired link
is refused."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from forms_support import LiveSopflow, add_customer, hosted_setup, signed_form_link
from sopflow_sdk.testing.browser import Chromium


@pytest.fixture
def browser() -> Iterator[Chromium]:
    with Chromium() as b:
        yield b


def test_a_customer_answers_in_the_browser(live: LiveSopflow, browser: Chromium) -> None:
    account = hosted_setup(live)
    customer = add_customer(live.api, "wm-ann")
    link = signed_form_link(live, account, customer)
    browser.open(link)
    assert browser.js("document.title") == "Your skin <survey>"  # escaped in the HTML, shown as typed
    assert browser.js("document.querySelectorAll('input[name=skin_type]').length") == 3
    browser.js(
        "document.querySelector('input[name=skin_type][value=oily]').click();"
        "document.querySelector('input[name=age]').value = '29'"
    )
    browser.submit()
    assert "Thank you! Your routine is on its way." in browser.text()
    fields = live.api.get(f"/api/v1/customers/{customer}").json()["fields"]
    assert fields["skin_type"] == "oily" and fields["age"] == 29
    # a bad answer, typed past the browser's own checks, comes back on the page
    browser.open(link)
    browser.js(
        "document.querySelector('input[name=age]').type = 'text';"
        "document.querySelector('input[name=age]').value = 'old'"
    )
    browser.submit()
    assert (
        "give a number" in browser.text()
        and live.api.get(f"/api/v1/customers/{customer}").json()["fields"]["age"] == 29
    )


def test_a_tampered_or_expired_link_is_refused_in_the_browser(live: LiveSopflow, browser: Chromium) -> None:
    account = hosted_setup(live)
    customer = add_customer(live.api, "wm-bo")
    good = signed_form_link(live, account, customer)
    browser.open(good.replace("?t=ey", "?t=eY"))
    assert "not valid" in browser.text() and browser.js("document.forms.length") == 0
    browser.open(signed_form_link(live, account, customer, expires_in=-60))
    assert "expired" in browser.text() and browser.js("document.forms.length") == 0
    assert live.events("form.submitted") == []
