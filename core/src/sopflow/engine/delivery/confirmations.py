"""Sends that wait for staff confirmation (a WeCom mass send the staff member
still has to tap, a ``manual`` send they make by hand): the touch stays
``pending`` and the channel is asked how it went until it is final.  A member's
tap ("sent" / "skip", recorded in ``outcome.tap`` by ``Host.confirm_touches``) is
read here too: a ``manual`` channel answers from it, and a skip of a send that
did not go out cancels its tasks and ends the touch ``skipped``."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date
from typing import Any

import sqlalchemy as sa
from sopflow_sdk import SkippableError, SopflowError

from sopflow.engine.context import EngineContext
from sopflow.engine.delivery.claim import give_back
from sopflow.engine.delivery.sends import channel_for
from sopflow.logging import get_logger
from sopflow.models import Enrollment, SendQuota, SopVersion, Touch
from sopflow.models.touch_status import TouchStatus, check_move

log = get_logger("sopflow.deliver")

#: the reason on a touch a staff member chose not to send (the sidebar's "skip")
SKIPPED_BY_STAFF = "skipped_by_staff"


def poll_confirmations(ctx: EngineContext, limit: int = 200, only: Collection[int] | None = None) -> int:
    """Touches waiting for staff confirmation (``pending``): ask the channel;
    returns how many reached a final status.  ``only``: just these touches (a
    staff member saying in the WeCom sidebar that they sent it: asked now, not
    at the next poll).

    One transaction reads the pending touches with their step definitions and
    channels; the channel calls happen outside it; each touch that reached a final
    status is then updated under its row lock (``pending`` still)."""
    rows, channels = _pending(ctx, limit, only)
    finals: dict[int, TouchStatus] = {}
    for row in rows:
        try:
            final = _decide(channels, *row)
        except Exception:
            log.exception("poll_failed", touch_id=row[0])
            continue
        if final:
            finals[row[0]] = final
    return _write_finals(ctx, finals) if finals else 0


def _decide(
    channels: dict[Any, Any],
    touch_id: int,
    tenant_id: int,
    customer_id: int,
    step_index: int,
    outcome: dict[str, Any],
    definition: dict[str, Any],
) -> TouchStatus | None:
    """One pending touch's status after asking its channels, or None (still pending)."""
    refs = [r for r in outcome.get("results", []) if r.get("provider_ref") and r["status"] == "pending"]
    if not refs:
        return None
    tap = (outcome.get("tap") or {}).get("answer")
    statuses = []
    for ref in refs:
        name = definition["steps"][step_index]["actions"][ref["action"]]["channel"]
        if channels[tenant_id, name] is None:
            raise SkippableError(f"no {name} channel account to poll")
        result = _ask(channels[tenant_id, name], ref["provider_ref"], tap)
        statuses.append(_recipient_status(result, customer_id))
    if tap == "skip" and not ({"sent", "failed"} & set(statuses)):
        # the member skipped it and nothing went out: stop every task, then it is skipped
        # (a task the channel could not stop leaves the touch pending, asked again)
        stopped = all(_cancel(channels, tenant_id, definition, step_index, ref) for ref in refs)
        return TouchStatus.SKIPPED if stopped else None
    if outcome.get("readdress") and readdressable(outcome, statuses):
        for ref in refs:  # not sent: stop the giver's task before the taker's is made
            name = definition["steps"][step_index]["actions"][ref["action"]]["channel"]
            channels[tenant_id, name].cancel(ref["provider_ref"])
        return TouchStatus.SCHEDULED
    if "failed" in statuses:
        return TouchStatus.FAILED
    return TouchStatus.SENT if all(x == "sent" for x in statuses) else None


def _write_finals(ctx: EngineContext, finals: dict[int, TouchStatus]) -> int:
    """Each touch that reached a final status, under its row lock (``pending`` still)."""
    changed = 0
    with ctx.tx() as s:
        for touch_id, final in finals.items():
            fresh = s.get(Touch, touch_id, with_for_update=True)
            if fresh.status != TouchStatus.PENDING:
                continue
            fresh.status = check_move(fresh.status, final, touch_id)
            if final == TouchStatus.SCHEDULED:
                _readdress(fresh, ctx.now())
            elif final == TouchStatus.SKIPPED:
                _skipped_by_staff(s, fresh, ctx.now())
            else:
                fresh.outcome = {**fresh.outcome, "confirmed": final, "confirmed_at": ctx.now().isoformat()}
            changed += 1
    return changed


