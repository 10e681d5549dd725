"""The example plugin in docs/plugin-authoring.md, run exactly as printed."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

from tests.sop_support import create_sop, run_days

DOC = Path(__file__).parent.parent / "docs" / "plugin-authoring.md"


def example_module() -> types.ModuleType:
    text = DOC.read_text(encoding="utf-8")
    [code] = re.findall(r"<!-- plugin-example -->\n```python\n(.*?)```", text, re.S)
    module = types.ModuleType("sopflow_smsdemo_doc")
    exec(compile(code, str(DOC), "exec"), module.__dict__)
    sys.modules[module.__name__] = module
    return module


SMS = example_module()


@pytest.fixture
def sopflow_plugins():
    return [("smsdemo", SMS)]


def test_field_and_trigger_are_registered(api):
    fields = {f["key"]: f for f in api.get("/api/v1/fields").json()}
    assert fields["sms_opt_out"]["plugin"] == "smsdemo" and fields["sms_opt_out"]["type"] == "bool"
    info = {p["name"]: p for p in api.get("/api/v1/plugins").json()}["smsdemo"]
    assert {"register_fields", "register_triggers", "register_channels", "register_routes"} <= set(
        info["hooks"]
    )


def test_channel_sends_in_an_sop_and_route_ingests_replies(api, sopflow_app, manual_clock):
    from litestar.testing import TestClient
    from sopflow.api.app import build_api

    SMS.SENT.clear()
    account = api.post(
        "/api/v1/channel-accounts",
        json={
            "channel": "smsdemo",
            "name": "main",
            "config": {"sender": "ACME"},
            "secrets": {"api_key": "k-123"},
        },
    )
    assert account.status_code == 201, account.text
    assert "k-123" not in account.text  # secrets never come back
    step = {"type": "send", "channel": "smsdemo", "text": "您好 {{ customer.display_name }}"}
    create_sop(
        api, "sms", {"kind": "new_customer", "target": {}, "steps": [{"delay": "1h", "actions": [step]}]}
    )
    r = api.post(
        "/api/v1/events",
        json={
            "events": [
                {
                    "type": "customer.added",
                    "idempotency_key": "add-1",
                    "identity": {"channel": "phone", "external_id": "+8613800000000"},
                    "display_name": "王芳",
                }
            ]
        },
    )
    assert r.status_code == 200, r.text
    run_days(sopflow_app, manual_clock, 1)
    assert [(phone, text) for _, phone, text in SMS.SENT] == [("+8613800000000", "您好 王芳")]
    with TestClient(build_api(sopflow_app)) as client:
        receipt = client.post(
            f"/plugins/smsdemo/receipts/{account.json()['id']}",
            content=b'{"id": "r1", "from": "+8613800000000", "text": "\\u591a\\u5c11\\u94b1"}',
        )
    assert receipt.status_code == 200
    [msg] = api.get("/api/v1/events?type=message.received").json()["items"]
    assert msg["payload"]["text"] == "多少钱"
