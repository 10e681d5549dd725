"""The record transaction of a delivery batch: each touch's outcome, its
``touch.sent`` event, and the end of the enrolments whose last step it was.

Written with Core statements — one UPDATE for the batch's touches (executemany,
``touch_rows``) and one multi-row INSERT for its events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.engine.context import EngineContext
from sopflow.engine.delivery import touch_rows
from sopflow.engine.delivery.batch import DeliveryBatch
from sopflow.engine.delivery.sends import Outcome
from sopflow.engine.sops.enrolment import ACTIVE
from sopflow.engine.sops.lifecycle import end_actions, end_enrollment, end_enrollments
from sopflow.event_collector import collect
from sopflow.models import Enrollment, Event
from sopflow.models.touch_status import DONE, OPEN, TouchStatus, check_move

MAX_ATTEMPTS = 8

#: a call that reached the customer (or their staff): ``sent_at`` and a ``touch.sent`` event
_SENT = (TouchStatus.SENT, TouchStatus.PENDING)
#: a non-idempotent touch is marked ``sending`` right before its call
_START = check_move(TouchStatus.CLAIMED, TouchStatus.SENDING)

_T = touch_rows.TOUCHES
_E = Event.__table__


def record(
    ctx: EngineContext, outcomes: Sequence[Outcome], start: int | None = None, renew: Sequence[int] = ()
) -> tuple[dict[int, TouchStatus], bool]:
    """One transaction: record ``outcomes``; with ``start``, also mark that touch
    ``sending`` if it is still ``claimed`` (returns whether it was); ``renew``:
    touches still ``sending`` whose lease starts again."""
    now = ctx.now()
    lease_until = now + timedelta(seconds=ctx.settings.claim_lease_seconds)
    statuses: dict[int, TouchStatus] = {}
    started = False
    with ctx.tx() as s:
        if outcomes:
            statuses = _record(ctx, s, outcomes, now)
        if start is not None:
            started = (
                s.execute(
                    sa.update(_T)
                    .where(_T.c.id == start, _T.c.status == TouchStatus.CLAIMED)
                    .values(status=_START, lease_until=lease_until)
                ).rowcount
                == 1
            )
        if renew:
            s.execute(
                sa.update(_T)
                .where(_T.c.id.in_(renew), _T.c.status == TouchStatus.SENDING)
                .values(lease_until=lease_until)
            )
    return statuses, started


def _record(
    ctx: EngineContext, s: Session, outcomes: Sequence[Outcome], now: datetime
) -> dict[int, TouchStatus]:
    ids = [o.touch_id for o in outcomes]
    # locks the enrolments first; rows, since completion below needs no objects
    batch = DeliveryBatch(ctx, s, ids, customers=False, touches=False, enrollment_rows=True)
    query = touch_rows.select_rows(_T.c.id.in_(ids)).order_by(_T.c.id)
    if s.bind.dialect.name == "postgresql":
        query = query.with_for_update()
    rows = {r.id: r for r in s.execute(query)}
    statuses: dict[int, TouchStatus] = {}
    changes: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    done: set[int] = set()
    for o in outcomes:
        row = rows[o.touch_id]
        change = _apply(row, o, now)
        changes.append(change)
        statuses[row.id] = change["status"]
        if change["status"] in _SENT:
            enrollment = batch.enrollments.get(row.enrollment_id)
            events.append(_sent_event(row, change, now, enrollment.depth if enrollment else 0))
        if change["status"] in DONE:
            done.add(row.enrollment_id)
    touch_rows.write(s, changes)
    if events:
        # matched back by key, not by order: asking for the parameters' order makes
        # SQLAlchemy insert one row per statement on SQLite
        returned = s.execute(sa.insert(_E).returning(_E.c.id, _E.c.idempotency_key), events)
        ids_out = dict((key, event_id) for event_id, key in returned)
        for values in events:
            # announced after commit like any flushed Event (plugins' on_event)
            collect(SimpleNamespace(id=ids_out[values["idempotency_key"]], causation_id=None, **values))
    complete(batch, done, now)
    return statuses


def _apply(row: Any, o: Outcome, now: datetime) -> dict[str, Any]:
    """The touch's columns after outcome ``o``."""
    change = touch_rows.change_of(row)
    status = o.status
    if o.throttled:  # our own limiter held it back before any call: not an attempt
        change["attempts"] = max(0, row.attempts - 1)
        change["deferrals"] = row.deferrals + 1
        change["defer_reason"] = o.defer_reason
    change["outcome"] = {
        **(row.outcome or {}),
        "results": o.results,
        **({"reason": o.reason} if o.reason else {}),
        # the account whose call ended the touch short (failed, review, retried): its health
        **({"account_id": o.account_id} if o.account_id and o.reason else {}),
    }
    if status == TouchStatus.SCHEDULED:
        if change["attempts"] >= MAX_ATTEMPTS:
            status = TouchStatus.FAILED
        else:
            change["due_at"] = now + timedelta(seconds=o.retry_after or 30 * 2 ** change["attempts"])
            change["lease_until"] = None
    if status in _SENT:
        change["sent_at"] = now
    change["status"] = status
    return change