def _ask(channel: Any, provider_ref: str, tap: str | None) -> Any:
    """The channel's answer for one send: a channel whose sends staff make by hand
    (``manual``, with ``answer_from_tap``) answers from the member's recorded tap;
    any other asks its provider."""
    answer = getattr(channel, "answer_from_tap", None)
    return answer(provider_ref, tap) if callable(answer) else channel.poll(provider_ref)


def _cancel(channels: dict[Any, Any], tenant_id: int, definition: Any, step_index: int, ref: Any) -> bool:
    name = definition["steps"][step_index]["actions"][ref["action"]]["channel"]
    return bool(channels[tenant_id, name].cancel(ref["provider_ref"]))


def _skipped_by_staff(s: Any, touch: Touch, now: Any) -> None:
    """The member skipped the touch: nothing went out, so the daily-cap slot it took
    at the claim is given back, like any other skip's."""
    outcome = dict(touch.outcome or {})
    cap_day = outcome.pop("cap_day", None)
    if cap_day:
        give_back(
            s, SendQuota.__table__, {"customer_id": touch.customer_id, "day": date.fromisoformat(cap_day)}
        )
    touch.outcome = {
        **outcome,
        "confirmed": TouchStatus.SKIPPED.value,
        "reason": SKIPPED_BY_STAFF,
        "confirmed_at": now.isoformat(),
    }


def readdressable(outcome: dict[str, Any], statuses: list[str]) -> bool:
    """Whether a touch marked ``readdress`` (its customer changed owner) is sent again
    from the new owner: none of its calls reached anyone (a step that also told
    staff or sent elsewhere is left to finish as it is, never half sent twice)."""
    if "sent" in statuses:
        return False
    return all(r.get("status") == "pending" for r in outcome.get("results", []))


def _readdress(touch: Touch, now: Any) -> None:
    """Schedule the touch again, now: it is sent from the customer's new owner; the
    giver's cancelled task stays on record in ``outcome.readdressed``."""
    before = dict(touch.outcome or {})
    mark = before.pop("readdress")
    touch.due_at = now
    touch.lease_until = None
    touch.outcome = {
        "readdressed": [*before.pop("readdressed", []), {**mark, "results": before.get("results", [])}]
    }


def _pending(
    ctx: EngineContext, limit: int, only: Collection[int] | None = None
) -> tuple[list[Any], dict[tuple[int, str], Any]]:
    """The first ``limit`` pending touches (id, tenant, customer, step, outcome,
    definition) and the live channel of each (tenant, channel name) they used
    (None for an account removed since the send: its touches wait)."""
    with ctx.tx() as s:
        rows = list(
            s.execute(
                sa.select(
                    Touch.id,
                    Touch.tenant_id,
                    Touch.customer_id,
                    Touch.step_index,
                    Touch.outcome,
                    SopVersion.definition,
                )
                .join(Enrollment, Enrollment.id == Touch.enrollment_id)
                .join(SopVersion, SopVersion.id == Enrollment.sop_version_id)
                .where(
                    Touch.status == TouchStatus.PENDING, *([Touch.id.in_(only)] if only is not None else [])
                )
                .order_by(Touch.id)
                .limit(limit)
            )
        )
        channels: dict[tuple[int, str], Any] = {}
        for _, tenant_id, _, step_index, outcome, definition in rows:
            for ref in outcome.get("results", []):
                name = definition["steps"][step_index]["actions"][ref["action"]]["channel"]
                if (tenant_id, name) not in channels:
                    try:
                        channels[tenant_id, name] = channel_for(ctx, tenant_id, name, s)[0]
                    except SopflowError:
                        log.warning("poll_channel_missing", tenant_id=tenant_id, channel=name)
                        channels[tenant_id, name] = None
    return rows, channels


def _recipient_status(result: dict[str, str], customer_id: int) -> str:
    """A poll maps recipients to statuses (the channel's words: ``sent``,
    ``failed``, else still ``pending``); one touch has one customer."""
    values = set(result.values())
    if "failed" in values:
        return "failed"
    if values and values <= {"sent"}:
        return "sent"
    return "pending"
