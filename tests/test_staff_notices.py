"""``host.notify_staff``: a plugin tells a staff member something they must act
on, as a ``staff_notice`` through one of the tenant's channels, once per key;
a notice that cannot go out is recorded and logged, never raised."""

from __future__ import annotations

from typing import Any

import pytest
from plugin_state_support import NotesPlugin

from tests.sop_support import log_channel


@pytest.fixture
def sopflow_plugins() -> list[tuple[str, Any]]:
    return [("notes", NotesPlugin())]


def _host(app: Any) -> Any:
    from sopflow.host import PluginHost

    return PluginHost(app, "notes")


def notices(app: Any, api: Any) -> list[Any]:
    return [m for m in log_channel(app, api).sent if m.touchpoint == "staff_notice"]


def test_a_notice_reaches_the_staff_member_once_per_key(sopflow_app: Any, api: Any) -> None:
    host = _host(sopflow_app)
    text = "personal WeChat account staff01 was restricted; paused until 14:00"
    assert host.notify_staff(api.tenant_id, "log", "zhangsan", text, key="restricted:7:1")
    assert not host.notify_staff(api.tenant_id, "log", "zhangsan", text, key="restricted:7:1")  # told
    assert host.notify_staff(api.tenant_id, "log", "zhangsan", text, key="restricted:7:2")  # a new one
    sent = notices(sopflow_app, api)
    assert [(m.text, m.staff_external_id) for m in sent] == [(text, "zhangsan")] * 2
    assert sent[0].recipient == {"staff_external_id": "zhangsan"}
    assert host.state(api.tenant_id).get("staff_notice.restricted:7:1")["status"] == "sent"


def test_a_notice_that_cannot_go_out_is_recorded_and_not_raised(sopflow_app: Any, api: Any) -> None:
    host = _host(sopflow_app)
    assert not host.notify_staff(api.tenant_id, "wecom", "zhangsan", "hello", key="k")  # no such account
    record = host.state(api.tenant_id).get("staff_notice.k")
    assert record["status"] == "failed" and "channel account" in record["reason"]
    assert not host.notify_staff(api.tenant_id, "wecom", "zhangsan", "hello", key="k")  # not retried blindly
    assert notices(sopflow_app, api) == []


def test_notify_staff_inside_a_transaction_is_refused_with_the_fix(sopflow_app: Any, api: Any) -> None:
    from sopflow_sdk import PluginError

    host = _host(sopflow_app)
    with pytest.raises(PluginError, match="notify_staff"), host.transaction(api.tenant_id):
        host.notify_staff(api.tenant_id, "log", "zhangsan", "x", key="k")
    assert notices(sopflow_app, api) == []
