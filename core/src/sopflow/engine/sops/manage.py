"""SOP lifecycle: draft → started → stopped, versions, audience at start,
manual end, stop."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sopflow_sdk import ConfigError
from sqlalchemy.orm import Session

from sopflow.conditions import audience_filter, parse, snapshot_customer
from sopflow.engine.context import EngineContext
from sopflow.engine.customers.fields import field_definitions
from sopflow.engine.customers.segments import expand_segments
from sopflow.engine.sops.audience import enrol_window, staff_filter
from sopflow.engine.sops.definition import validate_definition
from sopflow.engine.sops.enrolment import ACTIVE, SopRuntime, enroll, tenant_timezone
from sopflow.engine.sops.lifecycle import end_enrollment
from sopflow.errors import Conflict, InvalidInput, NotFound
from sopflow.models import Customer, Enrollment, Sop, SopVersion, Stage

AUDIENCE_BATCH = 5000


def _checks(
    session: Session, tenant_id: int, ctx: EngineContext, exclude_sop: int | None = None
) -> dict[str, Any]:
    def channel_exists(name: str) -> bool:
        reg = ctx.plugins.registry.get("register_channels", name)
        return reg is not None and ctx.plugin_enabled(session, tenant_id, reg.plugin)

    def channel_spec(name: str) -> Any:
        reg = ctx.plugins.registry.get("register_channels", name)
        return reg.spec if reg is not None else None

    def stage_exists(stage_id: int) -> bool:
        return (
            session.scalar(sa.select(Stage.id).where(Stage.id == stage_id, Stage.tenant_id == tenant_id))
            is not None
        )

    def sop_is_nurture(sop_id: int) -> bool:
        return (
            sop_id != exclude_sop
            and session.scalar(sa.select(Sop.kind).where(Sop.id == sop_id, Sop.tenant_id == tenant_id))
            == "nurture"
        )

    return {
        "fields": field_definitions(session, tenant_id, ctx.plugins),
        "channel_exists": channel_exists,
        "channel_spec": channel_spec,
        "stage_exists": stage_exists,
        "sop_is_nurture": sop_is_nurture,
    }


def enabled_actions(session: Session, tenant_id: int, ctx: EngineContext) -> dict[str, Any]:
    """The step types a tenant's SOPs may use: name → ``ActionSpec`` of an enabled plugin."""
    off = ctx.disabled_plugins(session, tenant_id)
    return {
        reg.spec.name: reg.spec
        for reg in ctx.plugins.registry.all("register_actions")
        if reg.plugin in ctx.plugins.infos and reg.plugin not in off
    }


def create_sop(
    session: Session, ctx: EngineContext, tenant_id: int, name: str, definition: Any, now: datetime
) -> Sop:
    """Create an SOP as a draft with version 1 of ``definition`` (validated,
    segments expanded); ``InvalidInput`` naming every problem."""
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise InvalidInput([("name", "a non-empty name of at most 200 characters")])
    checked = _validated(session, ctx, tenant_id, definition)
    sop = Sop(
        tenant_id=tenant_id,
        name=name,
        kind=checked["kind"],
        status="draft",
        current_version=1,
        created_at=now,
        updated_at=now,
    )
    session.add(sop)
    session.flush()
    session.add(SopVersion(tenant_id=tenant_id, sop_id=sop.id, version=1, definition=checked, created_at=now))
    session.flush()
    return sop


def checked_definition(
    session: Session, ctx: EngineContext, tenant_id: int, definition: Any, sop_id: int | None = None
) -> dict[str, Any]:
    """The normalised definition as saving it would store it (segments expanded),
    or ``InvalidInput`` naming every problem; nothing is written."""
    return _validated(session, ctx, tenant_id, definition, sop_id)


def _validated(
    session: Session, ctx: EngineContext, tenant_id: int, definition: Any, sop_id: int | None = None
) -> dict[str, Any]:
    if isinstance(definition, dict):
        # saved segments are expanded into the version: a version never changes under its enrolments
        definition = dict(definition)
        if isinstance(definition.get("target"), dict) and definition["target"].get("rule") is not None:
            definition["target"] = {
                **definition["target"],
                "rule": expand_segments(
                    session, tenant_id, definition["target"]["rule"], "definition.target.rule"
                ),
            }
        if definition.get("early_end") is not None:
            definition["early_end"] = expand_segments(
                session, tenant_id, definition["early_end"], "definition.early_end"
            )
        goal = definition.get("goal")
        if isinstance(goal, dict) and goal.get("rule") is not None:
            # a goal rule is a rule like the others: its segments are expanded too
            definition["goal"] = {
                **goal,
                "rule": expand_segments(session, tenant_id, goal["rule"], "definition.goal.rule"),
            }
    try:
        checks = _checks(session, tenant_id, ctx, sop_id)
        return validate_definition(definition, **checks, actions=enabled_actions(session, tenant_id, ctx))
    except ConfigError as exc:
        raise InvalidInput([(f"definition.{p}", m) for p, m in exc.problems]) from None


