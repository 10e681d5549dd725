"""Stage reminders as one hidden SOP per stage (kind ``journey_stage``).

The hidden SOP's steps are the follow-up notice at entry (not forwarded, so not
capped) and the stage's reminders (forwarded to the customer, so they count
against the customer's daily push cap). Edits of the journey become new
versions; enrolments already running keep theirs. The SOP runs while the
journey is active; stopping the journey stops it, cancelling what is pending.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from sopflow.engine.sops.definition import HIDDEN_KIND
from sopflow.engine.sops.manage import current_definition, new_version, stop_sop
from sopflow.models import Journey, JourneyStage, Sop, SopVersion, Stage

FOLLOW_UP_TEXT = "客户 {{ customer.display_name }} 进入「%s」阶段，请及时跟进。"


def reminder_definition(journey: Journey, stage: Stage, js: JourneyStage) -> dict[str, Any] | None:
    """The hidden SOP's definition: a follow-up notice at entry (not forwarded) and
    the stage reminders (forwarded to the customer, so they count against the cap)."""
    steps = []
    if journey.follow_up_reminders:
        text = FOLLOW_UP_TEXT % stage.name.replace("{", "(").replace("}", ")")
        steps.append({"delay": "0m", "actions": [_remind(journey, text, [], forward=False)]})
    if journey.stage_reminders:
        for r in sorted(js.reminders, key=lambda r: (r["day"], r["at"])):
            steps.append(
                {
                    "day": r["day"],
                    "at": r["at"],
                    "actions": [_remind(journey, r["text"], r["attachments"], True)],
                }
            )
    if not steps:
        return None
    return {
        "kind": HIDDEN_KIND,
        "target": {"rule": None, "sources": [], "staff": []},
        "steps": steps,
        "batch": None,
        "quiet_hours": None,
        "catch_up": "send_now",
        "early_end": None,
        "on_early_end": {"tags_add": [], "flow_to": None},
        "on_complete": {"tags_add": [], "flow_to": None},
        "reentry": True,
        "goal": None,
        "goal_window_days": 7,
        "journey": {"journey_id": journey.id, "stage_id": stage.id, "follow_up": journey.follow_up_reminders},
    }


def _remind(journey: Journey, text: str, attachments: list[Any], forward: bool) -> dict[str, Any]:
    return {
        "type": "remind_staff",
        "channel": journey.reminder_channel,
        "text": text,
        "attachments": attachments,
        "forward": forward,
    }


def sync_reminder_sop(
    session: Session, journey: Journey, stage: Stage, js: JourneyStage, now: datetime
) -> None:
    """Bring a stage's hidden reminder SOP in line with the journey's settings:
    create it, give it a new version when the reminders changed, or stop it when
    the stage has no reminders to send (or the journey is not active)."""
    definition = reminder_definition(journey, stage, js)
    sop = session.get(Sop, js.reminder_sop_id) if js.reminder_sop_id else None
    if definition is None:
        if sop is not None and sop.status == "started":
            _stop_hidden(session, sop, now)
        return
    if sop is None:
        sop = Sop(
            tenant_id=journey.tenant_id,
            name=f"journey {journey.id} · {stage.name} · reminders",
            kind=HIDDEN_KIND,
            status="draft",
            current_version=1,
            created_at=now,
            updated_at=now,
        )
        session.add(sop)
        session.flush()
        session.add(
            SopVersion(
                tenant_id=sop.tenant_id, sop_id=sop.id, version=1, definition=definition, created_at=now
            )
        )
        js.reminder_sop_id = sop.id
    else:
        if current_definition(session, sop) != definition:
            new_version(session, sop, definition, now)
        sop.name = f"journey {journey.id} · {stage.name} · reminders"
    want = "started" if journey.status == "active" else "stopped"
    if want == "started" and sop.status != "started":
        sop.status, sop.started_at, sop.stopped_at = "started", now, None
    elif want == "stopped" and sop.status == "started":
        _stop_hidden(session, sop, now)
    sop.updated_at = now
    session.flush()


def _stop_hidden(session: Session, sop: Sop, now: datetime) -> None:
    stop_sop(session, sop, now, {})
