"""The states of a touch and the moves between them, in one place.

A touch row is created ``scheduled`` (or ``skipped`` when enrolment is too
late for its step) and moves along ``TRANSITIONS``; the engine checks every
move it writes with ``check_move`` (a dict lookup per row), so a move the
table does not allow fails loudly instead of leaving a touch in a state the
rest of the code does not expect.  docs/sops.md draws the table.

The per-action results inside a touch's ``outcome`` (``"sent"``, ``"pending"``
from a channel's ``SendReceipt``) are the SDK's vocabulary, not touch states.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum


class TouchStatus(StrEnum):
    """Where a touch is.  The values are what the ``touches.status`` column holds."""

    #: waiting for its ``due_at`` (again, after a deferral or a retriable failure)
    SCHEDULED = "scheduled"
    #: taken by a scheduler under a lease, on its way to a worker
    CLAIMED = "claimed"
    #: its channel call is under way (or about to be)
    SENDING = "sending"
    #: sent, waiting for staff to confirm it (a WeCom mass send); polled until final
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    #: its enrolment ended before it was sent
    CANCELLED = "cancelled"
    #: a send that may or may not have reached the customer on a channel that cannot
    #: de-duplicate: never retried blindly, a human decides
    REVIEW = "review"


_S = TouchStatus

#: what an enrolment writes: a step in the past of a late enrolment is skipped
INITIAL: frozenset[TouchStatus] = frozenset({_S.SCHEDULED, _S.SKIPPED})
#: a step that may still be sent: its enrolment has not completed
OPEN: tuple[TouchStatus, ...] = (_S.SCHEDULED, _S.CLAIMED, _S.SENDING)
#: what ending an enrolment cancels (a ``sending`` touch is left to its worker)
CANCELLABLE: tuple[TouchStatus, ...] = (_S.SCHEDULED, _S.CLAIMED)
#: a step that is done for its enrolment's completion
DONE: tuple[TouchStatus, ...] = (_S.SENT, _S.PENDING, _S.FAILED, _S.SKIPPED)
#: what the calls of one touch can come to (``delivery.sends.Outcome``)
OUTCOMES: frozenset[TouchStatus] = frozenset(
    {_S.SENT, _S.PENDING, _S.SCHEDULED, _S.FAILED, _S.SKIPPED, _S.REVIEW}
)
#: a call's outcome recorded after the touch's lease ran out during the call, and a
#: scheduler re-claimed it, marked it for review or cancelled it: the answer that came
#: back is the truth about the touch
_LATE_OUTCOME = OUTCOMES

#: state → the states it may move to.  Every move the engine writes is one of these.
TRANSITIONS: Mapping[TouchStatus, frozenset[TouchStatus]] = {
    _S.SCHEDULED: frozenset(
        {
            _S.CLAIMED,  # due: claimed under a lease
            _S.SCHEDULED,  # deferred: quiet hours, the daily cap, a full batch window
            _S.SKIPPED,  # a journey sync placed the customer past this step
            _S.CANCELLED,  # the enrolment ended
        }
    ),
    _S.CLAIMED: frozenset(
        {
            _S.CLAIMED,  # re-claimed after its lease ran out; prepared for a non-idempotent call
            _S.SENDING,  # its call is next
            _S.SCHEDULED,  # waiting for the reply the step before asked for
            _S.SKIPPED,  # no reply in time, or the send cannot be made (skippable)
            _S.FAILED,  # the send cannot be made (fatal)
            _S.CANCELLED,  # the enrolment ended, early-end rule, reply that ends it
            *_LATE_OUTCOME,
        }
    ),
    _S.SENDING: frozenset(
        {
            *OUTCOMES,  # the call's outcome (``scheduled``: retried later)
            _S.CLAIMED,  # abandoned by its worker on an idempotent channel: sent again, same key
            _S.CANCELLED,  # abandoned, and its enrolment has ended meanwhile
        }
    ),
    _S.PENDING: frozenset(
        {
            _S.SENT,  # staff confirmed it
            _S.FAILED,  # it failed
            _S.SKIPPED,  # staff chose not to send it (the sidebar's "skip"), and nothing went out
            _S.SCHEDULED,  # its customer was handed to another staff member before it was sent
        }
    ),
    _S.REVIEW: _LATE_OUTCOME,
    _S.CANCELLED: _LATE_OUTCOME,
    _S.SENT: frozenset(),
    _S.FAILED: frozenset(),
    _S.SKIPPED: frozenset(),
}


class IllegalTouchMove(RuntimeError):
    """The engine tried to move a touch along a move ``TRANSITIONS`` does not
    allow: a bug in the engine, not a caller's mistake (no HTTP status of its own)."""

    def __init__(self, old: str | None, new: str, touch_id: int | None = None) -> None:
        which = f"touch {touch_id}" if touch_id is not None else "a touch"
        old, new = (str(old) if old is not None else None), str(new)  # 'sent', not <TouchStatus.SENT>
        if old is None:
            message = f"a new touch may not start as {new!r} (only as {' or '.join(sorted(INITIAL))})"
        else:
            allowed = ", ".join(sorted(TRANSITIONS.get(old, ()))) or "nothing: it is final"  # type: ignore[call-overload]
            message = f"{which} may not move from {old!r} to {new!r} (from {old!r}: {allowed})"
        super().__init__(message)
        self.old, self.new, self.touch_id = old, new, touch_id


def can_move(old: str, new: str) -> bool:
    """Whether a touch in ``old`` may move to ``new`` (both states or their values)."""
    allowed = TRANSITIONS.get(old)  # type: ignore[call-overload]
    return allowed is not None and new in allowed


def check_move(old: str, new: str, touch_id: int | None = None) -> TouchStatus:
    """``new`` as a ``TouchStatus`` when a touch in ``old`` may move there;
    raises ``IllegalTouchMove`` naming both states otherwise."""
    allowed = TRANSITIONS.get(old)  # type: ignore[call-overload]
    if allowed is None or new not in allowed:
        raise IllegalTouchMove(old, new, touch_id)
    return TouchStatus(new)


def check_moves(olds: Iterable[str], new: str) -> TouchStatus:
    """For a set-based UPDATE (``WHERE status IN olds``): every one of ``olds``
    may move to ``new``; returns ``new``."""
    for old in olds:
        check_move(old, new)
    return TouchStatus(new)


def check_initial(status: str) -> TouchStatus:
    """``status`` as a ``TouchStatus`` when a new touch may start in it."""
    if status not in INITIAL:
        raise IllegalTouchMove(None, status)
    return TouchStatus(status)
