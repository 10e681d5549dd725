"""How the actions of an SOP step are checked and carried out, whoever registered them.

Every step action names an ``ActionSpec`` in the registry: ``{"type": <name>,
...params}``.  Stored definitions of the older form ``{"type": "plugin",
"action": <name>, "params": {...}}`` name it in ``action`` and keep working.

A plain ``ActionSpec`` (any plugin's) is checked as an object of params and
called after the delivery transaction: ``run(context, params)``.  Core's own
actions (``sopflow.defaults.actions``) are ``CoreActionSpec`` records,
registered through the same hook: besides the call they take part in the
delivery transaction (data changes, building a channel message), which only
core can do with its own session.  A plugin that registers a plain
``ActionSpec`` under a built-in's name replaces the built-in everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import attrs
from sopflow_sdk import LEGACY_ACTION_TYPE, ActionSpec, ChannelSpec, SendReceipt, SkippableError

from sopflow.engine.context import EngineContext
from sopflow.engine.customers.records import TagChange

Problems = list[tuple[str, str]]


def _no_spec(name: str) -> None:
    return None


@dataclass
class DefinitionChecks:
    """What checking a step action may look up: the tenant's fields, channels
    (and an enabled channel's ``ChannelSpec``), stages, and the actions enabled
    for the tenant (name → spec)."""

    fields: Mapping[str, Any]
    channel_exists: Callable[[str], bool]
    stage_exists: Callable[[int], bool]
    actions: Mapping[str, ActionSpec]
    channel_spec: Callable[[str], ChannelSpec | None] = _no_spec


@dataclass
class StepCall:
    """One call a prepared step makes after the transaction, in order."""

    index: int
    action: Mapping[str, Any]
    message: dict[str, Any]
    #: ``call(ctx, action, message, now) -> SendReceipt``
    call: Callable[[Any, Mapping[str, Any], dict[str, Any], datetime], SendReceipt]


@dataclass
class StepPreparation:
    """One step of one touch being prepared inside the delivery transaction."""

    ctx: EngineContext
    s: Any
    touch: Any
    customer: Any
    staff: Any
    fields: Mapping[str, Any]
    now: datetime
    enrollment: Any
    identities: Any = None
    channels: dict[Any, Any] | None = None
    calls: list[StepCall] = field(default_factory=list)
    #: all calls may be repeated after a crash (else the touch goes to ``review``)
    idempotent: bool = True
    tags: TagChange = field(default_factory=TagChange)
    changed_fields: dict[str, Any] = field(default_factory=dict)

    def add_change(self, tags: TagChange, fields: Mapping[str, Any]) -> None:
        """Merge one data action's changes into the step's one ``customer.updated`` event."""
        self.tags = TagChange(
            tuple(sorted(set(self.tags.added) | set(tags.added))),
            tuple(sorted(set(self.tags.removed) | set(tags.removed))),
        )
        self.changed_fields.update(fields)


def _engine_only(context: Any, params: Any) -> None:
    raise TypeError("a core action runs inside the delivery transaction; the engine calls its prepare")


@attrs.frozen(kw_only=True)
class CoreActionSpec(ActionSpec):
    """A built-in action: an ``ActionSpec`` that also checks its own keys and
    takes part in the delivery transaction.

    ``check(raw, path, problems, checks)`` returns the stored form of the
    action; ``prepare(step, index, action)`` runs in the transaction and
    appends its ``StepCall`` (if any) to ``step.calls``; ``changes_data``
    asks for a savepoint, so a later action that cannot be prepared rolls the
    changes back.
    """

    run: Callable[..., Any] = _engine_only
    check: Callable[[Mapping[str, Any], str, Problems, DefinitionChecks], dict[str, Any]]
    prepare: Callable[[StepPreparation, int, Mapping[str, Any]], None]
    changes_data: bool = False


def action_name(action: Mapping[str, Any]) -> str:
    """The registered action a stored step action names (either form)."""
    return action["action"] if action["type"] == LEGACY_ACTION_TYPE else action["type"]


def action_params(action: Mapping[str, Any]) -> dict[str, Any]:
    """The params ``ActionSpec.run`` gets: the action's own keys (older form: ``params``)."""
    if action["type"] == LEGACY_ACTION_TYPE:
        return dict(action.get("params") or {})
    return {k: v for k, v in action.items() if k != "type"}


def spec_of(registry: Any, action: Mapping[str, Any]) -> ActionSpec | None:
    """The registered ``ActionSpec`` a stored action names (either form), or None."""
    reg = registry.get("register_actions", action_name(action))
    return reg.spec if reg is not None else None


def changes_data(registry: Any, step: Mapping[str, Any]) -> bool:
    """Whether preparing the step changes data (then it runs in a savepoint)."""
    for action in step["actions"]:
        spec = spec_of(registry, action)
        if isinstance(spec, CoreActionSpec) and spec.changes_data:
            return True
    return False


def check_action(p: str, raw: Any, problems: Problems, checks: DefinitionChecks) -> dict[str, Any]:
    """The stored form of one step action, every problem added to ``problems``."""
    names = ", ".join(checks.actions)
    if not isinstance(raw, Mapping) or not isinstance(raw.get("type"), str):
        problems.append((f"{p}.type", f"use one of {names}"))
        return {}
    kind = raw["type"]
    if kind == LEGACY_ACTION_TYPE:
        return _check_legacy(p, raw, problems, checks)
    spec = checks.actions.get(kind)
    if spec is None:
        problems.append((f"{p}.type", f"use one of {names}; see GET /api/v1/plugins"))
        return {}
    if isinstance(spec, CoreActionSpec):
        checked = spec.check(raw, p, problems, checks)
        if not (spec.params_schema or {}).get("additionalProperties"):
            # a built-in action takes only its own keys: one it would drop is refused
            for key in sorted(set(raw) - set(checked) - {"type"}):
                problems.append((f"{p}.{key}", f"not a key of a {kind} action; see docs/sops.md"))
        return {"type": kind, **checked}
    return {"type": kind, **{k: v for k, v in raw.items() if k != "type"}}


def _check_legacy(
    p: str, raw: Mapping[str, Any], problems: Problems, checks: DefinitionChecks
) -> dict[str, Any]:
    name, params = raw.get("action"), raw.get("params", {})
    spec = checks.actions.get(name) if isinstance(name, str) else None
    if spec is None or isinstance(spec, CoreActionSpec):
        problems.append((f"{p}.action", f"no enabled plugin action {name!r}; see GET /api/v1/plugins"))
    if not isinstance(params, Mapping):
        problems.append((f"{p}.params", "an object of the action's parameters"))
        params = {}
    return {"type": LEGACY_ACTION_TYPE, "action": name, "params": dict(params)}


def prepare_action(step: StepPreparation, index: int, action: Mapping[str, Any]) -> None:
    """Prepare one action of the step, by whatever registered its name."""
    spec = spec_of(step.ctx.plugins.registry, action)
    if isinstance(spec, CoreActionSpec):
        spec.prepare(step, index, action)
        return
    if spec is None or not spec.idempotent:
        step.idempotent = False  # a plugin action may have side effects: a human reviews a crash
    touch, customer = step.touch, step.customer
    message = {
        "tenant_id": touch.tenant_id,
        "touch_id": touch.id,
        "customer_id": customer.id,
        "customer": {
            "display_name": customer.display_name,
            "source": customer.source,
            "fields": dict(customer.fields),
        },
        "idempotency_key": f"touch:{touch.id}:{index}",
        "outbound": None,
    }
    step.calls.append(StepCall(index, action, message, run_plugin_action))


def run_plugin_action(
    ctx: EngineContext, action: Mapping[str, Any], message: dict[str, Any], now: datetime
) -> SendReceipt:
    """Run a plugin's ``ActionSpec``: ``run(context, params)``; a returned
    ``SendReceipt`` is kept, anything else counts as done."""
    spec = spec_of(ctx.plugins.registry, action)
    if spec is None:
        raise SkippableError(f"plugin action {action_name(action)!r} is no longer installed")
    context = {k: v for k, v in message.items() if k != "outbound"}
    result = spec.run(context, action_params(action))
    return result if isinstance(result, SendReceipt) else SendReceipt("sent")
