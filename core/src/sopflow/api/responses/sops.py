"""SOPs, their versions, statistics, enrolments and touches as the API shows them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from sopflow.api.responses import Instant, Out

#: The stored, normalised definition: the SopStoredDefinition component (built from
#: engine/sops/schema.py's SopDefinition), stated in the OpenAPI in place of this
#: placeholder by api/response_schemas.py.
Definition = dict[str, Any]


class AudienceOut(Out):
    """A started nurture SOP's audience, enrolled in the background: ``{}`` for a
    new_customer SOP and before the first start."""

    state: Literal["pending", "running", "done"] | UnsetType = UNSET
    total: (
        Annotated[
            int | None, msgspec.Meta(description="the customers the target matched (null until counted)")
        ]
        | UnsetType
    ) = UNSET
    done: Annotated[int, msgspec.Meta(description="customers looked at so far")] | UnsetType = UNSET
    enrolled: Annotated[int, msgspec.Meta(description="of those, how many entered")] | UnsetType = UNSET


class SopOut(Out):
    """An SOP with its current version's definition and its audience's progress."""

    id: int
    name: str
    kind: str
    status: str
    version: int
    definition: Definition
    audience: AudienceOut
    created_at: Instant
    updated_at: Instant
    started_at: Instant | None
    stopped_at: Instant | None


class StoppedSopOut(SopOut):
    enrollments_stopped: int


class SopVersionOut(Out):
    version: int
    id: int
    definition: Definition
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


class MetricOut(Out):
    """How many of a group's enrolments were sent a touch, replied or converted."""

    count: int
    #: count / enrolled (``null`` with nobody enrolled), with its 95% Wilson interval
    rate: float | None
    interval_95: tuple[float, float] | None


class MetricsOut(Out):
    sent: MetricOut
    replied: MetricOut
    converted: MetricOut


class ProportionTest(Out):
    """A pooled two-proportion z-test of the group's rate against the first group's."""

    difference: float | None
    z: float | None
    p_value: float | None


class VersusFirst(Out):
    sent: ProportionTest
    replied: ProportionTest
    converted: ProportionTest


class GroupStats(Out, kw_only=True):
    """One compared group's counts; each group after the first has ``versus_first``."""

    enrolled: int
    sent: MetricOut
    replied: MetricOut
    converted: MetricOut
    versus_first: VersusFirst | UnsetType = UNSET


class ArmStats(GroupStats, kw_only=True):
    """A random split's arm; ``weight`` is ``null`` for an arm only an older version had."""

    arm: str
    weight: float | None


class SopGroupStats(GroupStats, kw_only=True):
    """An SOP compared with others, labelled by its target's staff."""

    sop_id: int
    name: str
    staff: list[str]


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
    arms: list[ArmStats] | None


class ComparisonOut(Out):
    """SOPs compared like a split's arms: each group's label, counts, rates and tests."""

    window_days: int
    groups: list[SopGroupStats]


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


class SendResult(Out):
    """One action's call that went out, in the channel's words (not a touch state):
    ``pending`` waits for staff to confirm it."""

    action: int
    status: Literal["sent", "pending"]
    provider_ref: str | None
    account_id: (
        Annotated[
            int,
            msgspec.Meta(
                description="the channel account it went through (none for a webhook or the log channel)"
            ),
        ]
        | UnsetType
    ) = UNSET


class StaffRef(Out):
    id: int
    external_id: str


class Tap(Out):
    """A staff member's answer to a send they make or confirm by hand."""

    answer: Literal["sent", "skip"]
    staff: str | None
    at: Instant


class Readdress(Out):
    """The customer moved from one staff member (``from``) to another while the touch waited."""

    from_: str = msgspec.field(name="from")
    to: str
    at: Instant


class Readdressed(Readdress):
    """An earlier sending cancelled after a transfer, with what it had sent."""

    results: list[SendResult]


class TouchOutcome(Out):
    """How a touch went: ``{}`` before it was attempted."""

    results: (
        Annotated[list[SendResult], msgspec.Meta(description="one entry per action that went out")]
        | UnsetType
    ) = UNSET
    reason: (
        Annotated[
            str,
            msgspec.Meta(
                description="why it was skipped, failed, cancelled, sent to review or retried: no_reply, "
                "catch_up_skip, skipped_by_staff, the enrolment's end reason, a channel's own words, …"
            ),
        ]
        | UnsetType
    ) = UNSET
    account_id: (
        Annotated[
            int,
            msgspec.Meta(description="the channel account of the call that cut the touch short (its health)"),
        ]
        | UnsetType
    ) = UNSET
    staff: (
        Annotated[StaffRef, msgspec.Meta(description="a notice to the customer's owner: who was told")]
        | UnsetType
    ) = UNSET
    cap_day: (
        Annotated[
            str,
            msgspec.Meta(
                pattern=r"^\d{4}-\d{2}-\d{2}$",
                description="the customer's day (YYYY-MM-DD) whose daily push this touch holds",
            ),
        ]
        | UnsetType
    ) = UNSET
    tap: Tap | UnsetType = UNSET
    readdress: (
        Annotated[
            Readdress,
            msgspec.Meta(
                description="the customer changed owner: sent again from the new one unless it went out"
            ),
        ]
        | UnsetType
    ) = UNSET
    readdressed: list[Readdressed] | UnsetType = UNSET
    confirmed: (
        Annotated[
            Literal["sent", "failed", "skipped"],
            msgspec.Meta(description="the final status the confirmation poll reached (at confirmed_at)"),
        ]
        | UnsetType
    ) = UNSET
    confirmed_at: Instant | UnsetType = UNSET


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
    outcome: TouchOutcome


class TouchPage(Out):
    items: list[TouchOut]
    next_cursor: str | None


class DispatchOut(Out):
    dispatched: int
