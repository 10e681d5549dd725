"""Provider form pushes over real HTTP, each with its own authentication: a
correct push → one ``form.submitted`` with the mapped fields; a forged, unsigned,
stale or oversized one → 401/403/413 with a problem body, nothing ingested and
the rejection logged with the provider and reason, never the secret."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from forms_support import LiveSopflow
from sopflow_forms import senders

JDY_SECRET = "jdy-secret-0123456789"
WJX_KEY = "wjx-push-key-98765"
URL_TOKEN = "url-token-abcdefghijklmnopqrstuvwxyz"
PHONE = "+8613900000042"


@pytest.fixture
def forms(live: LiveSopflow) -> LiveSopflow:
    made = live.api.post(
        "/api/v1/fields",
        json={
            "key": "skin_type",
            "type": "choice",
            "label": "Skin type",
            "choices": ["dry", "oily", "mixed"],
        },
    )
    assert made.status_code == 201, made.text
    return live


def _map(live: LiveSopflow, account: int, form_id: str, fields: dict[str, str], ident: str) -> None:
    r = live.api.put(
        f"/plugins/forms/accounts/{account}/forms/{form_id}",
        json={"fields": fields, "identity": {"field": ident, "kind": "phone"}},
    )
    assert r.status_code == 200, r.text


def _jdy(live: LiveSopflow, secret: str = JDY_SECRET, age: int = 0, deliver: str = "d1") -> tuple:
    payload = {
        "op": "data_create",
        "data": {
            "_id": "x1",
            "appId": "app",
            "entryId": "entry1",
            "_widget_1": "oily",
            "_widget_2": {"phone": PHONE, "verified": True},
        },
    }
    ts = int(live.clock.now().timestamp()) - age
    return senders.jiandaoyun_request(secret, payload, nonce="n0nce", timestamp=ts, deliver_id=deliver)


def _setup(live: LiveSopflow, provider: str) -> tuple[str, Callable[..., Any]]:
    """The push URL of a fresh account of ``provider`` with form mapped, and a sender."""
    if provider == "jiandaoyun":
        acc = live.account("jiandaoyun", {}, {"secret": JDY_SECRET})
        _map(live, acc, "entry1", {"_widget_1": "skin_type"}, "_widget_2")
        url = f"{live.base_url}/plugins/forms/jiandaoyun/{acc}"
        return url, lambda **kw: (lambda h, b, q: senders.post(url, h, b, params=q))(*_jdy(live, **kw))
    if provider == "wjx":
        acc = live.account("wjx", {}, {"push_key": WJX_KEY})
        _map(live, acc, "2001", {"q1": "skin_type"}, "q2")
        url = f"{live.base_url}/plugins/forms/wjx/{acc}"
        return url, lambda key=WJX_KEY: senders.post(
            url, *senders.wjx_request(key, {"q1": "oily", "q2": PHONE}, activity="2001", joinid="101")
        )
    if provider == "tencent_wj":
        acc = live.account("tencent_wj", {}, {"url_token": URL_TOKEN})
        _map(live, acc, "s9", {"q-skin": "skin_type"}, "q-phone")
        url = f"{live.base_url}/plugins/forms/tencent-wj/{acc}/"
        payload = {
            "survey_id": "s9",
            "answer_id": 5,
            "answer": [{"question_id": "q-skin", "text": "oily"}, {"question_id": "q-phone", "text": PHONE}],
        }
        return url, lambda token=URL_TOKEN: senders.post(
            url + token, *senders.tencent_wj_request(payload, event_id="ev-1")
        )
    acc = live.account("jinshuju", {}, {"url_token": URL_TOKEN})
    _map(live, acc, "fmX", {"field_1": "skin_type"}, "field_2")
    url = f"{live.base_url}/plugins/forms/jinshuju/{acc}/"
    entry = {"serial_number": 7, "field_1": "oily", "field_2": PHONE, "created_at": "2026-12-01T02:00:00Z"}
    return url, lambda token=URL_TOKEN: senders.post(url + token, *senders.jinshuju_request("fmX", entry))


PROVIDERS = ["jiandaoyun", "wjx", "tencent_wj", "jinshuju"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_authentic_push_is_one_event_with_the_mapped_fields(forms: LiveSopflow, provider: str) -> None:
    _, send = _setup(forms, provider)
    first = send()
    assert first.status_code == 200 and first.json() == {"status": "created"}, first.text
    assert send().json() == {"status": "duplicate"}  # the provider's retry
    [event] = forms.events("form.submitted")
    assert event["payload"]["provider"] == provider and event["payload"]["fields"] == {"skin_type": "oily"}
    assert forms.customer("phone", PHONE)["fields"]["skin_type"] == "oily"


SECRETS = {"jiandaoyun": JDY_SECRET, "wjx": WJX_KEY, "tencent_wj": URL_TOKEN, "jinshuju": URL_TOKEN}


FORGERIES = [
    ("jiandaoyun", {"secret": "not-the-secret"}, 403, "X-JDY-Signature does not match"),
    ("jiandaoyun", {"age": 301}, 401, "timestamp is more than 300 s"),
    ("wjx", {"key": "wrong"}, 403, "sign does not match"),
    ("tencent_wj", {"token": "x" * 30}, 403, "token is wrong"),
    ("jinshuju", {"token": "y" * 30}, 403, "token is wrong"),
]


def test_forged_or_stale_pushes_are_refused(forms: LiveSopflow, caplog: pytest.LogCaptureFixture) -> None:
    for provider, forge, status, reason in FORGERIES:
        _, send = _setup(forms, provider)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="sopflow_forms"):
            r = send(**forge)
        assert r.status_code == status and r.headers["content-type"].startswith("application/problem+json")
        assert reason in r.json()["detail"]
        assert f"provider={provider}" in caplog.text and reason in caplog.text
        assert SECRETS[provider] not in caplog.text
    assert forms.events() == [] and forms.customer("phone", PHONE) is None


def test_missing_signature_and_oversized_bodies_are_refused(
    forms: LiveSopflow, caplog: pytest.LogCaptureFixture
) -> None:
    for provider in PROVIDERS:
        url, _ = _setup(forms, provider)
        target = url + ("" if provider in ("jiandaoyun", "wjx") else "z" * 30)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="sopflow_forms"):
            unsigned = senders.post(target, {"Content-Type": "application/json"}, b'{"op":"data_create"}')
            huge = senders.post(target, {"Content-Type": "application/json"}, b"{}" + b" " * (300 * 1024))
        assert unsigned.status_code in (401, 403) and unsigned.json()["status"] == unsigned.status_code
        assert huge.status_code == 413 and huge.headers["content-type"].startswith("application/problem+json")
        assert caplog.text.count(f"provider={provider}") == 2 and SECRETS[provider] not in caplog.text
    assert forms.events() == []


def test_unmapped_form_and_bad_answer_are_refused_with_the_fix(forms: LiveSopflow) -> None:
    acc = forms.account("wjx", {}, {"push_key": WJX_KEY})
    url = f"{forms.base_url}/plugins/forms/wjx/{acc}"
    r = senders.post(
        url, *senders.wjx_request(WJX_KEY, {"q1": "oily", "q2": PHONE}, activity="77", joinid="1")
    )
    assert r.status_code == 422 and "PUT /plugins/forms/accounts" in r.json()["detail"]
    _map(forms, acc, "77", {"q1": "skin_type"}, "q2")
    r = senders.post(
        url, *senders.wjx_request(WJX_KEY, {"q1": "greasy", "q2": PHONE}, activity="77", joinid="2")
    )
    assert r.status_code == 422 and "skin_type" in r.json()["detail"]
    assert forms.events() == []


def test_mapping_needs_an_admin_key_and_valid_shape(forms: LiveSopflow) -> None:
    acc = forms.account("wjx", {}, {"push_key": WJX_KEY})
    path = f"/plugins/forms/accounts/{acc}/forms/77"
    bad = forms.api.put(
        path, json={"fields": {"q1": "Not A Key"}, "identity": {"field": "q2", "kind": "fax"}}
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"fields.q1", "identity.kind"}
    assert forms.api.as_key(None).put(path, json={}).status_code == 401
    assert forms.api.get(path).status_code == 404
