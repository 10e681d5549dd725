"""What one delivery transaction loads once for a whole batch of touches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.conditions import snapshot_customers
from sopflow.engine.context import EngineContext
from sopflow.engine.customers.fields import field_definitions
from sopflow.engine.delivery import touch_rows
from sopflow.engine.delivery.sends import identities_of
from sopflow.engine.sops.enrolment import SopRuntime, tenant_timezone
from sopflow.engine.sops.lifecycle import runtime_of
from sopflow.models import Customer, Enrollment, Staff, Touch

_E = Enrollment.__table__
#: what a row-loaded enrolment carries: enough for its runtime, its depth and its end
ENROLLMENT_COLUMNS = (_E.c.id, _E.c.tenant_id, _E.c.sop_id, _E.c.sop_version_id, _E.c.status, _E.c.depth)


class DeliveryBatch:
    """What a transaction over a batch of touches loads once: the touches
    (locked rows), their enrolments, customers and owners in the session's identity
    map, and per tenant / per SOP version the parsed definitions."""

    def __init__(
        self,
        ctx: EngineContext,
        s: Session,
        touch_ids: Sequence[int],
        *,
        customers: bool = True,
        touches: bool = True,
        enrollment_rows: bool = False,
    ) -> None:
        self.ctx, self.s = ctx, s
        # Lock the enrolments before their touches, in id order: the order in which
        # ending an enrolment (an exit rule, a manual end) takes them.  The other
        # order deadlocked against it on Postgres.
        lock = s.bind.dialect.name == "postgresql"
        of_batch = sa.select(Touch.enrollment_id).where(Touch.id.in_(touch_ids)).scalar_subquery()
        #: ORM objects, or with ``enrollment_rows`` plain rows of ``ENROLLMENT_COLUMNS``
        #: (the record transaction only reads them: no object to build per touch)
        self.enrollments: dict[int, Any]
        if enrollment_rows:
            query = sa.select(*ENROLLMENT_COLUMNS).where(_E.c.id.in_(of_batch)).order_by(_E.c.id)
            self.enrollments = {e.id: e for e in s.execute(query.with_for_update() if lock else query)}
        else:
            query = sa.select(Enrollment).where(Enrollment.id.in_(of_batch)).order_by(Enrollment.id)
            self.enrollments = {
                e.id: e
                for e in s.scalars(
                    (query.with_for_update() if lock else query).execution_options(populate_existing=True)
                )
            }
        self.touches: list[Any] = []  # rows (``touch_rows``), locked
        if touches:  # the record transaction reads its own (``outcomes``), locked the same way
            query = touch_rows.select_rows(Touch.id.in_(touch_ids)).order_by(Touch.id)
            self.touches = list(s.execute(query.with_for_update() if lock else query))
        # held here: the session's identity map only keeps objects someone refers to
        self.customers: dict[int, Customer] = {}
        self.staff: dict[int, Staff] = {}
        self.identities: dict[int, list[tuple[str, str, str | None]]] = {}
        if customers and self.touches:
            ids = {t.customer_id for t in self.touches}
            self.customers = {c.id: c for c in s.scalars(sa.select(Customer).where(Customer.id.in_(ids)))}
            owners = {c.owner_staff_id for c in self.customers.values() if c.owner_staff_id}
            if owners:
                self.staff = {m.id: m for m in s.scalars(sa.select(Staff).where(Staff.id.in_(owners)))}
            self.identities = identities_of(s, list(ids))
        self._fields: dict[int, dict[str, Any]] = {}
        self._runtimes: dict[int, SopRuntime] = {}
        self._snapshots: dict[int, Any] | None = None
        self.channels: dict[Any, Any] = {}  # (tenant id, channel name) → (live channel, account id)
        self.changes: list[dict[str, Any]] = []  # touch changes not written yet (``touch_rows``)

    def write_touches(self) -> None:
        """Write the touch changes made so far: before a statement that reads or
        changes touches by itself (ending an enrolment cancels its open touches)."""
        touch_rows.write(self.s, self.changes)
        self.changes.clear()

    def fields(self, tenant_id: int) -> dict[str, Any]:
        """The tenant's field definitions, loaded once per batch."""
        if tenant_id not in self._fields:
            self._fields[tenant_id] = field_definitions(self.s, tenant_id, self.ctx.plugins)
        return self._fields[tenant_id]

    def runtime(self, enrollment: Any) -> SopRuntime:
        """The parsed SOP version an enrolment is pinned to, once per version per batch."""
        key = enrollment.sop_version_id
        if key not in self._runtimes:
            self._runtimes[key] = runtime_of(self.s, enrollment, self.fields(enrollment.tenant_id))
        return self._runtimes[key]

    def snapshot(self, customer: Customer) -> Any:
        """The customer's rule snapshot; the first call reads every batch customer's
        tags and stages at once (two statements, not two per touch).  Each preloaded
        snapshot serves one touch: deciding a touch may change its customer (end
        actions, flows), so a second touch of the same customer reads afresh."""
        if self._snapshots is None:
            many = list(self.customers.values())
            zones = {c.tenant_id: self.timezone(c.tenant_id) for c in many}
            self._snapshots = snapshot_customers(self.s, many, zones)
        fresh = self._snapshots.pop(customer.id, None)
        if fresh is None:
            fresh = snapshot_customers(self.s, [customer], self.timezone(customer.tenant_id))[customer.id]
        return fresh

    def timezone(self, tenant_id: int) -> str:
        """The tenant's time zone (for rules that compare local dates), from the
        tenant's configuration cache."""
        return tenant_timezone(self.s, tenant_id)
