"""What the scheduler does so that no outage loses work, every tick.

* **Claims the broker lost.**  When the broker's epoch changes (Redis restarted,
  empty or from its AOF; a new embedded process), the deliver messages it held
  may be gone: every claim no worker has started is released at once and handed
  out again by the same tick's dispatch (``claim_release``).  One scheduler wins
  the change (compare-and-set on ``runtime_state``), so several schedulers do not
  release each other's fresh claims.
* **Events not evaluated.**  An event stored while the broker was down, or whose
  evaluate message was lost, still has ``evaluated_at`` NULL.  The sweep
  evaluates, here and now, events waiting longer than
  ``SOPFLOW_EVALUATE_GRACE_SECONDS`` — and after an epoch change every waiting
  event at once.  Evaluation is idempotent, so racing a worker is harmless.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa

from sopflow.engine.customers.evaluation_marks import mark_evaluated, unevaluated
from sopflow.engine.customers.ingest import event_to_dict
from sopflow.engine.delivery.claim_release import release_unstarted
from sopflow.engine.evaluate import OBSERVATIONAL
from sopflow.host import hand_off
from sopflow.logging import get_logger
from sopflow.models import PendingJob, RuntimeState
from sopflow.outages import dependency_of
from sopflow.worker.broker_epoch import broker_epoch
from sopflow.worker.runtime import evaluate

if TYPE_CHECKING:  # the app hands itself in
    from sopflow.app import SopflowApp

log = get_logger("sopflow.recovery")
EPOCH_KEY = "broker_epoch"
#: events evaluated by the sweep per tick at most (then the tick's other steps run)
SWEEP_BATCH = 200
#: an event whose evaluation keeps failing (a bug) is tried again after 2, 4, … ticks
MAX_BACKOFF_TICKS = 64


class Recovery:
    def __init__(self, app: SopflowApp) -> None:
        self.app = app
        self.epoch_seen: str | None = None
        self.sweep_all = False  # the broker restarted: every waiting event is the sweep's
        self.jobs_all = False  # and every pending plugin job
        self.ticks = 0
        self._failing: dict[int, tuple[int, int]] = {}  # event id → (failures, retry at tick)

    def reconcile_claims(self) -> int:
        """Release the claims a restarted broker may have lost; returns how many.
        Raises ``DependencyUnavailable`` while the broker cannot be reached."""
        if self.app.broker is None:
            return 0
        epoch = broker_epoch(self.app.broker)
        if epoch == self.epoch_seen:
            return 0
        released = 0
        with self.app.tx() as s:
            # the row lock (Postgres; SQLite's write lock) makes this a compare-and-set
            stored = s.get(RuntimeState, EPOCH_KEY, with_for_update=True)
            first = stored is None  # a new deployment: nothing was handed to an older broker
            won = first or stored.value != epoch
            if stored is None:
                s.add(RuntimeState(key=EPOCH_KEY, value=epoch, updated_at=self.app.now()))
            elif won:
                stored.value, stored.updated_at = epoch, self.app.now()
            if won:
                released = release_unstarted(s)
        if won:
            self.sweep_all = self.jobs_all = True
            (log.info if first and not released else log.warning)(
                "broker_epoch_changed", epoch=epoch, released_claims=released
            )
        self.epoch_seen = epoch
        return released

    def sweep_events(self) -> int:
        """Evaluate events the broker did not bring to a worker; returns how many."""
        self.ticks += 1
        app = self.app
        now = app.now()
        before = now if self.sweep_all else now - timedelta(seconds=app.settings.evaluate_grace_seconds)
        skip = [i for i, (_, at) in self._failing.items() if at > self.ticks]
        with app.tx() as s:
            events = [(e.tenant_id, event_to_dict(e)) for e in unevaluated(s, before, SWEEP_BATCH, skip)]
        done = 0
        for tenant_id, event in events:
            try:
                if event["type"] in OBSERVATIONAL:
                    with app.tx() as s:  # stored by a version that did not mark them
                        mark_evaluated(s, event["id"], now)
                else:
                    evaluate(app, tenant_id, event, deliver_now=True)  # as a worker would
                self._failing.pop(event["id"], None)
                done += 1
            except Exception as exc:
                app.failures.report("evaluate_sweep_failed", exc, event_id=event["id"])
                failures = self._failing.get(event["id"], (0, 0))[0] + 1
                self._failing[event["id"]] = (failures, self.ticks + min(2**failures, MAX_BACKOFF_TICKS))
                if dependency_of(exc) is not None:
                    break  # the database is down: the next tick tries again
        if len(events) < SWEEP_BATCH:
            self.sweep_all = False
        return done

    def sweep_jobs(self) -> int:
        """Send again the plugin jobs whose hand-off failed (after the grace, so a
        job being enqueued right now is not sent twice) and, after the broker
        restarted, every pending job; returns how many were handed off."""
        app = self.app
        before = app.now() - timedelta(seconds=app.settings.evaluate_grace_seconds)
        query = sa.select(PendingJob.id, PendingJob.name, PendingJob.kwargs).order_by(PendingJob.id)
        if not self.jobs_all:
            query = query.where(PendingJob.handed_off.is_(False), PendingJob.created_at < before)
        with app.tx() as s:
            rows = list(s.execute(query.limit(SWEEP_BATCH)))
        sent = 0
        for job_id, name, kwargs in rows:
            if app.plugins.registry.get("register_jobs", name) is None:
                continue  # its plugin is not loaded in this process: another scheduler's
            if not hand_off(app, job_id, name, kwargs):
                break  # the broker is down: the next tick tries again
            sent += 1
        if len(rows) < SWEEP_BATCH:
            self.jobs_all = False
        return sent
