"""The built-in ``manual`` channel: a send a staff member makes by hand.  Its touch
waits ``pending``; the member's tap ("sent" / "skip", ``Host.confirm_touches``) is
the confirmation poll's only answer, recorded once; a skip ends the touch
``skipped_by_staff`` and gives its daily slot back."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sopflow_sdk import FatalError

from tests.sop_support import add_customer, create_sop, run_days, touches


def manual(text: str) -> dict[str, Any]:
    return {"type": "send", "channel": "manual", "touchpoint": "private_chat", "text": text}


def pending_touch(api: Any, app: Any, clock: Any, external_id: str) -> Any:
    create_sop(
        api,
        f"by hand {external_id}",
        {
            "kind": "new_customer",
            "target": {},
            "steps": [{"day": 1, "at": "10:00", "actions": [manual("hi")]}],
        },
    )
    customer = add_customer(api, external_id)
    run_days(app, clock, 2)
    [touch] = touches(app, customer_id=customer)
    return touch


def host(app: Any) -> Any:
    from sopflow.host import PluginHost

    return PluginHost(app, "default_channels")


def slots_used(app: Any, customer_id: int) -> int:
    from sopflow.models import SendQuota

    with app.tx() as s:
        return s.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(SendQuota.used), 0)).where(
                SendQuota.customer_id == customer_id
            )
        )


def test_a_manual_touch_waits_for_the_members_sent_and_moves_once(api, sopflow_app, manual_clock):
    from sopflow.engine.delivery.confirmations import poll_confirmations

    touch = pending_touch(api, sopflow_app, manual_clock, "wm-manual-sent")
    assert touch.status == "pending" and touch.outcome["results"][0]["status"] == "pending"
    assert poll_confirmations(sopflow_app) == 0  # nobody tapped: the poll cannot say it went out
    assert host(sopflow_app).confirm_touches(api.tenant_id, [touch.id], tap="sent", staff="zhangsan") == {
        touch.id: "sent"
    }
    # a second tap (another answer, a reload) changes nothing
    assert host(sopflow_app).confirm_touches(api.tenant_id, [touch.id], tap="skip", staff="lisi") == {
        touch.id: "sent"
    }
    [after] = touches(sopflow_app, id=touch.id)
    assert after.outcome["tap"]["answer"] == "sent" and after.outcome["tap"]["staff"] == "zhangsan"
    assert after.outcome["confirmed"] == "sent"
    assert slots_used(sopflow_app, touch.customer_id) == 1  # it went out: the day's push is used


def test_a_skipped_manual_touch_is_skipped_by_staff_and_gives_its_slot_back(api, sopflow_app, manual_clock):
    touch = pending_touch(api, sopflow_app, manual_clock, "wm-manual-skip")
    assert slots_used(sopflow_app, touch.customer_id) == 1
    assert host(sopflow_app).confirm_touches(api.tenant_id, [touch.id], tap="skip", staff="zhangsan") == {
        touch.id: "skipped"
    }
    assert host(sopflow_app).confirm_touches(api.tenant_id, [touch.id], tap="sent", staff="zhangsan") == {
        touch.id: "skipped"
    }
    [after] = touches(sopflow_app, id=touch.id)
    assert after.outcome["reason"] == "skipped_by_staff" and "cap_day" not in after.outcome
    assert slots_used(sopflow_app, touch.customer_id) == 0  # nothing went out: the day's push is free


def test_a_tap_that_is_neither_sent_nor_skip_is_refused_and_changes_nothing(api, sopflow_app, manual_clock):
    touch = pending_touch(api, sopflow_app, manual_clock, "wm-manual-bad")
    with pytest.raises(FatalError, match=r"tap: 'done' .*'sent' or 'skip'"):
        host(sopflow_app).confirm_touches(api.tenant_id, [touch.id], tap="done")
    [after] = touches(sopflow_app, id=touch.id)
    assert after.status == "pending" and "tap" not in after.outcome
