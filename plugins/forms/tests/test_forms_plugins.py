"""The distribution: three plugins under their own entry points, each switched
per tenant; an answer picks the nurture SOP that follows."""

from __future__ import annotations

import importlib.metadata
from datetime import timedelta

import httpx
from forms_support import (
    YOUZAN_CLIENT_ID,
    YOUZAN_SECRET,
    LiveSopflow,
    add_customer,
    hosted_setup,
    nurture,
    sent_texts,
    signed_form_link,
)
from sopflow_forms.senders import send_youzan_paid
from sopflow_sdk.testing import run_due


def test_three_entry_points_in_one_distribution() -> None:
    eps = {
        ep.name: ep.value
        for ep in importlib.metadata.entry_points(group="sopflow")
        if ep.dist is not None and ep.dist.name == "sopflow-forms"
    }
    assert eps == {
        "orders": "sopflow_forms.orders_plugin",
        "forms": "sopflow_forms.forms_plugin",
        "links": "sopflow_forms.links_plugin",
    }
    for value in eps.values():
        importlib.import_module(value)


def test_each_plugin_is_switched_per_tenant(live: LiveSopflow) -> None:
    account = live.account("youzan", {"client_id": YOUZAN_CLIENT_ID}, {"client_secret": YOUZAN_SECRET})
    shop = f"{live.base_url}/plugins/orders/youzan/{account}"
    assert live.api.put("/api/v1/plugins/orders", json={"enabled": False}).status_code == 200
    off = send_youzan_paid(
        shop, YOUZAN_CLIENT_ID, YOUZAN_SECRET, tid="E1", payment="1.00", phone="+8613800000077", msg_id="m1"
    )
    assert off.status_code == 404 and live.events() == []
    # the forms plugin is still on for the tenant: its admin routes answer
    assert live.api.get("/plugins/forms/hosted/none").status_code == 404
    assert live.api.put("/api/v1/plugins/orders", json={"enabled": True}).status_code == 200
    on = send_youzan_paid(
        shop, YOUZAN_CLIENT_ID, YOUZAN_SECRET, tid="E1", payment="1.00", phone="+8613800000077", msg_id="m1"
    )
    assert on.status_code == 200 and len(live.events("order.paid")) == 1


def test_a_form_answer_picks_the_nurture_sop(live: LiveSopflow, sopflow_app) -> None:
    account = hosted_setup(live)
    step = {
        "day": 1,
        "at": "10:00",
        "actions": [
            {
                "type": "send",
                "channel": "log",
                "touchpoint": "private_chat",
                "text": "Oily-skin routine, day 1",
            }
        ],
    }
    sop = {
        "kind": "nurture",
        "target": {"rule": {"field": "skin_type", "op": "eq", "value": "oily"}},
        "steps": [step],
    }
    made = live.api.post("/api/v1/sops", json={"name": "oily", "definition": sop})
    assert made.status_code == 201, made.text
    assert live.api.post(f"/api/v1/sops/{made.json()['id']}/start").status_code == 200
    nurture(live.api, "Dry-skin routine, day 1", "never-set")
    customer = add_customer(live.api, "wm-oily")
    link = signed_form_link(live, account, customer)
    with httpx.Client() as client:
        page = client.get(link)
        token = page.text.split('name="_csrf" value="', 1)[1].split('"', 1)[0]
        assert client.post(link, data={"_csrf": token, "skin_type": "oily"}).status_code == 200
    run_due(live.api, by=timedelta(days=2))
    assert sent_texts(sopflow_app, live.api) == ["Oily-skin routine, day 1"]
