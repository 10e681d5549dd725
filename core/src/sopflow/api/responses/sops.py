"""SOPs, their versions, statistics, enrolments and touches as the API shows them."""

from __future__ import annotations

from typing import Any

from sopflow.api.responses import Instant, Out


class SopOut(Out):
    """An SOP with its current version's definition and its audience's progress."""

    id: int
    name: str
    kind: str
    status: str
    version: int
    definition: dict[str, Any]
    audience: dict[str, Any]
    created_at: Instant
    updated_at: Instant
    started_at: Instant | None
    stopped_at: Instant | None


class StoppedSopOut(SopOut):
    enrollments_stopped: int


class SopVersionOut(Out):
    version: int
    id: int
    definition: dict[str, Any]
    created_at: Instant


class StepStats(Out):
    step_index: int
    targeted: int
    scheduled: int
    sent: int
    awaiting_confirmation: int
    failed: int
    skipped: int
    cancelled: int
    review: int
    deferred: int
    replied: int
    reply_rate: float | None
    on_time_rate: float | None


class SopStatsOut(Out):
    sop_id: int
    targeted: int
    active: int
    completed: int
    ended_early: int
    ended_manual: int
    stopped: int
    converted: int
    conversion_rate: float | None
    goal_window_days: int | None
    steps: list[StepStats]
    #: a random split's arms, each with its counts, rates and intervals (docs/sops.md)
    arms: list[dict[str, Any]] | None


class ComparisonOut(Out):
    """SOPs compared like a split's arms: each group's label, counts, rates and tests."""

    window_days: int
    groups: list[dict[str, Any]]


class EnrollmentOut(Out):
    id: int
    sop_id: int
    customer_id: int
    status: str
    version_id: int
    entry_seq: int
    timezone: str
    enrolled_at: Instant
    ended_at: Instant | None
    end_reason: str | None
    flowed_from_id: int | None
    converted_at: Instant | None
    arm: str | None
    next_touch_at: Instant | None


class EnrollmentPage(Out):
    items: list[EnrollmentOut]
    next_cursor: str | None


class TouchOut(Out):
    """A touch; ``outcome`` records each send's account and result (docs/api.md)."""

    id: int
    sop_id: int
    enrollment_id: int
    customer_id: int
    step_index: int
    status: str
    planned_at: Instant
    due_at: Instant
    deferrals: int
    defer_reason: str | None
    attempts: int
    sent_at: Instant | None
    replied_at: Instant | None
    outcome: dict[str, Any]


class TouchPage(Out):
    items: list[TouchOut]
    next_cursor: str | None


class DispatchOut(Out):
    dispatched: int
