"""Enrolment: who enters which SOP, exactly once, with all touches materialised.

Called from the evaluate step after an event, from an SOP's audience job at
start, and from flows.  The unique key (sop, customer, entry_seq) makes a
concurrent double enrolment impossible; the loser's savepoint rolls back.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sopflow.conditions import CustomerSnapshot, evaluate, parse, resolve_timezone, snapshot_customer
from sopflow.config_cache import cached, frozen_copy
from sopflow.engine.sops.arms import arm_names, assign_arm
from sopflow.engine.sops.definition import HIDDEN_KIND
from sopflow.engine.sops.schedule import arm_planned_times
from sopflow.models import ChannelIdentity, Customer, Enrollment, Sop, SopVersion, Staff, Tenant, Touch
from sopflow.models.touch_status import TouchStatus

ACTIVE = "active"


_PARSED: OrderedDict[str, tuple[Any, Any]] = OrderedDict()
_PARSED_MAX = 2048
_parsed_lock = threading.Lock()


def _parsed_rules(sop: Sop, version: SopVersion, fields: Mapping[str, Any]) -> tuple[Any, Any]:
    """Parse a version's target and early-end rules once per process, keyed by
    the rules' own JSON (rules were validated when the version was saved)."""
    definition = version.definition
    key = json.dumps([definition["target"].get("rule"), definition.get("early_end")], sort_keys=True)
    with _parsed_lock:
        hit = _PARSED.get(key)
        if hit is not None:
            _PARSED.move_to_end(key)
            return hit
    target = definition["target"].get("rule")
    parsed = (
        parse(target, fields) if target else None,
        parse(definition["early_end"], fields) if definition.get("early_end") else None,
    )
    _remember(key, parsed)
    return parsed


def _remember(key: str, parsed: Any) -> None:
    with _parsed_lock:
        _PARSED[key] = parsed
        while len(_PARSED) > _PARSED_MAX:
            _PARSED.popitem(last=False)


def parse_saved(rule: Any, fields: Mapping[str, Any]) -> Any:
    """Parse a rule that was validated when it was saved, once per process."""
    key = json.dumps(["rule", rule], sort_keys=True)
    with _parsed_lock:
        hit = _PARSED.get(key)
        if hit is not None:
            _PARSED.move_to_end(key)
            return hit
    parsed = parse(rule, fields)
    _remember(key, parsed)
    return parsed


class SopRuntime:
    """What enrolment needs to know about one SOP version, parsed once."""

    def __init__(self, sop: Sop, version: SopVersion, fields: Mapping[str, Any]) -> None:
        self.sop = sop
        self.version = version
        self.definition = version.definition
        target = self.definition["target"]
        self.rule, self.early_end = _parsed_rules(sop, version, fields)
        self.sources = set(target.get("sources") or [])
        self.staff = set(target.get("staff") or [])

    def targets(self, snapshot: CustomerSnapshot, staff_ids: set[str], now: datetime) -> bool:
        """Whether a customer (``snapshot``, served by ``staff_ids``) is in this SOP's
        target: source, staff and the target rule all allow it."""
        if self.sources and snapshot.source not in self.sources:
            return False
        if self.staff and not (self.staff & staff_ids):
            return False
        return self.rule is None or evaluate(self.rule, snapshot, now)

    def ends_early(self, snapshot: CustomerSnapshot, now: datetime) -> bool:
        """Whether the SOP's early-end rule holds for the customer now."""
        return self.early_end is not None and evaluate(self.early_end, snapshot, now)


def staff_of(session: Session, customer: Customer) -> set[str]:
    """External ids of the staff members the customer is connected to."""
    ids = set(
        session.scalars(
            sa.select(Staff.external_id)
            .join(ChannelIdentity, ChannelIdentity.staff_id == Staff.id)
            .where(ChannelIdentity.customer_id == customer.id)
        )
    )
    if customer.owner_staff_id:
        owner = session.get(Staff, customer.owner_staff_id)
        if owner:
            ids.add(owner.external_id)
    return ids