def _sent_event(row: Any, change: Mapping[str, Any], now: datetime, depth: int) -> dict[str, Any]:
    payload = {
        "touch_id": row.id,
        "sop_id": row.sop_id,
        "step_index": row.step_index,
        "status": change["status"],
    }
    if change["outcome"].get("staff"):  # a staff notice: who was told
        payload["staff"] = change["outcome"]["staff"]
    return {
        "tenant_id": row.tenant_id,
        "customer_id": row.customer_id,
        "type": "touch.sent",
        # a touch re-addressed after a transfer is sent again: one event per sending
        "idempotency_key": f"touch.sent:{row.id}" + (f":r{again}" if (again := _readdressed(row)) else ""),
        "occurred_at": now,
        "received_at": now,
        "payload": payload,
        "source": "sopflow",
        "depth": depth + 1,
        "evaluated_at": now,  # observational: the evaluate step skips it (evaluate.OBSERVATIONAL)
    }


def complete(batch: DeliveryBatch, enrollment_ids: Iterable[int], now: datetime) -> None:
    """Completion: the enrolments among ``enrollment_ids`` with no open step left
    end normally (``completed``), with the SOP's ``on_complete`` actions.

    Those whose SOP has no ``on_complete`` actions (most) end in one UPDATE; the
    others through ``end_enrollment`` (tags, flows), one by one."""
    ids = set(enrollment_ids)
    if not ids:
        return
    s = batch.s
    s.flush()
    still_open = set(
        s.scalars(
            sa.select(_T.c.enrollment_id)
            .where(_T.c.enrollment_id.in_(ids), _T.c.status.in_(OPEN))
            .group_by(_T.c.enrollment_id)
        )
    )
    plain: list[int] = []
    for enrollment_id in sorted(ids - still_open):
        enrollment = batch.enrollments.get(enrollment_id) or s.get(Enrollment, enrollment_id)
        if enrollment is None or enrollment.status != ACTIVE:
            continue
        actions = end_actions(batch.runtime(enrollment).definition, "on_complete")
        if not actions["tags_add"] and actions["flow_to"] is None:
            plain.append(enrollment_id)
            continue
        if not isinstance(enrollment, Enrollment):  # a row (the record transaction)
            enrollment = s.get(Enrollment, enrollment_id)
            assert enrollment is not None  # locked by this transaction
        end_enrollment(
            s,
            enrollment,
            "completed",
            "all_steps_done",
            now,
            batch.fields(enrollment.tenant_id),
            cancel_open=False,  # nothing is open: that is why it completes
            **actions,
        )
    if plain:
        end_enrollments(s, plain, "completed", "all_steps_done", now)


def _readdressed(row: Any) -> int:
    """How often the touch was re-addressed to a new owner (``confirmations``)."""
    return len((row.outcome or {}).get("readdressed") or ())
