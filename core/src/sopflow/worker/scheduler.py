"""The scheduler loop: claims due SOP touches and hands them to deliver
workers, advances nurture audiences, polls sends awaiting staff confirmation,
and runs periodic plugin jobs (``JobSpec.every_seconds``).

Each tick asks the injected clock, so under the manual clock work fires exactly
when the clock passes its due time.  Safe to run more than one: touches are
claimed with leases (``FOR UPDATE SKIP LOCKED`` on Postgres).
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

from sopflow.logging import get_logger
from sopflow.worker.jobs import enqueue_job

log = get_logger("sopflow.scheduler")


class Scheduler:
    def __init__(self, app: Any) -> None:
        self.app = app
        self._next: dict[str, datetime] = {}
        self._stop = threading.Event()

    def tick(self) -> int:
        """One round of scheduling; returns how many units of work it started."""
        from sopflow.engine.journey_sync import advance_syncs
        from sopflow.engine.runner import advance_audiences, dispatch_due, poll_confirmations

        fired = 0
        for step in (dispatch_due, advance_audiences, advance_syncs, poll_confirmations):
            try:
                fired += step(self.app)
            except Exception:
                log.exception("scheduler_step_failed", step=step.__name__)
        return fired + self.run_periodic_jobs()

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
                    enqueue_job(self.app, spec.name, {})
                    fired += 1
                except Exception:
                    log.exception("periodic_job_failed", job=spec.name, plugin=reg.plugin)
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