def check_definition(
    session: Session, ctx: EngineContext, tenant_id: int, definition: Any, sop_id: int | None = None
) -> dict[str, Any]:
    """The definition as it would be saved, or ``InvalidInput`` naming each bad
    path (``definition.steps[0].delay``); writes nothing (the editor's check)."""
    return _validated(session, ctx, tenant_id, definition, sop_id)


def audience_count(
    session: Session, tenant_id: int, target: Mapping[str, Any], fields: Mapping[str, Any], now: datetime
) -> int:
    """How many customers the target's rule and sources match now (before the
    per-window staff filter): the editor's preview before saving."""
    tz = tenant_timezone(session, tenant_id)
    where = _audience_where(session, tenant_id, target, fields, tz, now)
    return session.scalar(sa.select(sa.func.count()).select_from(Customer).where(*where)) or 0


def get_sop(session: Session, tenant_id: int, sop_id: int, *, lock: bool = False) -> Sop:
    """The tenant's SOP ``sop_id`` (``lock``: FOR UPDATE), else ``NotFound``."""
    q = sa.select(Sop).where(Sop.id == sop_id, Sop.tenant_id == tenant_id)
    sop = session.scalar(q.with_for_update() if lock else q)
    if sop is None:
        raise NotFound("SOP", sop_id)
    return sop


def current_definition(session: Session, sop: Sop) -> dict[str, Any]:
    """The definition of the SOP's current version."""
    version = session.scalar(
        sa.select(SopVersion).where(SopVersion.sop_id == sop.id, SopVersion.version == sop.current_version)
    )
    assert version is not None
    return version.definition


def update_sop(
    session: Session, ctx: EngineContext, sop: Sop, name: str | None, definition: Any, now: datetime
) -> Sop:
    """A draft is edited in place; a started or stopped SOP gets a new version,
    and enrolments already running keep theirs."""
    if name is not None:
        if not name.strip() or len(name) > 200:
            raise InvalidInput([("name", "a non-empty name of at most 200 characters")])
        sop.name = name
    if definition is not None:
        checked = _validated(session, ctx, sop.tenant_id, definition, sop.id)
        if checked["kind"] != sop.kind:
            raise InvalidInput([("definition.kind", f"an SOP keeps its kind ({sop.kind}); create a new SOP")])
        if sop.status == "draft":
            version = session.scalar(
                sa.select(SopVersion).where(
                    SopVersion.sop_id == sop.id, SopVersion.version == sop.current_version
                )
            )
            assert version is not None
            version.definition = checked
        else:
            new_version(session, sop, checked, now)
    sop.updated_at = now
    session.flush()
    return sop


def new_version(session: Session, sop: Sop, definition: dict[str, Any], now: datetime) -> SopVersion:
    """Make ``definition`` the SOP's next version; enrolments keep the version they
    entered with.  The one place a version number is bumped."""
    sop.current_version += 1
    version = SopVersion(
        tenant_id=sop.tenant_id,
        sop_id=sop.id,
        version=sop.current_version,
        definition=definition,
        created_at=now,
    )
    session.add(version)
    return version


def start_sop(session: Session, sop: Sop, now: datetime) -> Sop:
    """Start an SOP: new customers who match enter it; a nurture SOP's existing
    audience is enrolled in the background (``audience`` state ``pending``).
    ``Conflict`` when it is already started."""
    if sop.status == "started":
        raise Conflict("the SOP is already started")
    sop.status = "started"
    sop.started_at = now
    sop.stopped_at = None
    sop.audience = (
        {"state": "pending", "total": None, "done": 0, "enrolled": 0} if sop.kind == "nurture" else {}
    )
    session.flush()
    return sop


def compute_audience(
    session: Session,
    ctx: EngineContext,
    tenant_id: int,
    sop_id: int,
    now: datetime,
    batch: int = AUDIENCE_BATCH,
) -> dict[str, Any]:
    """Enrol a started nurture SOP's audience, in batches, recording progress.
    Resumable: it continues after the last customer id it saw."""
    sop = get_sop(session, tenant_id, sop_id)
    if sop.status != "started" or sop.kind != "nurture":
        return sop.audience
    checks = _checks(session, tenant_id, ctx)
    version = session.scalar(
        sa.select(SopVersion).where(SopVersion.sop_id == sop.id, SopVersion.version == sop.current_version)
    )
    runtime = SopRuntime(sop, version, checks["fields"])
    tz = tenant_timezone(session, tenant_id)
    where = _audience_where(session, tenant_id, version.definition["target"], checks["fields"], tz, now)
    progress = dict(sop.audience or {})
    if progress.get("total") is None:
        progress["total"] = session.scalar(sa.select(sa.func.count()).select_from(Customer).where(*where))
    progress["state"] = "running"
    after = progress.get("after", 0)
    ids = list(
        session.scalars(
            sa.select(Customer.id).where(*where, Customer.id > after).order_by(Customer.id).limit(batch)
        )
    )
    if ids:
        window = [*where, Customer.id > after, Customer.id <= ids[-1]]
        if runtime.staff:
            window.append(staff_filter(runtime.staff))

        def one(customer_id: int) -> bool:
            customer = session.get(Customer, customer_id)
            assert customer is not None
            snapshot = snapshot_customer(session, customer, tz)
            return enroll(session, runtime, customer, now, tenant_timezone=tz, snapshot=snapshot) is not None

        progress["enrolled"] += enrol_window(session, runtime, sa.and_(*window), now, tz, one)
        progress["done"] += len(ids)
    progress["after"] = ids[-1] if ids else after
    if len(ids) < batch:
        progress["state"] = "done"
    sop.audience = progress
    session.flush()
    return progress


