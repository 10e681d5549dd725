"""Hosted forms over real HTTP: defined through the API, linked per customer from
an SOP, answered with a CSRF-safe post; bad answers shown on the page with
nothing written; forged and expired links, floods and large bodies refused."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import httpx
import pytest
from forms_support import LiveSopflow, add_customer, hosted_setup, nurture, sent_texts, signed_form_link
from sopflow_sdk.testing import run_due


@pytest.fixture(autouse=True)
def _fresh_limits():
    from sopflow_forms.hosted_routes import PER_IP, PER_LINK

    PER_IP.clear()
    PER_LINK.clear()
    yield


def _csrf(page: httpx.Response) -> str:
    return unescape(re.search(r'name="_csrf" value="([^"]+)"', page.text).group(1))


def _answer(client: httpx.Client, link: str, data: dict) -> httpx.Response:
    page = client.get(link)
    assert page.status_code == 200, page.text
    return client.post(link, data={"_csrf": _csrf(page), **data})


def test_sop_link_opens_the_form_and_an_answer_sets_the_field(live: LiveSopflow, sopflow_app) -> None:
    hosted_setup(live)
    nurture(live.api, 'Tell us: {{ form_link("skin-survey") }}', "new")
    customer = add_customer(live.api, "wm-ann", tags=["new"])
    run_due(live.api, by=timedelta(days=2))
    [link] = re.findall(r"http://\S+", sent_texts(sopflow_app, live.api)[0])
    with httpx.Client() as client:
        page = client.get(link)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "Your skin &lt;survey&gt;" in page.text and "<survey>" not in page.text
        assert 'name="viewport"' in page.text and "_contact" not in page.text  # the link names the customer
        done = client.post(link, data={"_csrf": _csrf(page), "skin_type": "oily", "age": "31"})
    assert done.status_code == 200 and "Your routine is on its way" in done.text
    fields = live.api.get(f"/api/v1/customers/{customer}").json()["fields"]
    assert fields["skin_type"] == "oily" and fields["age"] == 31
    [event] = live.events("form.submitted")
    assert (
        event["payload"]["answers"] == {"skin_type": "oily", "age": 31} and event["customer_id"] == customer
    )


def test_answering_again_edits_the_same_submission(live: LiveSopflow) -> None:
    account = hosted_setup(live)
    customer = add_customer(live.api, "wm-bo")
    link = signed_form_link(live, account, customer)
    with httpx.Client() as client:
        assert _answer(client, link, {"skin_type": "dry"}).status_code == 200
        again = client.get(link)
        assert 'value="dry" checked' in again.text  # the page shows the answer given
        client.post(link, data={"_csrf": _csrf(again), "skin_type": "mixed"})
    assert live.api.get(f"/api/v1/customers/{customer}").json()["fields"]["skin_type"] == "mixed"
    assert [e["payload"]["edit"] for e in live.events("form.submitted")] == [1, 2]


BAD_ANSWERS = [
    ({"skin_type": "greasy"}, "choose one of: dry, oily, mixed"),
    ({"age": "31"}, "Please answer this question"),
    ({"skin_type": "dry", "age": "thirty"}, "give a number"),
]


def test_a_bad_answer_is_shown_on_the_page_and_nothing_written(live: LiveSopflow) -> None:
    account = hosted_setup(live)
    customer = add_customer(live.api, "wm-cy")
    for data, error in BAD_ANSWERS:
        with httpx.Client() as client:
            r = _answer(client, signed_form_link(live, account, customer), data)
        assert r.status_code == 422 and error in unescape(r.text) and "<form" in r.text, data
    assert "skin_type" not in live.api.get(f"/api/v1/customers/{customer}").json()["fields"]
    assert live.events("form.submitted") == []


def test_tampered_expired_and_foreign_links_are_refused(live: LiveSopflow) -> None:
    account = hosted_setup(live)
    customer = add_customer(live.api, "wm-dee")
    good = signed_form_link(live, account, customer)
    tampered = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    expired = signed_form_link(live, account, customer, expires_in=-1)
    other_form = signed_form_link(live, account, customer, slug="other").replace("/other?", "/skin-survey?")
    for link, reason in ((tampered, "not valid"), (expired, "expired"), (other_form, "not valid")):
        r = httpx.get(link)
        assert r.status_code == 403 and reason in r.text and "<form" not in r.text
        assert httpx.post(link, data={"skin_type": "dry"}).status_code == 403
    assert live.events("form.submitted") == []


def test_a_post_without_the_pages_csrf_token_is_refused(live: LiveSopflow) -> None:
    account = hosted_setup(live)
    link = signed_form_link(live, account, add_customer(live.api, "wm-eve"))
    with httpx.Client() as client:
        token = _csrf(client.get(link))
    # the token without its cookie (a cross-site post carries no SameSite=Strict cookie)
    assert httpx.post(link, data={"_csrf": token, "skin_type": "dry"}).status_code == 403
    with httpx.Client() as client:
        client.get(link)
        assert client.post(link, data={"_csrf": "forged.token", "skin_type": "dry"}).status_code == 403
    assert live.events("form.submitted") == []


def test_an_anonymous_link_asks_for_a_phone_and_finds_or_makes_the_customer(live: LiveSopflow) -> None:
    account = hosted_setup(live)
    link = f"{live.base_url}/plugins/forms/f/{account}/skin-survey"
    with httpx.Client() as client:
        assert "_contact" in client.get(link).text
        bad = _answer(client, link, {"_contact": "call me", "skin_type": "dry"})
        assert bad.status_code == 422 and "phone number or e-mail" in bad.text
        assert _answer(client, link, {"_contact": "138 0000 1234", "skin_type": "dry"}).status_code == 200
        assert _answer(client, link, {"_contact": "13800001234", "skin_type": "oily"}).status_code == 200
    customer = live.customer("phone", "13800001234")
    assert customer["fields"]["skin_type"] == "oily"
    assert [e["payload"]["edit"] for e in live.events("form.submitted")] == [1, 2]


def test_large_bodies_and_floods_are_refused(live: LiveSopflow) -> None:
    account = hosted_setup(live)
    link = signed_form_link(live, account, add_customer(live.api, "wm-fay"))
    with httpx.Client() as client:
        page = client.get(link)
        big = client.post(link, data={"_csrf": _csrf(page), "skin_type": "dry", "pad": "x" * 20000})
        assert big.status_code == 413
        codes = [
            client.post(link, data={"_csrf": _csrf(page), "skin_type": "dry"}).status_code for _ in range(11)
        ]
    assert codes[:10] == [200] * 10 and codes[10] == 429


def test_a_form_is_checked_against_the_field_definitions(live: LiveSopflow) -> None:
    hosted_setup(live)
    bad = {"slug": "Bad Slug", "title": "", "questions": [{"field": "nope"}, {"field": "orders.count"}]}
    r = live.api.post("/plugins/forms/hosted", json=bad)
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {
        "slug",
        "title",
        "questions[0].field",
        "questions[1].field",
    }
    assert "maintained by a plugin" in r.text
    assert (
        live.api.post(
            "/plugins/forms/hosted",
            json={"slug": "skin-survey", "title": "x", "questions": [{"field": "age"}]},
        ).status_code
        == 422
    )
    assert live.api.as_key(None).get("/plugins/forms/hosted/skin-survey").status_code == 401


def test_the_rate_limited_address_trusts_a_proxy_only_when_told() -> None:
    from types import SimpleNamespace

    from sopflow_forms.hosted_routes import _client
    from sopflow_sdk import InboundRequest

    request = InboundRequest(
        method="POST",
        path="/",
        query={},
        headers={"x-forwarded-for": "203.0.113.9, 10.0.0.1"},
        body=b"",
        remote_addr="10.0.0.1",
    )
    assert _client(request, SimpleNamespace(config={})) == "10.0.0.1"
    assert _client(request, SimpleNamespace(config={"trust_forwarded_for": True})) == "203.0.113.9"
