"""The board and the stats of a journey: customers per stage now and over
time, and conversion between consecutive stages — all read from
``customer_stages`` and ``stage_history`` with indexed aggregates."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.engine.journeys.pipelines import stages_of
from sopflow.engine.sops.enrolment import tenant_timezone
from sopflow.errors import InvalidInput
from sopflow.models import Customer, CustomerStage, Journey, StageHistory
from sopflow.pagination import check_limit, decode_cursor, encode_cursor

MAX_DAYS = 366


def board(
    session: Session,
    journey: Journey,
    *,
    limit: int = 20,
    stage_id: int | None = None,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Stages with their counts and a first page of customers each (newest id
    first); with ``stage_id`` and ``cursor``, the next page of that stage."""
    check_limit(limit)
    stages = stages_of(session, journey.pipeline_id)
    if stage_id is not None:
        stages = [s for s in stages if s.id == stage_id]
    counts = dict(
        session.execute(
            sa.select(CustomerStage.stage_id, sa.func.count())
            .where(CustomerStage.pipeline_id == journey.pipeline_id)
            .group_by(CustomerStage.stage_id)
        ).all()
    )
    before = decode_cursor(cursor) if cursor else None
    columns = []
    for stage in stages:
        query = (
            sa.select(Customer.id, Customer.display_name, Customer.source, CustomerStage.entered_at)
            .join(CustomerStage, CustomerStage.customer_id == Customer.id)
            .where(CustomerStage.pipeline_id == journey.pipeline_id, CustomerStage.stage_id == stage.id)
            .order_by(Customer.id.desc())
            .limit(limit + 1)
        )
        if before:
            query = query.where(Customer.id < before)
        rows = session.execute(query).all()
        columns.append(
            {
                "id": stage.id,
                "name": stage.name,
                "position": stage.position,
                "count": counts.get(stage.id, 0),
                "customers": [
                    {"id": r[0], "display_name": r[1], "source": r[2], "entered_at": r[3].isoformat()}
                    for r in rows[:limit]
                ],
                "next_cursor": encode_cursor(rows[limit - 1][0]) if len(rows) > limit else None,
            }
        )
    return {"journey_id": journey.id, "stages": columns}


def stats(session: Session, journey: Journey, now: datetime, days: int = 30) -> dict[str, Any]:
    """Per stage: customers now, customers ever entered, conversion to the next
    stage; and the count per stage at the end of each of the last ``days`` days."""
    stages = stages_of(session, journey.pipeline_id)
    pid = journey.pipeline_id
    now_counts = dict(
        session.execute(
            sa.select(CustomerStage.stage_id, sa.func.count())
            .where(CustomerStage.pipeline_id == pid)
            .group_by(CustomerStage.stage_id)
        ).all()
    )
    entered = dict(
        session.execute(
            sa.select(StageHistory.stage_id, sa.func.count(sa.distinct(StageHistory.customer_id)))
            .where(StageHistory.pipeline_id == pid)
            .group_by(StageHistory.stage_id)
        ).all()
    )
    out_stages = []
    for i, stage in enumerate(stages):
        row: dict[str, Any] = {
            "id": stage.id,
            "name": stage.name,
            "customers": now_counts.get(stage.id, 0),
            "entered": entered.get(stage.id, 0),
        }
        if i + 1 < len(stages):
            here, nxt = sa.orm.aliased(StageHistory), sa.orm.aliased(StageHistory)
            went_on = session.scalar(
                sa.select(sa.func.count(sa.distinct(here.customer_id))).where(
                    here.pipeline_id == pid,
                    here.stage_id == stage.id,
                    sa.exists().where(
                        nxt.customer_id == here.customer_id,
                        nxt.pipeline_id == pid,
                        nxt.stage_id == stages[i + 1].id,
                        nxt.entered_at >= here.entered_at,
                    ),
                )
            )
            row["to_next"] = went_on or 0
            row["conversion_to_next"] = round((went_on or 0) / row["entered"], 4) if row["entered"] else None
        out_stages.append(row)
    return {"journey_id": journey.id, "stages": out_stages, "trend": trend(session, journey, now, days)}


def trend(session: Session, journey: Journey, now: datetime, days: int) -> list[dict[str, Any]]:
    """Customers per stage at the end of each local day (the tenant's zone), oldest first."""
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput([("days", f"use 1 to {MAX_DAYS}")])
    tz = ZoneInfo(tenant_timezone(session, journey.tenant_id))
    today = now.astimezone(tz).date()
    out = []
    for offset in range(days - 1, -1, -1):
        day: date = today - timedelta(days=offset)
        end = min(datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz), now)
        counts = dict(
            session.execute(
                sa.select(StageHistory.stage_id, sa.func.count())
                .where(
                    StageHistory.pipeline_id == journey.pipeline_id,
                    StageHistory.entered_at <= end,
                    sa.or_(StageHistory.left_at.is_(None), StageHistory.left_at > end),
                )
                .group_by(StageHistory.stage_id)
            ).all()
        )
        out.append({"day": day.isoformat(), "counts": {str(k): v for k, v in counts.items()}})
    return out