def enroll(
    session: Session,
    runtime: SopRuntime,
    customer: Customer,
    now: datetime,
    *,
    tenant_timezone: str,
    flowed_from: int | None = None,
    depth: int = 0,
    snapshot: CustomerSnapshot | None = None,
) -> Enrollment | None:
    """Enrol ``customer`` unless the SOP's rules say no.  Returns the enrolment
    or ``None``.  The caller has checked the target."""
    sop = runtime.sop
    if sop.status != "started":
        return None
    previous = list(
        session.scalars(
            sa.select(Enrollment)
            .where(Enrollment.sop_id == sop.id, Enrollment.customer_id == customer.id)
            .order_by(Enrollment.entry_seq)
        )
    )
    if previous and (
        not runtime.definition.get("reentry")
        or previous[-1].status == ACTIVE
        or not (previous[-1].rearmed or flowed_from is not None)
    ):
        return None
    snapshot = snapshot or snapshot_customer(session, customer, tenant_timezone)
    if flowed_from is None and runtime.ends_early(snapshot, now):
        return None  # the entry guard: matches entry and early end → not enrolled
    tz = resolve_timezone(customer.timezone, tenant_timezone)
    arm = _arm_for(runtime, customer, previous)
    enrollment = Enrollment(
        tenant_id=sop.tenant_id,
        sop_id=sop.id,
        sop_version_id=runtime.version.id,
        customer_id=customer.id,
        entry_seq=len(previous),
        status=ACTIVE,
        timezone=tz,
        enrolled_at=now,
        flowed_from_id=flowed_from,
        depth=depth,
        arm=arm,
    )
    try:
        with session.begin_nested():
            session.add(enrollment)
            session.flush()
            rows = _touch_rows(runtime, enrollment, now, tz)
            if rows:
                session.execute(sa.insert(Touch.__table__), rows)
    except IntegrityError:
        return None  # a concurrent enrolment won
    return enrollment


def _arm_for(runtime: SopRuntime, customer: Customer, previous: list[Enrollment]) -> str | None:
    """The customer's arm of a split SOP: the one of their last entry while the SOP
    still has it, else the hash's (which gives the same unless the arms changed)."""
    names = arm_names(runtime.definition)
    if not names:
        return None
    if previous and previous[-1].arm in names:
        return previous[-1].arm
    return assign_arm(runtime.sop.id, customer.id, runtime.definition["arms"])


def _touch_rows(runtime: SopRuntime, enrollment: Enrollment, now: datetime, tz: str) -> list[dict[str, Any]]:
    """One touch row per step of the enrolment's arm (every step without a split),
    due at its planned time (a step the catch-up policy drops is ``skipped`` at
    once).  Inserted with one Core INSERT, not as Touch objects: building and
    flushing those was the larger part of an enrolment (whoever needs the
    touches reads them with a query)."""
    return [
        {
            "tenant_id": enrollment.tenant_id,
            "sop_id": enrollment.sop_id,
            "enrollment_id": enrollment.id,
            "customer_id": enrollment.customer_id,
            "step_index": index,
            "status": TouchStatus.SCHEDULED if due is not None else TouchStatus.SKIPPED,
            "planned_at": due or now,
            "due_at": due or now,
            "attempts": 0,
            "deferrals": 0,
            "outcome": {} if due is not None else {"reason": "catch_up_skip"},
        }
        for index, due in arm_planned_times(runtime.definition, enrollment.arm, now, tz)
    ]


def runtimes_for(session: Session, tenant_id: int, fields: Mapping[str, Any]) -> list[SopRuntime]:
    """The tenant's started SOPs, each at its current version, parsed once (a
    journey's hidden reminder SOPs are left out: they are entered with a stage).
    Cached per configuration version; the runtimes are shared, read-only."""
    return list(cached(session, tenant_id, "runtimes", lambda: _load_runtimes(session, tenant_id, fields)))


def _load_runtimes(session: Session, tenant_id: int, fields: Mapping[str, Any]) -> tuple[SopRuntime, ...]:
    rows = session.execute(
        sa.select(Sop, SopVersion)
        .join(SopVersion, sa.and_(SopVersion.sop_id == Sop.id, SopVersion.version == Sop.current_version))
        # a journey's hidden reminder SOPs are entered with the stage, not by target
        .where(Sop.tenant_id == tenant_id, Sop.status == "started", Sop.kind != HIDDEN_KIND)
        .order_by(Sop.id)
    ).all()
    return tuple(SopRuntime(frozen_copy(sop), frozen_copy(version), fields) for sop, version in rows)


def tenant_timezone(session: Session, tenant_id: int) -> str:
    """The tenant's time zone, the fallback for customers without one."""

    def load() -> str:
        tenant = session.get(Tenant, tenant_id)
        return tenant.timezone if tenant else "Asia/Shanghai"

    return cached(session, tenant_id, "timezone", load)
