"""Plugin functions in message templates (``register_template_functions``),
bounded so that no plugin function can hang or break a render unnoticed.

Each call runs in its own daemon thread and is waited for at most the
function's ``timeout_seconds``: a function that hangs is abandoned (its thread
ends on its own or with the process) and the touch is skipped naming it, as is
one that raises.  A render makes at most ``MAX_TEMPLATE_CALLS`` calls.

A function does no I/O of its own: what it may need of its plugin's settings —
the tenant's channel accounts of the channels the plugin registers, secrets
decrypted — is read here, in the delivery's session, the first time the
function is called in a message, and handed over in ``TemplateCall.accounts``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sopflow_sdk import SkippableError, TemplateCall
from sqlalchemy.orm import Session

from sopflow.engine.context import EngineContext
from sopflow.models import ChannelAccount

#: calls of plugin functions one message may make (a template looping over a
#: function is a mistake, not a use)
MAX_TEMPLATE_CALLS = 50


def functions_for(
    ctx: EngineContext,
    session: Session,
    tenant_id: int,
    customer_id: int,
    touch_id: int | None,
    text: str = "",
) -> dict[str, Callable[..., str]]:
    """The template functions ``text`` names, of the plugins enabled for ``tenant_id``,
    bound to the customer being rendered for; ``{}`` (and no query) when it names none,
    which keeps the delivery hot path as it was for messages without functions."""
    regs = [r for r in ctx.plugins.registry.all("register_template_functions") if r.spec.name in text]
    if not regs:
        return {}
    disabled = ctx.disabled_plugins(session, tenant_id)
    budget = [MAX_TEMPLATE_CALLS]
    out: dict[str, Callable[..., str]] = {}
    for reg in regs:
        if reg.plugin in disabled:
            continue

        def make_call(plugin: str = reg.plugin) -> TemplateCall:
            return TemplateCall(
                tenant_id=tenant_id,
                customer_id=customer_id,
                now=ctx.now(),
                accounts=_accounts(ctx, session, tenant_id, plugin),
                touch_id=touch_id,
            )

        out[reg.spec.name] = _bounded(reg.spec, make_call, budget)
    return out


def _accounts(ctx: EngineContext, session: Session, tenant_id: int, plugin: str) -> tuple[Any, ...]:
    """The tenant's accounts of ``plugin``'s channels, as ``Host.channel_accounts`` shows them."""
    channels = [r.spec.name for r in ctx.plugins.registry.all("register_channels") if r.plugin == plugin]
    if not channels:
        return ()
    rows = session.scalars(
        sa.select(ChannelAccount)
        .where(ChannelAccount.tenant_id == tenant_id, ChannelAccount.channel.in_(channels))
        .order_by(ChannelAccount.id)
    )
    return tuple(
        SimpleNamespace(
            id=a.id,
            tenant_id=a.tenant_id,
            channel=a.channel,
            name=a.name,
            config=dict(a.config),
            secrets=ctx.credentials.open(a.secrets_ciphertext),
        )
        for a in rows
    )


def _bounded(spec: Any, make_call: Callable[[], TemplateCall], budget: list[int]) -> Callable[..., str]:
    made: list[TemplateCall] = []

    def run(*args: Any, **kwargs: Any) -> str:
        if not made:  # read in the rendering thread, on the delivery's session
            made.append(make_call())
        call = made[0]
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
