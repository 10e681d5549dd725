"""Pipelines, stages, events and segments as the API shows them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from sopflow.api.responses import Instant, Out
from sopflow.api.responses.customers import CustomerOut


class StageOut(Out):
    id: int
    pipeline_id: int
    name: str
    position: int


class PipelineOut(Out):
    id: int
    name: str
    created_at: Instant
    stages: list[StageOut]


class EventOut(Out):
    id: int
    type: str
    customer_id: int | None
    idempotency_key: str
    occurred_at: Instant
    received_at: Instant
    #: the sender's own JSON document, stored as it came (any object)
    payload: Annotated[
        dict[str, Any], msgspec.Meta(description="the event's payload: a free JSON object its sender chose")
    ]
    source: str | None
    causation_id: int | None
    depth: int


class EventPage(Out):
    items: list[EventOut]
    next_cursor: str | None


class IngestOutcome(Out):
    """One event of a batch: stored (created) or seen before (duplicate)."""

    index: int
    idempotency_key: str
    status: Literal["created", "duplicate"]
    event_id: int
    #: on a created event: its customer, and whether the event created it
    customer_id: int | msgspec.UnsetType = msgspec.UNSET
    customer_created: bool | msgspec.UnsetType = msgspec.UNSET


class IngestResult(Out):
    results: list[IngestOutcome]


class SegmentOut(Out):
    id: int
    name: str
    #: a rule in the rule language: the Rule component (api/response_schemas.py)
    rule: dict[str, Any]
    created_at: Instant
    updated_at: Instant


class PreviewOut(Out):
    """A rule's audience: how many, and a sample page of them."""

    count: int
    sample: list[CustomerOut]
    next_after_id: int | None
