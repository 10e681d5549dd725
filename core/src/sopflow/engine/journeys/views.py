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
from sopflow.models import Customer, CustomerStage, CustomerTag, Event, Journey, Staff, StageHistory
from sopflow.pagination import check_limit, decode_cursor, encode_cursor

MAX_DAYS = 366


def board(
    session: Session,
    journey: Journey,
    *,
    limit: int = 20,
    stage_id: int | None = None,
    cursor: str | None = None,
    tag: str | None = None,
    owner_staff_id: int | None = None,
    q: str | None = None,
) -> dict[str, Any]:
    """Stages with their counts and a first page of customers each (newest id
    first); with ``stage_id`` and ``cursor``, the next page of that stage.
    ``tag``, ``owner_staff_id`` and ``q`` (text in the name) filter both the
    counts and the cards.  Each card has its tags, owner and last activity."""
    check_limit(limit)
    stages = stages_of(session, journey.pipeline_id)
    if stage_id is not None:
        stages = [s for s in stages if s.id == stage_id]
    filters = _board_filters(tag, owner_staff_id, q)
    count_query = sa.select(CustomerStage.stage_id, sa.func.count()).where(
        CustomerStage.pipeline_id == journey.pipeline_id
    )
    if filters:
        count_query = count_query.join(Customer, Customer.id == CustomerStage.customer_id).where(*filters)
    counts = dict(session.execute(count_query.group_by(CustomerStage.stage_id)).all())
    before = decode_cursor(cursor) if cursor else None
    columns = [
        {
            "id": stage.id,
            "name": stage.name,
            "position": stage.position,
            "count": counts.get(stage.id, 0),
            **_column(session, journey.pipeline_id, stage.id, filters, limit, before),
        }
        for stage in stages
    ]
    _add_card_details(session, [c for col in columns for c in col["customers"]])
    return {"journey_id": journey.id, "stages": columns}


def _column(
    session: Session, pipeline_id: int, stage_id: int, filters: list[Any], limit: int, before: int | None
) -> dict[str, Any]:
    """One page of a stage's cards (newest id first) and the cursor to the next."""
    query = (
        sa.select(
            Customer.id,
            Customer.display_name,
            Customer.source,
            CustomerStage.entered_at,
            Customer.owner_staff_id,
        )
        .join(CustomerStage, CustomerStage.customer_id == Customer.id)
        .where(CustomerStage.pipeline_id == pipeline_id, CustomerStage.stage_id == stage_id, *filters)
        .order_by(Customer.id.desc())
        .limit(limit + 1)
    )
    if before:
        query = query.where(Customer.id < before)
    rows = session.execute(query).all()
    return {
        "customers": [
            {
                "id": r[0],
                "display_name": r[1],
                "source": r[2],
                "entered_at": r[3].isoformat(),
                "owner_staff_id": r[4],
            }
            for r in rows[:limit]
        ],
        "next_cursor": encode_cursor(rows[limit - 1][0]) if len(rows) > limit else None,
    }


def _board_filters(tag: str | None, owner_staff_id: int | None, q: str | None) -> list[Any]:
    filters: list[Any] = []
    if tag:
        filters.append(sa.exists().where(CustomerTag.customer_id == Customer.id, CustomerTag.tag == tag))
    if owner_staff_id is not None:
        filters.append(Customer.owner_staff_id == owner_staff_id)
    if q:
        filters.append(Customer.display_name.contains(q, autoescape=True))
    return filters


def _add_card_details(session: Session, cards: list[dict[str, Any]]) -> None:
    """Tags, the owner's name and the last event's time, in three queries for the whole page."""
    ids = [c["id"] for c in cards]
    if not ids:
        return
    tags: dict[int, list[str]] = {}
    for cid, tag in session.execute(
        sa.select(CustomerTag.customer_id, CustomerTag.tag)
        .where(CustomerTag.customer_id.in_(ids))
        .order_by(CustomerTag.tag)
    ):
        tags.setdefault(cid, []).append(tag)
    last = dict(
        session.execute(
            sa.select(Event.customer_id, sa.func.max(Event.occurred_at))
            .where(Event.customer_id.in_(ids))
            .group_by(Event.customer_id)
        ).all()
    )
    owner_ids = {c["owner_staff_id"] for c in cards if c["owner_staff_id"]}
    owners = (
        dict(
            session.execute(
                sa.select(
                    Staff.id, sa.func.coalesce(sa.func.nullif(Staff.name, ""), Staff.external_id)
                ).where(Staff.id.in_(owner_ids))
            ).all()
        )
        if owner_ids
        else {}
    )
    for card in cards:
        card["tags"] = tags.get(card["id"], [])
        card["owner"] = owners.get(card["owner_staff_id"])
        at = last.get(card["id"])
        card["last_activity_at"] = at.isoformat() if at else None


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
