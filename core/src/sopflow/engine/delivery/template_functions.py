"""Plugin functions in message templates (``register_template_functions``),
bounded so that no plugin function can hang or break a render unnoticed.

Each call runs in its own daemon thread and is waited for at most the
function's ``timeout_seconds``: a function that hangs is abandoned (its thread
ends on its own or with the process) and the touch is skipped naming it, as is
one that raises.  A render makes at most ``MAX_TEMPLATE_CALLS`` calls.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sopflow_sdk import SkippableError, TemplateCall
from sqlalchemy.orm import Session

from sopflow.engine.context import EngineContext

#: calls of plugin functions one message may make (a template looping over a
#: function is a mistake, not a use)
MAX_TEMPLATE_CALLS = 50


def functions_for(
    ctx: EngineContext, session: Session, tenant_id: int, customer_id: int, touch_id: int | None
) -> dict[str, Callable[..., str]]:
    """The template functions of the plugins enabled for ``tenant_id``, bound to
    the customer being rendered for; ``{}`` when no plugin registers any."""
    regs = ctx.plugins.registry.all("register_template_functions")
    if not regs:
        return {}
    disabled = ctx.disabled_plugins(session, tenant_id)
    budget = [MAX_TEMPLATE_CALLS]
    out: dict[str, Callable[..., str]] = {}
    for reg in regs:
        if reg.plugin in disabled:
            continue
        call = TemplateCall(
            tenant_id=tenant_id,
            customer_id=customer_id,
            now=ctx.now(),
            host=ctx.host_for(reg.plugin),
            touch_id=touch_id,
        )
        out[reg.spec.name] = _bounded(reg.spec, call, budget)
    return out


def _bounded(spec: Any, call: TemplateCall, budget: list[int]) -> Callable[..., str]:
    def run(*args: Any, **kwargs: Any) -> str:
        budget[0] -= 1
        if budget[0] < 0:
            raise SkippableError(
                f"the message calls template functions more than {MAX_TEMPLATE_CALLS} times; "
                "call each once per link"
            )
        result: list[Any] = []

        def target() -> None:
            try:
                result.append(("ok", spec.fn(call, *args, **kwargs)))
            except Exception as exc:  # reported below, in the rendering thread
                result.append(("error", exc))

        worker = threading.Thread(target=target, name=f"template-{spec.name}", daemon=True)
        worker.start()
        worker.join(spec.timeout_seconds)
        if not result:
            raise SkippableError(f"template function {spec.name}() took longer than {spec.timeout_seconds} s")
        kind, value = result[0]
        if kind == "error":
            raise SkippableError(f"template function {spec.name}() failed: {value}") from value
        return "" if value is None else str(value)

    run.__name__ = spec.name
    return run
