"""Sending a message after a commit, as an optimisation only.

Every message sent after a transaction committed is backed by a durable record
the scheduler sweeps (an event's ``evaluated_at``, a nurture SOP's audience
state, a claimed touch): if the broker is down the message is dropped, logged
once per interval, and the sweep does the work later.  So a broker outage never
turns a stored (acknowledged) request into an error.
"""

from __future__ import annotations

from typing import Any

from sopflow.failure_log import failure_log


def send_after_commit(app: Any, actor: str, *args: Any, what: str) -> bool:
    """Send ``actor(*args)``; on failure log ``{what}_enqueue_failed`` (bounded) and
    return False: the durable record stays for the sweep."""
    try:
        app.broker.actors[actor].send(*args)
    except Exception as exc:
        failure_log(app).report(f"{what}_enqueue_failed", exc, actor=actor)
        return False
    return True