def _audience_where(
    session: Session,
    tenant_id: int,
    target: Mapping[str, Any],
    fields: Mapping[str, Any],
    tz: str,
    now: datetime,
) -> list[Any]:
    """The SQL conditions for the customers in ``target`` (its rule, compiled, and
    its sources); staff are filtered per window in ``enrol_window``."""
    where = [Customer.tenant_id == tenant_id, Customer.merged_into_id.is_(None)]
    if target.get("rule"):
        where.append(
            audience_filter(
                session, parse(target["rule"], fields), tenant_id=tenant_id, tenant_timezone=tz, now=now
            )
        )
    if target.get("sources"):
        where.append(Customer.source.in_(target["sources"]))
    return where


def complete_audience(ctx: EngineContext, tenant_id: int, sop_id: int, max_batches: int = 100_000) -> None:
    """Compute a nurture SOP's whole audience now, one transaction per batch
    (the inline ``audience`` job: the embedded mode without workers, the CLI)."""
    for _ in range(max_batches):
        with ctx.tx() as s:
            progress = compute_audience(s, ctx, tenant_id, sop_id, ctx.now())
        if progress.get("state") != "running":
            return


def advance_audiences(ctx: EngineContext) -> int:
    """One batch of every nurture SOP whose audience is still being computed
    (the scheduler's step, and the ``audience`` actor).  Returns how many."""
    with ctx.tx() as s:
        started = s.execute(
            sa.select(Sop.tenant_id, Sop.id, Sop.audience).where(
                Sop.status == "started", Sop.kind == "nurture"
            )
        )
        # a transaction per SOP only for those still computing (each tick asks)
        pending = [(t, i) for t, i, a in started if (a or {}).get("state") in ("pending", "running")]
    moved = 0
    for tenant_id, sop_id in pending:
        with ctx.tx() as s:
            sop = s.get(Sop, sop_id)
            if sop is None or (sop.audience or {}).get("state") not in ("pending", "running"):
                continue
            compute_audience(s, ctx, tenant_id, sop_id, ctx.now())
            moved += 1
    return moved


def stop_sop(session: Session, sop: Sop, now: datetime, fields: Mapping[str, Any]) -> int:
    """Stop an SOP: its active enrolments end as ``stopped`` and their pending
    touches are cancelled (recorded with the reason)."""
    if sop.status != "started":
        raise Conflict(f"the SOP is {sop.status}; only a started SOP can be stopped")
    sop.status = "stopped"
    sop.stopped_at = now
    ended = 0
    for enrollment in session.scalars(
        sa.select(Enrollment).where(Enrollment.sop_id == sop.id, Enrollment.status == ACTIVE)
    ):
        end_enrollment(session, enrollment, "stopped", "sop_stopped", now, fields)
        ended += 1
    session.flush()
    return ended


def end_manually(
    session: Session,
    tenant_id: int,
    enrollment_id: int,
    now: datetime,
    fields: Mapping[str, Any],
    tags_add: list[str],
    flow_to: int | None,
    ctx: EngineContext,
) -> Enrollment:
    """Manual end: end one customer's enrolment by hand, with tags and a flow target."""
    enrollment = session.scalar(
        sa.select(Enrollment).where(Enrollment.id == enrollment_id, Enrollment.tenant_id == tenant_id)
    )
    if enrollment is None:
        raise NotFound("enrollment", enrollment_id)
    if enrollment.status != ACTIVE:
        raise Conflict(f"the enrolment already ended ({enrollment.status})")
    if flow_to is not None and not _checks(session, tenant_id, ctx)["sop_is_nurture"](flow_to):
        raise InvalidInput([("flow_to", "the id of a nurture SOP of this tenant")])
    end_enrollment(
        session, enrollment, "ended_manual", "manual", now, fields, tags_add=tags_add, flow_to=flow_to
    )
    return enrollment


def sop_to_dict(session: Session, sop: Sop) -> dict[str, Any]:
    """An SOP as the API shows it, with its current definition and audience progress."""
    return {
        "id": sop.id,
        "name": sop.name,
        "kind": sop.kind,
        "status": sop.status,
        "version": sop.current_version,
        "definition": current_definition(session, sop),
        "audience": {k: v for k, v in (sop.audience or {}).items() if k != "after"},
        "created_at": sop.created_at.isoformat(),
        "updated_at": sop.updated_at.isoformat(),
        "started_at": sop.started_at.isoformat() if sop.started_at else None,
        "stopped_at": sop.stopped_at.isoformat() if sop.stopped_at else None,
    }
