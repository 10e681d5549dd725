"""The shop scene: sunscreen orders pushed by a 有赞 shop, and a hosted skin-type
survey whose answer picks a nurture SOP.

Set up through the public API: the ``orders`` and ``forms`` plugins switched on
for the tenant, a ``youzan`` shop account and a ``hosted_forms`` account, the
survey (its one question fills the ``skin_type`` choice field), and the
oily-skin nurture SOP whose target rule is on ``skin_type``.  The survey link itself
travels in the sunscreen SOP's day-5 message (``SURVEY_INVITE``).

At run time a buyer first gives the staff member their phone number (recorded
on the customer as a ``phone`` identity, ``PATCH /api/v1/customers/{id}``), so
the shop's pushes — correctly signed, over real HTTP — reach the same customer
the WeCom intake created.  A customer who got the survey link opens it as a
browser would (GET the page, POST the answer with its CSRF token).
"""

from __future__ import annotations

import re
from datetime import datetime
from html import unescape
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import sqlalchemy as sa
from sopflow.models import Customer, Enrollment, Event
from sopflow_forms.senders import youzan_request, youzan_trade_msg

from sopflow_demo.world import DemoError, World

YOUZAN_CLIENT_ID = "demo-youzan-app"
YOUZAN_SECRET = "demo-youzan-client-secret-0001"
FORM_KEY = "demo-hosted-forms-signing-key-0123456789"
SKIN_TYPES = ("干性", "油性", "混合性")
SKIN_FIELD = {"key": "skin_type", "type": "choice", "label": "肤质", "choices": list(SKIN_TYPES)}
SURVEY = {
    "slug": "skin-survey",
    "title": "肤质小问卷",
    "intro": "一个问题，为您推荐护理方案。",
    "questions": [{"field": "skin_type", "label": "您的肤质", "required": True}],
    "thank_you": "谢谢！专属护理建议马上发给您。",
}
OILY_SOP = "油皮控油养护 (skin_type)"
LINK = re.compile(r"http://\S+/plugins/forms/f/\S+")
CST = ZoneInfo("Asia/Shanghai")


def _wecom(text: str) -> dict[str, Any]:
    return {"type": "send", "channel": "wecom", "touchpoint": "private_chat", "text": text}


#: The sunscreen SOP's day-5 message carries the survey link (no extra touch).
SURVEY_INVITE = '，填个肤质小问卷，为您推荐护理方案：{{ form_link("skin-survey") }}'

#: The survey's answer picks this SOP: oily skin gets the oil-control routine.
OILY_DEF = {
    "kind": "nurture",
    "target": {"rule": {"field": "skin_type", "op": "eq", "value": "油性"}},
    "steps": [{"day": 2, "at": "10:00", "actions": [_wecom("油皮夏季控油：清爽型防晒 + 晚间清洁")]}],
}


def install_shop(world: World, setup: Any, sop: Any) -> None:
    """Plugins on, the shop and forms accounts, the survey and its two SOPs."""
    api = setup.api
    setup.web = httpx.Client(timeout=30)  # the shop's and the customers' side of HTTP (no API key)
    for plugin in ("orders", "forms"):
        api.call("PUT", f"/api/v1/plugins/{plugin}", json={"enabled": True})
    api.post("/api/v1/fields", SKIN_FIELD)
    shop = api.post(
        "/api/v1/channel-accounts",
        {
            "channel": "youzan",
            "name": "sunscreen shop",
            "config": {"client_id": YOUZAN_CLIENT_ID},
            "secrets": {"client_secret": YOUZAN_SECRET},
        },
    )
    api.post(  # the survey pages' account: links signed with FORM_KEY, served on the demo's API
        "/api/v1/channel-accounts",
        {
            "channel": "hosted_forms",
            "name": "survey pages",
            "config": {"public_url": world.base_url, "link_days": 14},
            "secrets": {"signing_key": FORM_KEY},
        },
    )
    api.post("/plugins/forms/hosted", SURVEY)
    setup.shop_url = f"{world.base_url}/plugins/orders/youzan/{shop['id']}"
    setup.sops[OILY_SOP] = sop(api, "油皮控油养护", OILY_DEF)


