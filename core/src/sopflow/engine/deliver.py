"""Deliver one claimed touch: re-check, render, call the channel, record.

Three short transactions so no database lock is held during a channel call:
(1) re-check the enrolment and the early-end rule, run the data actions,
render, and mark the touch ``sending``; (2) call the channels; (3) record
the outcome, emit ``touch.sent`` and end the enrolment after its last step.
A channel whose send is not idempotent is never retried after an ambiguous
failure: the touch goes to ``review``.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sopflow_sdk import (
    AmbiguousSendError,
    Attachment,
    OutboundMessage,
    RetriableError,
    SendReceipt,
    SkippableError,
    SopflowError,
)

from sopflow.conditions import parse_duration, snapshot_customer
from sopflow.engine.customers import TagChange, change_tags, record_change
from sopflow.engine.enroll import ACTIVE, tenant_timezone
from sopflow.engine.fields import apply_stored, field_definitions, to_storage
from sopflow.engine.lifecycle import end_actions, end_enrollment, runtime_of
from sopflow.engine.pipelines import get_stage, move_customer
from sopflow.engine.sop_definition import templates
from sopflow.logging import get_logger
from sopflow.models import ChannelAccount, Customer, Enrollment, Event, Staff, Touch

log = get_logger("sopflow.deliver")
MAX_ATTEMPTS = 8


class Throttled(RetriableError):
    """The channel account's own rate limit (``Capabilities.rate_per_minute``) says wait."""


class RateLimiter:
    """Per-channel-account token bucket from ``Capabilities.rate_per_minute``
    (in-process: each worker process gets its own share).  Time comes from the
    injected clock, so the manual clock drives it in tests and the demo."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[int, tuple[float, float]] = {}

    def wait_time(self, account_id: int, per_minute: int | None, now: float) -> float:
        if not per_minute:
            return 0.0
        with self._lock:
            tokens, stamp = self._buckets.get(account_id, (float(per_minute), now))
            now = max(now, stamp)  # a clock that steps back must not mint tokens
            tokens = min(float(per_minute), tokens + (now - stamp) * per_minute / 60)
            if tokens >= 1:
                self._buckets[account_id] = (tokens - 1, now)
                return 0.0
            self._buckets[account_id] = (tokens, now)
            return (1 - tokens) * 60 / per_minute


def channel_for(app: Any, tenant_id: int, channel: str, session: Any = None) -> tuple[Any, int]:
    """The tenant's first account of ``channel`` as a live Channel (cached per account)."""
    if session is None:
        with app.tx() as s:
            return channel_for(app, tenant_id, channel, s)
    cache = app.__dict__.setdefault("_channels", {})
    account = session.scalar(
        sa.select(ChannelAccount)
        .where(ChannelAccount.tenant_id == tenant_id, ChannelAccount.channel == channel)
        .order_by(ChannelAccount.id)
    )
    if account is None:
        if channel == "log":  # the built-in log channel needs no account
            key = (tenant_id, "log")
            if key not in cache:
                cache[key] = app.plugins.registry.get("register_channels", "log").spec.factory({}, {})
            return cache[key], 0
        raise SkippableError(
            f"tenant has no {channel} channel account; connect one with POST /api/v1/channel-accounts"
        )
    key = (account.id, account.secrets_ciphertext)
    if key not in cache:
        reg = app.plugins.registry.get("register_channels", channel)
        if reg is None:
            raise SkippableError(f"channel {channel!r} is not installed")
        cache[key] = reg.spec.factory(dict(account.config), app.credentials.open(account.secrets_ciphertext))
    return cache[key], account.id


@functools.lru_cache(maxsize=1024)
def _compiled(text: str) -> Any:
    return templates.from_string(text)  # compiling a template costs more than rendering it


def render(text: str, customer: Customer, staff_name: str) -> str:
    return _compiled(text).render(
        customer={"display_name": customer.display_name, "source": customer.source},
        fields=customer.fields,
        staff={"name": staff_name},
    )


