"""The scheduler loop: claims due SOP touches and hands them to deliver
workers, advances nurture audiences, polls sends awaiting staff confirmation,
and runs periodic plugin jobs (``JobSpec.every_seconds``).

Each tick asks the injected clock, so under the manual clock work fires exactly
when the clock passes its due time.  Safe to run more than one: touches are
claimed with leases (``FOR UPDATE SKIP LOCKED`` on Postgres).

Each tick also recovers what an outage left behind (``recovery``): claims a
restarted broker lost, events never evaluated.  While the broker cannot be
reached the tick claims nothing (a claim without a hand-off only waits), and
a failing step is logged once per interval with a count (``EngineContext.failures``).
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sopflow.engine.context import EngineContext
from sopflow.engine.delivery.confirmations import poll_confirmations
from sopflow.engine.delivery.dispatch import dispatch_due
from sopflow.engine.journeys.sync import advance_syncs
from sopflow.engine.sops.manage import advance_audiences
from sopflow.host import enqueue_job
from sopflow.logging import get_logger
from sopflow.worker.recovery import Recovery

if TYPE_CHECKING:  # the app hands itself in
    from sopflow.app import SopflowApp

log = get_logger("sopflow.scheduler")
#: Touches claimed per round, and rounds per tick at most (then the tick's other steps run).
DISPATCH_ROUND = 500
MAX_DISPATCH_ROUNDS = 20


class Scheduler:
    def __init__(self, app: SopflowApp) -> None:
        self.app = app
        self._next: dict[str, datetime] = {}
        self._stop = threading.Event()
        self.recovery = Recovery(app)
        self.ticks = 0

    def tick(self) -> int:
        """One round of scheduling; returns how many units of work it started."""
        self.ticks += 1
        fired = 0
        broker_up = self._step("reconcile_claims", lambda app: self.recovery.reconcile_claims()) is not None
        steps: list[tuple[str, Any]] = [
            ("evaluate_sweep", lambda app: self.recovery.sweep_events()),
            ("job_sweep", lambda app: self.recovery.sweep_jobs()),
            ("advance_audiences", advance_audiences),
            ("advance_syncs", advance_syncs),
            ("poll_confirmations", poll_confirmations),
        ]
        if broker_up:
            steps.insert(0, ("dispatch", self.dispatch))
        for name, step in steps:
            fired += self._step(name, step) or 0
        return fired + self.run_periodic_jobs()

    def _step(self, name: str, step: Any) -> int | None:
        """Run one step; None when it failed (logged once per interval with a count)."""
        try:
            done = step(self.app)
        except Exception as exc:
            self.app.failures.report("scheduler_step_failed", exc, step=name)
            return None
        return done

    def dispatch(self, app: EngineContext) -> int:
        """Claim rounds until fewer than a full round is due (or the in-flight cap
        stops the claim): a backlog is handed out at the workers' pace, not one
        round per tick.  Bounded, so the other steps of the tick still run."""
        total = 0
        for _ in range(MAX_DISPATCH_ROUNDS):
            n = dispatch_due(app, DISPATCH_ROUND)
            total += n
            if n < DISPATCH_ROUND:
                break
        return total

    def run_periodic_jobs(self) -> int:
        """Enqueue every periodic plugin job that is due; returns how many."""
        now = self.app.now()
        fired = 0
        for reg in self.app.plugins.registry.all("register_jobs"):
            spec = reg.spec
            if not spec.every_seconds:
                continue
            due = self._next.setdefault(spec.name, now)
            if now >= due:
                try:
                    enqueue_job(self.app, spec.name, {}, durable=False)
                    fired += 1
                except Exception as exc:  # it fires again at its next period: nothing is owed
                    self.app.failures.report("periodic_job_failed", exc, job=spec.name, plugin=reg.plugin)
                self._next[spec.name] = now + timedelta(seconds=spec.every_seconds)
        return fired

    def run_forever(self) -> None:
        log.info("scheduler_started", interval=self.app.settings.scheduler_interval)
        while not self._stop.is_set():
            self.tick()
            self._stop.wait(self.app.settings.scheduler_interval)

    def stop(self) -> None:
        self._stop.set()

    def start_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.run_forever, name="sopflow-scheduler", daemon=True)
        thread.start()
        return thread