def phone_of(external_id: str) -> str:
    return f"+86139{int(external_id.removeprefix('wmDemo')):08d}"


def give_phone(setup: Any, external_id: str) -> None:
    """The buyer tells the staff member their phone number; it is recorded on the
    customer as a ``phone`` identity, the identity 有赞 names the buyer by."""
    api = setup.api
    found = api.get("/api/v1/customers", params={"channel": "wecom", "external_id": external_id})
    [customer] = found["items"]
    api.call(
        "PATCH",
        f"/api/v1/customers/{customer['id']}",
        json={"identities": [{"channel": "phone", "external_id": phone_of(external_id)}]},
    )


def push_paid(setup: Any, external_id: str, count: int, amount: int, now: datetime) -> None:
    """The shop's 有赞 ``trade_TradeBuyerPay`` push for a paid order, correctly signed
    (``Event-Sign``), over real HTTP."""
    tid = f"E{external_id}-{count}"
    paid_at = now.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S")
    headers, body = youzan_request(
        YOUZAN_CLIENT_ID,
        YOUZAN_SECRET,
        msg_id=f"demo-{external_id}-{count}",
        type="trade_TradeBuyerPay",
        status="TRADE_PAID",
        version=1,
        msg=youzan_trade_msg(tid, f"{amount}.00", phone_of(external_id), pay_time=paid_at),
    )
    response = setup.web.post(setup.shop_url, content=body, headers=headers)
    if response.status_code != 200 or response.json().get("code") != 0:
        raise DemoError(f"the 有赞 push answered {response.status_code}: {response.text[:300]}")


def survey_link(text: str) -> str | None:
    found = LINK.search(text)
    return found.group(0) if found else None


def fill_survey(setup: Any, link: str, skin_type: str) -> None:
    """Open the survey link as a browser would and answer it (CSRF double submit:
    the token in the page and the cookie set with it)."""
    browser = setup.web
    browser.cookies.clear()  # each customer's own browser
    page = browser.get(link)
    token = re.search(r'name="_csrf" value="([^"]+)"', page.text)
    if page.status_code != 200 or token is None:
        raise DemoError(f"the survey page answered {page.status_code}: {page.text[:300]}")
    done = browser.post(link, data={"_csrf": unescape(token.group(1)), "skin_type": skin_type})
    if done.status_code != 200:
        raise DemoError(f"the survey answer was refused ({done.status_code}): {done.text[:300]}")


def _check(name: str, expected: Any, actual: Any) -> dict[str, Any]:
    return {"check": name, "expected": expected, "actual": actual, "ok": expected == actual}


def shop_checks(world: World, setup: Any, tally: Any) -> list[dict[str, Any]]:
    """The scene's figures: what the simulation pushed and answered against the database."""
    t = setup.tenant_id
    with world.app.tx() as s:
        paid = s.scalars(
            sa.select(Event.payload).where(Event.tenant_id == t, Event.type == "order.paid")
        ).all()
        fields = [f or {} for f in s.scalars(sa.select(Customer.fields).where(Customer.tenant_id == t))]
        forms = s.scalar(
            sa.select(sa.func.count()).where(Event.tenant_id == t, Event.type == "form.submitted")
        )
        oily = s.scalar(sa.select(sa.func.count()).where(Enrollment.sop_id == setup.sops[OILY_SOP]))
    return [
        _check(
            "有赞 pushes sent = order.paid events from the orders plugin",
            tally.orders,
            sum(1 for p in paid if (p or {}).get("provider") == "youzan"),
        ),
        _check(
            "有赞 pushes sent = sum of orders.count",
            tally.orders,
            sum(f.get("orders.count", 0) for f in fields),
        ),
        _check(
            "customers who bought = customers with orders.count ≥ 1",
            tally.buyers,
            sum(1 for f in fields if f.get("orders.count", 0) >= 1),
        ),
        _check("surveys answered = form.submitted events", tally.forms, forms),
        _check(
            "customers who answered = customers with skin_type set",
            tally.forms,
            sum(1 for f in fields if f.get("skin_type")),
        ),
        _check("oily-skin answers = enrolments in the skin_type SOP", tally.oily, oily),
    ]