def deliver_touch(app: Any, touch_id: int) -> str:
    """Deliver touch ``touch_id``; returns its final status for this attempt."""
    now = app.now()
    prepared = _prepare(app, touch_id, now)
    if isinstance(prepared, str):
        return prepared
    sends, idempotent = prepared
    results: list[dict[str, Any]] = []
    status = "sent"
    retry_after: float | None = None
    reason = ""
    throttled = False
    for action_index, action, message in sends:
        try:
            if action["type"] == "webhook":
                receipt = _webhook(action, message)
            elif action["type"] == "plugin":
                receipt = _plugin_action(app, action, message)
            else:
                channel, account_id = channel_for(app, message["tenant_id"], action["channel"])
                limiter = app.__dict__.setdefault("_rates", RateLimiter())
                wait = limiter.wait_time(account_id, channel.capabilities.rate_per_minute, now.timestamp())
                if wait:
                    raise Throttled("channel rate limit", retry_after=wait)
                receipt = channel.send(message["outbound"])
            results.append(
                {"action": action_index, "status": receipt.status, "provider_ref": receipt.provider_ref}
            )
            if receipt.status == "pending":
                status = "pending" if status == "sent" else status
        except AmbiguousSendError as exc:
            status, reason = ("scheduled" if idempotent else "review"), exc.internal_message
            break
        except RetriableError as exc:
            status, reason, retry_after = "scheduled", exc.internal_message, exc.retry_after
            throttled = isinstance(exc, Throttled) and not results
            break
        except SkippableError as exc:
            status, reason = "skipped", exc.internal_message
            break
        except SopflowError as exc:
            status, reason = "failed", exc.internal_message
            break
        except Exception as exc:  # a channel bug must not lose the touch
            log.exception("channel_error", touch_id=touch_id)
            status, reason = ("scheduled" if idempotent else "review"), f"{type(exc).__name__}: {exc}"
            break
    return _record(app, touch_id, status, results, reason, retry_after, throttled)


def _prepare(app: Any, touch_id: int, now: datetime) -> str | tuple[list[Any], bool]:
    with app.tx() as s:
        touch = s.get(Touch, touch_id, with_for_update=True)
        if touch is None or touch.status != "claimed":
            return touch.status if touch else "missing"
        enrollment = s.get(Enrollment, touch.enrollment_id)
        assert enrollment is not None
        if enrollment.status != ACTIVE:
            touch.status = "cancelled"
            return "cancelled"
        fields = field_definitions(s, touch.tenant_id, app.plugins)
        runtime = runtime_of(s, enrollment, fields)
        customer = s.get(Customer, touch.customer_id)
        assert customer is not None
        if runtime.early_end is not None and runtime.ends_early(
            snapshot_customer(s, customer, tenant_timezone(s, touch.tenant_id)), now
        ):
            end_enrollment(
                s,
                enrollment,
                "ended_early",
                "early_end_rule",
                now,
                fields,
                **end_actions(runtime.definition, "on_early_end"),
            )
            return "cancelled"
        held = _reply_gate(s, touch, runtime.definition, now, enrollment, fields)
        if held:
            return held
        step = runtime.definition["steps"][touch.step_index]
        staff = s.get(Staff, customer.owner_staff_id) if customer.owner_staff_id else None
        try:
            # a savepoint: a send that cannot even be prepared (no account for the channel,
            # an undeclared touchpoint) must not keep the data actions before it
            with s.begin_nested():
                sends, idempotent = _build_sends(
                    app, s, touch, step, customer, staff, fields, now, enrollment
                )
        except SopflowError as exc:
            touch.status = "skipped" if isinstance(exc, SkippableError) else "failed"
            touch.outcome = {**touch.outcome, "reason": exc.internal_message}
            _maybe_complete(s, touch, now, fields)
            return touch.status
        touch.status = "sending"
        touch.outcome = {**touch.outcome, "idempotent": idempotent}
        return sends, idempotent


def _build_sends(
    app: Any,
    s: Any,
    touch: Touch,
    step: Mapping[str, Any],
    customer: Customer,
    staff: Staff | None,
    fields: Mapping[str, Any],
    now: datetime,
    enrollment: Enrollment,
) -> tuple[list[Any], bool]:
    """The step's sends as (action index, action, message); data actions run here."""
    sends = []
    idempotent = True
    tags, changed_fields = TagChange(), {}
    for index, action in enumerate(step["actions"]):
        kind = action["type"]
        if kind in ("send", "remind_staff"):
            channel, _ = channel_for(app, touch.tenant_id, action["channel"], s)
            idempotent = idempotent and channel.capabilities.idempotent_send
            outbound = OutboundMessage(
                touchpoint=action.get("touchpoint", "staff_notice") if kind == "send" else "staff_notice",
                text=render(action["text"], customer, staff.name if staff else ""),
                idempotency_key=f"touch:{touch.id}:{index}",
                recipient=_recipient(s, customer, action["channel"], action.get("touchpoint"), now),
                attachments=tuple(
                    Attachment(
                        **{
                            k: v
                            for k, v in a.items()
                            if k in ("kind", "url", "title", "description", "media_id")
                        }
                    )
                    for a in action.get("attachments", [])
                ),
                staff_external_id=staff.external_id if staff else None,
            )
            channel.check(outbound)
            sends.append((index, action, {"tenant_id": touch.tenant_id, "outbound": outbound}))
        elif kind == "plugin":
            idempotent = False  # a plugin action may have side effects: a human reviews a crash
            sends.append(
                (
                    index,
                    action,
                    {
                        "tenant_id": touch.tenant_id,
                        "touch_id": touch.id,
                        "customer_id": customer.id,
                        "customer": {
                            "display_name": customer.display_name,
                            "source": customer.source,
                            "fields": dict(customer.fields),
                        },
                        "idempotency_key": f"touch:{touch.id}:{index}",
                        "outbound": None,
                    },
                )
            )
        elif kind == "webhook":
            # a receiver that de-duplicates by Idempotency-Key may be retried after a crash
            idempotent = idempotent and bool(action.get("idempotent"))
            sends.append(
                (
                    index,
                    action,
                    {
                        "tenant_id": touch.tenant_id,
                        "touch_id": touch.id,
                        "customer_id": customer.id,
                        "outbound": None,
                    },
                )
            )
        else:
            change = _data_action(s, customer, action, fields, now, enrollment)
            if change is not None:
                tags = TagChange(
                    tuple(sorted(set(tags.added) | set(change[0].added))),
                    tuple(sorted(set(tags.removed) | set(change[0].removed))),
                )
                changed_fields.update(change[1])
    # one event for the step's data changes: journeys and plugins react to them
    record_change(
        s,
        customer,
        now,
        key=f"sop-action:{touch.id}",
        cause="sop_action",
        tags=tags,
        fields=changed_fields,
        depth=enrollment.depth + 1,
        sop_id=touch.sop_id,
        touch_id=touch.id,
    )
    return sends, idempotent


