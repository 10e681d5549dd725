"""Journeys, their board and statistics as the API shows them."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from sopflow.api.responses import Instant, Out


def _items(component: str) -> msgspec.Meta:
    """A list whose items are the stored form the parser checked (engine/journeys/schema.py)."""
    return msgspec.Meta(extra_json_schema={"items": {"$ref": f"#/components/schemas/{component}"}})


class JourneyStageOut(Out):
    """A journey's stage with its entry rules, entry SOP and reminders (docs/journeys.md)."""

    id: int
    name: str
    position: int
    rules: Annotated[list[Any], _items("JourneyStageRuleOut")]
    entry_sop_id: int | None
    reminders: Annotated[list[Any], _items("JourneyReminderOut")]
    reminder_sop_id: int | None


class JourneySyncOut(Out):
    """A journey's sync: ``never`` run, or its progress (pending, running, done)."""

    state: str
    total: int | msgspec.UnsetType = msgspec.UNSET
    done: int | msgspec.UnsetType = msgspec.UNSET
    placed: int | msgspec.UnsetType = msgspec.UNSET
    enrolled: int | msgspec.UnsetType = msgspec.UNSET
    started_at: Instant | msgspec.UnsetType = msgspec.UNSET
    heartbeat_at: Instant | msgspec.UnsetType = msgspec.UNSET
    finished_at: Instant | msgspec.UnsetType | None = msgspec.UNSET


class JourneyOut(Out):
    id: int
    name: str
    pipeline_id: int
    status: str
    reminder_channel: str | None
    automation: bool
    allow_backward: bool
    stage_reminders: bool
    follow_up_reminders: bool
    stages: list[JourneyStageOut]
    sync: JourneySyncOut
    created_at: Instant
    updated_at: Instant


class BoardCard(Out):
    id: int
    display_name: str
    source: str | None
    entered_at: Instant
    owner_staff_id: int | None
    tags: list[str]
    owner: str | None
    last_activity_at: Instant | None


class BoardColumn(Out):
    id: int
    name: str
    position: int
    count: int
    customers: list[BoardCard]
    next_cursor: str | None


class BoardOut(Out):
    journey_id: int
    stages: list[BoardColumn]


class JourneyStageStats(Out):
    id: int
    name: str
    customers: int
    entered: int
    #: all stages but the last: how many went on to the next, and the share
    to_next: int | msgspec.UnsetType = msgspec.UNSET
    conversion_to_next: float | msgspec.UnsetType | None = msgspec.UNSET


class TrendDay(Out):
    day: str
    #: stage id → customers in it at the end of the day
    counts: dict[str, int]


class JourneyStatsOut(Out):
    journey_id: int
    stages: list[JourneyStageStats]
    trend: list[TrendDay]
