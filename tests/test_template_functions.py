"""register_template_functions: plugin functions in message templates, bound to
the customer, per-tenant switchable, and bounded (a hang or an error skips the
touch naming the function; the render never waits longer than the timeout)."""

from __future__ import annotations

import threading
import time
from typing import Any

from sopflow_sdk import TemplateFunctionSpec

from tests.sop_support import add_customer, create_sop, log_channel, run_days, send, touches
from tests.test_hooks import app_with, plugin  # noqa: F401  (app_with is a fixture)

RELEASE = threading.Event()


def _shout(call: Any, text: str) -> str:
    return f"{text.upper()}#{call.customer_id}@{call.tenant_id}/{call.touch_id is not None}"


def _hang(call: Any) -> str:
    RELEASE.wait(5)
    return "late"


def _boom(call: Any) -> str:
    raise ValueError("no destination configured")


def _functions(register: Any) -> None:
    register(TemplateFunctionSpec("shout", fn=_shout, description="upper-case"))
    register(TemplateFunctionSpec("hang", fn=_hang, timeout_seconds=0.2))
    register(TemplateFunctionSpec("boom", fn=_boom))


def _sop(api: Any, text: str, tag: str) -> None:
    step = {"day": 1, "at": "10:00", "actions": [send(text)]}
    target = {"rule": {"tags": {"any_of": [tag]}}}
    create_sop(api, tag, {"kind": "nurture", "target": target, "steps": [step]})


def test_hook_register_template_functions_renders_for_the_customer(app_with, manual_clock):  # noqa: F811
    app, api = app_with(("tpl", plugin("tpl", register_template_functions=_functions)))
    _sop(api, 'Hi {{ shout("read this") }}', "a")
    customer = add_customer(api, "wm-a", tags=["a"])
    run_days(app, manual_clock, 2)
    [message] = log_channel(app, api).sent
    assert message.text == f"Hi READ THIS#{customer}@{api.tenant_id}/True"


def test_a_hanging_or_failing_function_skips_the_touch_naming_it(app_with, manual_clock):  # noqa: F811
    app, api = app_with(("tpl", plugin("tpl", register_template_functions=_functions)))
    _sop(api, "{{ hang() }}", "h")
    _sop(api, "{{ boom() }}", "b")
    hung, failed = add_customer(api, "wm-h", tags=["h"]), add_customer(api, "wm-b", tags=["b"])
    started = time.monotonic()
    try:
        run_days(app, manual_clock, 2)
    finally:
        RELEASE.set()
    assert time.monotonic() - started < 4  # the hanging function did not hold the render
    [t] = touches(app, customer_id=hung)
    assert t.status == "skipped" and "hang() took longer than 0.2 s" in t.outcome["reason"]
    [t] = touches(app, customer_id=failed)
    assert t.status == "skipped" and "boom() failed: no destination configured" in t.outcome["reason"]
    assert log_channel(app, api).sent == []


def test_a_plugin_switched_off_for_the_tenant_lends_no_function(app_with, manual_clock):  # noqa: F811
    app, api = app_with(("tpl", plugin("tpl", register_template_functions=_functions)))
    assert api.put("/api/v1/plugins/tpl", json={"enabled": False}).status_code == 200
    _sop(api, "x{{ shout is defined }}", "a")
    add_customer(api, "wm-a", tags=["a"])
    run_days(app, manual_clock, 2)
    assert [m.text for m in log_channel(app, api).sent] == ["xFalse"]


def test_a_bad_function_name_is_refused_when_the_record_is_built():
    import pytest

    with pytest.raises(ValueError, match="Python identifier"):
        TemplateFunctionSpec("track-link", fn=_shout)
