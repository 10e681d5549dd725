"""What a journey's definition may say: ``check_journey`` validates a journey
as posted (its switches, name, reminder channel, and its stages with their
rules, reminders and entry SOPs) and reports every problem at once with its
path and the fix.  ``sopflow.engine.journeys.manage`` stores the result."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.conditions.parse import MAX_ID, whole_number
from sopflow.engine.context import EngineContext
from sopflow.engine.customers.fields import FieldDef, field_definitions
from sopflow.engine.customers.segments import expand_segments
from sopflow.engine.journeys.pipelines import stages_of
from sopflow.engine.journeys.rules import check_reminders, check_rules
from sopflow.errors import InvalidInput
from sopflow.models import Journey, Sop, Stage

#: a journey's switches, in the order of their defaults in ``check_journey``
SETTINGS = ("automation", "allow_backward", "stage_reminders", "follow_up_reminders")
_DEFAULTS = (True, False, True, False)
_STAGE_KEYS = {"id", "name", "rules", "entry_sop_id", "reminders"}

Problems = list[tuple[str, str]]


def check_journey(
    session: Session,
    ctx: EngineContext,
    tenant_id: int,
    raw: Any,
    *,
    pipeline_id: int,
    current: Journey | None,
) -> dict[str, Any]:
    """The normalised journey (its settings, and ``stages`` when given) or
    ``InvalidInput`` naming every problem.  ``current`` is the journey being
    edited (its values are the defaults), None for a new one."""
    if not isinstance(raw, Mapping):
        raise InvalidInput([("body", "expected a JSON object")])
    problems: Problems = []
    allowed = {"name", "template", "stages", "reminder_channel", *SETTINGS}
    problems += [(k, "unknown journey setting") for k in sorted(set(raw) - allowed)]
    out = _check_settings(ctx, raw, current, problems)
    stages = raw.get("stages")
    if stages is None and current is None:
        problems.append(("stages", 'give the stages in order: [{"name": ..., "rules": [...]}, ...]'))
    if stages is not None:
        out["stages"] = _check_stages(session, ctx, tenant_id, stages, pipeline_id, current, problems)
        needs_channel = out["follow_up_reminders"] or (
            out["stage_reminders"] and any(s["reminders"] for s in out["stages"])
        )
        if needs_channel and out["reminder_channel"] is None:
            problems.append(
                ("reminder_channel", "give the channel that notifies staff (e.g. 'wecom') for the reminders")
            )
    if problems:
        raise InvalidInput(problems)
    return out


def with_template(ctx: EngineContext, raw: Any) -> Any:
    """``raw`` with its ``template`` (a plugin's pipeline template) filled in:
    the template's name and stages unless ``raw`` gives its own."""
    if not isinstance(raw, Mapping) or raw.get("template") is None:
        return raw
    template = raw["template"]  # a template's key is text: any other value names none
    reg = ctx.plugins.registry.get("register_pipelines", template) if isinstance(template, str) else None
    if reg is None:
        known = sorted(r.spec.key for r in ctx.plugins.registry.all("register_pipelines"))
        raise InvalidInput([("template", f"no pipeline template {raw['template']!r}; installed: {known}")])
    out = dict(raw)
    out["name"] = raw.get("name") or reg.spec.name or reg.spec.key
    out["stages"] = raw.get("stages") or [{"name": st.name} for st in reg.spec.stages]
    return out


def _bool(raw: Mapping[str, Any], key: str, default: bool, problems: Problems) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        problems.append((key, "true or false"))
        return default
    return value


def _bad_name(name: Any) -> bool:
    return not isinstance(name, str) or not name.strip() or len(name) > 100 or "\x00" in name


def _check_settings(
    ctx: EngineContext, raw: Mapping[str, Any], current: Journey | None, problems: Problems
) -> dict[str, Any]:
    """The switches, the name and the reminder channel."""
    out: dict[str, Any] = {}
    for key, default in zip(SETTINGS, _DEFAULTS, strict=True):
        out[key] = _bool(raw, key, getattr(current, key) if current else default, problems)
    name = raw.get("name")
    if name is not None and _bad_name(name):
        problems.append(("name", "a non-empty name of at most 100 characters"))
    out["name"] = name
    channel = raw.get("reminder_channel", current.reminder_channel if current else None)
    if channel is not None and (
        not isinstance(channel, str) or ctx.plugins.registry.get("register_channels", channel) is None
    ):
        problems.append(("reminder_channel", f"no installed channel {channel!r}; see GET /api/v1/plugins"))
    out["reminder_channel"] = channel
    return out


def _check_stages(
    session: Session,
    ctx: EngineContext,
    tenant_id: int,
    stages: Any,
    pipeline_id: int,
    current: Journey | None,
    problems: Problems,
) -> list[dict[str, Any]]:
    """The stages in order: unique names first (a rule may name any stage), then each stage."""
    if not isinstance(stages, list) or not stages:
        problems.append(("stages", "a non-empty list of stages in order"))
        stages = []
    limit = ctx.settings.max_journey_stages
    if len(stages) > limit:
        problems.append(
            ("stages", f"at most {limit} stages per journey (SOPFLOW_MAX_JOURNEY_STAGES); merge some")
        )
    existing = {st.id: st for st in stages_of(session, pipeline_id)} if current else {}
    names: list[str] = []
    for i, st in enumerate(stages):
        nm = st.get("name") if isinstance(st, Mapping) else None
        if _bad_name(nm):
            problems.append((f"stages[{i}].name", "a non-empty name of at most 100 characters"))
        elif nm in names:
            problems.append((f"stages[{i}].name", f"stage {nm!r} appears twice; names are unique"))
        names.append(nm if isinstance(nm, str) else "")
    fields = field_definitions(session, tenant_id, ctx.plugins)
    out: list[dict[str, Any]] = []
    for i, st in enumerate(stages):
        if not isinstance(st, Mapping):
            problems.append((f"stages[{i}]", "expected a stage object"))
            continue
        out.append(
            _check_stage(
                session, tenant_id, st, f"stages[{i}]", pipeline_id, existing, names, fields, problems
            )
        )
    return out


def _check_stage(
    session: Session,
    tenant_id: int,
    st: Mapping[str, Any],
    p: str,
    pipeline_id: int,
    existing: Mapping[int, Stage],
    names: list[str],
    fields: Mapping[str, FieldDef],
    problems: Problems,
) -> dict[str, Any]:
    """One stage (at path ``p``): its settings, entry SOP, reminders and rules."""
    for key in sorted(set(st) - _STAGE_KEYS):
        problems.append((f"{p}.{key}", "unknown stage setting; use id, name, rules, entry_sop_id, reminders"))
    # ids are whole numbers (3 or 3.0, as JSON Schema's integer); any other value names no
    # row, and is not looked up: it would not bind as an id on Postgres
    stage_id = st.get("id")
    if stage_id is not None and whole_number(stage_id) not in existing:
        problems.append(
            (f"{p}.id", f"stage {stage_id} is not a stage of this journey; omit id for a new one")
        )
    entry = st.get("entry_sop_id")
    if entry is not None:
        entry = whole_number(entry)
        kind = (
            session.scalar(sa.select(Sop.kind).where(Sop.id == entry, Sop.tenant_id == tenant_id))
            if entry is not None and 1 <= entry <= MAX_ID
            else None
        )
        if kind != "nurture":
            problems.append((f"{p}.entry_sop_id", "the id of a nurture SOP of this tenant"))
    reminders = check_reminders(st.get("reminders"), f"{p}.reminders", problems)
    try:  # saved segments are expanded: a stage rule never changes under its journey
        raw_rules = expand_segments(session, tenant_id, st.get("rules"), f"{p}.rules")
    except InvalidInput as exc:
        problems += [(e["field"], e["message"]) for e in exc.errors]
        raw_rules = None
    rules = check_rules(
        raw_rules, f"{p}.rules", pipeline_id=pipeline_id, stage_names=names, fields=fields, problems=problems
    )
    return {
        "id": whole_number(stage_id),
        "name": st.get("name"),
        "rules": rules,
        "entry_sop_id": entry,
        "reminders": reminders,
    }