def _reply_gate(
    s: Any,
    touch: Touch,
    definition: Mapping[str, Any],
    now: datetime,
    enrollment: Enrollment,
    fields: Mapping[str, Any],
) -> str | None:
    """F26: a step after a "wait for reply" step waits for a reply or the timeout."""
    if touch.step_index == 0:
        return None
    wait = definition["steps"][touch.step_index - 1].get("wait_for_reply")
    if not wait:
        return None
    previous = s.scalar(
        sa.select(Touch).where(
            Touch.enrollment_id == touch.enrollment_id, Touch.step_index == touch.step_index - 1
        )
    )
    if previous is None or previous.sent_at is None:
        return None
    if previous.replied_at is not None:
        if wait["on_reply"] == "end":
            end_enrollment(
                s,
                enrollment,
                "ended_early",
                "replied",
                now,
                fields,
                **end_actions(definition, "on_early_end"),
            )
            return "cancelled"
        return None
    deadline = previous.sent_at + parse_duration(wait["timeout"])
    if now < deadline:
        touch.status, touch.due_at = "scheduled", deadline
        touch.deferrals += 1
        touch.defer_reason = "waiting_for_reply"
        return "scheduled"
    if wait["on_timeout"] == "skip":
        touch.status = "skipped"
        touch.outcome = {"reason": "no_reply"}
        _maybe_complete(s, touch, now, fields)
        return "skipped"
    return None


#: How long a welcome code from a ``customer.added`` event stays usable (WeCom: 20 s).
WELCOME_WINDOW = timedelta(seconds=20)


