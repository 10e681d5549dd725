"""Moving one customer to a stage by hand (the API's move, a drag on the
console's board): tenant-checked, the ``stage.changed`` event returned for
announcing after the commit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from sopflow.engine.customers.ingest import event_to_dict
from sopflow.engine.customers.records import customer_to_dict, get_customer
from sopflow.engine.journeys.pipelines import get_stage, move_customer
from sopflow.errors import InvalidInput

HAND_CAUSES = ("manual", "api")


def move_by_hand(
    session: Session, tenant_id: int, customer_id: int, stage_id: int, cause: str, now: datetime
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``({"moved", "customer"}, event or None)``; moving to the stage the customer
    is in already changes nothing."""
    customer = get_customer(session, tenant_id, customer_id, lock=True)
    stage = get_stage(session, tenant_id, stage_id)
    if cause not in HAND_CAUSES:
        raise InvalidInput([("cause", "use manual (a move on the board) or api")])
    event = move_customer(session, tenant_id, customer.id, stage, cause, now)
    result = {"moved": event is not None, "customer": customer_to_dict(session, customer)}
    return result, event_to_dict(event) if event else None
