"""Message templates are bounded: a template that would do unbounded work is
refused at save with the step's path, or fails its touch at send — the worker
never renders more than a message needs."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import row_counts
from tests.sop_support import add_customer, create_sop, log_channel, run_days, send, touches

SHANGHAI = ZoneInfo("Asia/Shanghai")

HEAVY = {
    "nested loops": "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
    "a huge repetition": "{{ 'x' * 1000000000 }}",
    "a huge padding filter": "{{ 'x'|center(1000000000) }}",
    "chained growth": "{{ 'xxxxxxxx'" + "|replace('x', 'xx')" * 40 + " }}",
    "a huge power": "{{ 10 ** 100000 }}",
    "a long string method": "{{ 'x'.ljust(1000000000) }}",
}


def definition(text: str) -> dict:
    return {
        "kind": "new_customer",
        "target": {},
        "steps": [{"day": 1, "at": "10:00", "actions": [send(text)]}],
    }


@pytest.mark.parametrize("name", sorted(HEAVY))
def test_a_template_that_does_too_much_is_refused_at_save(api, sopflow_app, name):
    before = row_counts(sopflow_app)
    r = api.post("/api/v1/sops", json={"name": name, "definition": definition(HEAVY[name])})
    assert r.status_code == 422, r.text
    [error] = r.json()["errors"]
    assert error["field"] == "definition.steps[0].actions[0].text", error
    assert "what one message needs" in error["message"], error
    assert row_counts(sopflow_app) == before


def test_ordinary_templates_still_render(api, sopflow_app, manual_clock):
    manual_clock.set(datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI))
    text = "{{ customer.display_name }}：{% for i in range(3) %}{{ i }}{% endfor %}{{ ' ok'|upper }}"
    create_sop(api, "ok", definition(text))
    customer = add_customer(api, "wm-ok")
    api.patch(f"/api/v1/customers/{customer}", json={"display_name": "王女士"})
    run_days(sopflow_app, manual_clock, 2)
    assert [m.text for m in log_channel(sopflow_app, api).sent] == ["王女士：012 OK"]


def test_a_template_that_grows_with_the_customer_fails_that_touch_not_the_worker(
    api, sopflow_app, manual_clock
):
    manual_clock.set(datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI))
    assert api.post("/api/v1/fields", json={"key": "note", "type": "text"}).status_code == 201
    create_sop(api, "grows", definition("{{ fields.note * 3000 }}"))  # fine for a customer with no note
    big = add_customer(api, "wm-big", fields={"note": "0123456789"})  # 30,000 characters for this one
    small = add_customer(api, "wm-small", fields={"note": "x"})
    run_days(sopflow_app, manual_clock, 2)
    [failed] = touches(sopflow_app, customer_id=big)
    assert failed.status == "failed" and "cannot be rendered" in failed.outcome["reason"]
    [sent] = touches(sopflow_app, customer_id=small)
    assert sent.status == "sent"
    assert [len(m.text) for m in log_channel(sopflow_app, api).sent] == [3000]