def _recipient(
    s: Any, customer: Customer, channel: str, touchpoint: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Who to reach: every identity, plus the one on this channel (and the staff
    member it belongs to) as ``external_id`` / ``staff_userid``; for the
    ``welcome`` touchpoint, the welcome code of a ``customer.added`` event from
    the last 20 s (``None`` when there is none: the channel skips the send)."""
    from sopflow.models import ChannelIdentity

    rows = s.execute(
        sa.select(ChannelIdentity.channel, ChannelIdentity.external_id, Staff.external_id)
        .outerjoin(Staff, Staff.id == ChannelIdentity.staff_id)
        .where(ChannelIdentity.customer_id == customer.id)
        .order_by(ChannelIdentity.id)
    ).all()
    out: dict[str, Any] = {
        "customer_id": customer.id,
        "identities": [{"channel": c, "external_id": e, "staff_userid": st} for c, e, st in rows],
    }
    for c, e, st in rows:
        if c == channel:
            out.update(external_id=e, staff_userid=st)
            break
    if touchpoint == "welcome" and now is not None:
        added = s.execute(
            sa.select(Event.payload, Event.occurred_at)
            .where(
                Event.customer_id == customer.id,
                Event.type == "customer.added",
                Event.occurred_at >= now - WELCOME_WINDOW,
            )
            .order_by(Event.occurred_at.desc(), Event.id.desc())
            .limit(1)
        ).first()
        out["welcome_code"] = (added[0] or {}).get("welcome_code") if added else None
    return out


def _data_action(
    s: Any,
    customer: Customer,
    action: Mapping[str, Any],
    fields: Mapping[str, Any],
    now: datetime,
    enrollment: Enrollment,
) -> tuple[TagChange, dict[str, Any]] | None:
    """Apply one data action; returns the tag and field changes it made."""
    kind = action["type"]
    if kind == "set_field":
        stored = {action["field"]: to_storage(fields[action["field"]], action["value"])}
        before = dict(customer.fields or {})
        customer.fields = apply_stored(customer.fields, stored)
        return TagChange(), {k: v for k, v in stored.items() if before.get(k) != v}
    if kind in ("add_tag", "remove_tag"):
        key = "add" if kind == "add_tag" else "remove"
        return change_tags(s, customer, **{key: [action["tag"]]}), {}
    if kind == "move_stage":
        move_customer(
            s,
            customer.tenant_id,
            customer.id,
            get_stage(s, customer.tenant_id, action["stage_id"]),
            "rule",
            now,
            depth=enrollment.depth + 1,
        )
    return None


def _webhook(action: Mapping[str, Any], message: Mapping[str, Any]) -> Any:

    try:
        r = httpx.post(
            action["url"],
            json={"touch_id": message["touch_id"], "customer_id": message["customer_id"]},
            headers={"Idempotency-Key": f"touch:{message['touch_id']}"},
            timeout=10,
        )
    except httpx.TimeoutException as exc:
        raise AmbiguousSendError("webhook timed out") from exc
    except httpx.HTTPError as exc:
        raise RetriableError(f"webhook failed: {type(exc).__name__}", retry_after=60) from exc
    if r.status_code >= 500 or r.status_code == 429:
        raise RetriableError(f"webhook answered {r.status_code}", retry_after=60)
    if r.status_code >= 400:
        raise SkippableError(f"webhook answered {r.status_code}")
    return SendReceipt("sent")


def _plugin_action(app: Any, action: Mapping[str, Any], message: dict[str, Any]) -> SendReceipt:
    """Run a plugin's ``ActionSpec``: ``run(context, params)``; a returned
    ``SendReceipt`` is kept, anything else counts as done."""
    reg = app.plugins.registry.get("register_actions", action["action"])
    if reg is None:
        raise SkippableError(f"plugin action {action['action']!r} is no longer installed")
    context = {k: v for k, v in message.items() if k != "outbound"}
    result = reg.spec.run(context, dict(action.get("params") or {}))
    return result if isinstance(result, SendReceipt) else SendReceipt("sent")


def _record(
    app: Any,
    touch_id: int,
    status: str,
    results: list[dict[str, Any]],
    reason: str,
    retry_after: float | None,
    throttled: bool = False,
) -> str:
    now = app.now()
    with app.tx() as s:
        touch = s.get(Touch, touch_id, with_for_update=True)
        assert touch is not None
        if throttled:  # our own limiter held it back before any call: not an attempt
            touch.attempts = max(0, touch.attempts - 1)
            touch.deferrals += 1
            touch.defer_reason = "rate_limit"
        touch.outcome = {**touch.outcome, "results": results, **({"reason": reason} if reason else {})}
        if status == "scheduled":
            if touch.attempts >= MAX_ATTEMPTS:
                status = "failed"
            else:
                touch.due_at = now + timedelta(seconds=retry_after or 30 * 2**touch.attempts)
                touch.lease_until = None
        touch.status = status
        if status in ("sent", "pending"):
            touch.sent_at = now
            enrollment = s.get(Enrollment, touch.enrollment_id)
            s.add(
                Event(
                    tenant_id=touch.tenant_id,
                    customer_id=touch.customer_id,
                    type="touch.sent",
                    idempotency_key=f"touch.sent:{touch.id}",
                    occurred_at=now,
                    received_at=now,
                    payload={
                        "touch_id": touch.id,
                        "sop_id": touch.sop_id,
                        "step_index": touch.step_index,
                        "status": status,
                    },
                    source="sopflow",
                    depth=(enrollment.depth if enrollment else 0) + 1,
                )
            )
        if status in ("sent", "pending", "failed", "skipped"):
            _maybe_complete(s, touch, now, lambda: field_definitions(s, touch.tenant_id, app.plugins))
    return status


def _maybe_complete(s: Any, touch: Touch, now: datetime, fields: Any) -> None:
    """F21: after the last step is done, the enrolment ends normally."""
    s.flush()
    open_touches = s.scalar(
        sa.select(sa.func.count())
        .select_from(Touch)
        .where(
            Touch.enrollment_id == touch.enrollment_id, Touch.status.in_(("scheduled", "claimed", "sending"))
        )
    )
    if open_touches:
        return
    enrollment = s.get(Enrollment, touch.enrollment_id)
    if enrollment is not None and enrollment.status == ACTIVE:
        fields = fields() if callable(fields) else fields  # loaded only when an enrolment completes
        runtime = runtime_of(s, enrollment, fields)
        end_enrollment(
            s,
            enrollment,
            "completed",
            "all_steps_done",
            now,
            fields,
            **end_actions(runtime.definition, "on_complete"),
        )
