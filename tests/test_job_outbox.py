"""Plugin jobs survive the broker: each is a ``pending_jobs`` row until it ran,
so a failed hand-off or a broker that restarted empty delays a job and never
loses it."""

from __future__ import annotations

import types
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sopflow_sdk import JobSpec, hookimpl

from tests.test_outages import broken, drain

RUNS: list[dict[str, Any]] = []


def _job(host: Any, **kwargs: Any) -> None:
    RUNS.append(kwargs)


def _failing(host: Any, **kwargs: Any) -> None:
    raise RuntimeError("the plugin's own bug")


def _jobs_plugin() -> Any:
    def register_jobs(register: Any) -> None:
        register(JobSpec("jobs.sync", _job))
        register(JobSpec("jobs.bad", _failing))

    module = types.ModuleType("jobs_plugin")
    module.register_jobs = hookimpl(register_jobs)
    return module


@pytest.fixture
def sopflow_plugins() -> list[tuple[str, Any]]:
    return [("jobs", _jobs_plugin())]


@pytest.fixture(autouse=True)
def clean(manual_clock: Any) -> None:
    RUNS.clear()
    manual_clock.set(datetime(2026, 3, 2, 10, 30, tzinfo=ZoneInfo("Asia/Shanghai")))


def pending(app: Any) -> list[tuple[str, bool]]:
    from sopflow.models import PendingJob

    with app.tx() as s:
        return [tuple(r) for r in s.execute(sa.select(PendingJob.name, PendingJob.handed_off))]


def test_inline_a_job_runs_at_once_and_leaves_no_row(sopflow_app: Any) -> None:
    from sopflow.host import PluginHost

    PluginHost(sopflow_app, "jobs").enqueue("jobs.sync", n=1)
    assert RUNS == [{"n": 1}] and pending(sopflow_app) == []


def test_inline_a_failing_job_is_the_callers_error_and_is_not_retried(sopflow_app: Any) -> None:
    from sopflow.host import PluginHost
    from sopflow.worker.scheduler import Scheduler

    with pytest.raises(RuntimeError, match="own bug"):
        PluginHost(sopflow_app, "jobs").enqueue("jobs.bad")
    assert pending(sopflow_app) == []
    Scheduler(sopflow_app).tick()  # nothing for the sweep to run again


def test_a_job_enqueued_while_the_broker_is_down_runs_once_when_it_is_back(
    sopflow_app: Any, broker: Any, manual_clock: Any, monkeypatch: Any
) -> None:
    from sopflow.host import PluginHost
    from sopflow.worker.scheduler import Scheduler

    scheduler = Scheduler(sopflow_app)
    scheduler.tick()  # the scheduler knows this broker
    monkeypatch.setattr(broker.actors["plugin_job"], "send", broken)
    PluginHost(sopflow_app, "jobs").enqueue("jobs.sync", n=2)  # no error for the plugin
    assert pending(sopflow_app) == [("jobs.sync", False)] and RUNS == []
    monkeypatch.undo()
    scheduler.tick()
    drain(sopflow_app, broker)
    assert RUNS == []  # within the grace: the enqueue may still be on its way
    manual_clock.advance(timedelta(seconds=sopflow_app.settings.evaluate_grace_seconds + 1))
    scheduler.tick()
    drain(sopflow_app, broker)
    assert RUNS == [{"n": 2}] and pending(sopflow_app) == []
    scheduler.tick()
    drain(sopflow_app, broker)
    assert RUNS == [{"n": 2}]  # once


def test_jobs_a_restarted_broker_lost_are_sent_again_once(sopflow_app: Any, broker: Any) -> None:
    from sopflow.host import PluginHost
    from sopflow.worker.actors import install
    from sopflow.worker.broker import make_broker
    from sopflow.worker.scheduler import Scheduler

    scheduler = Scheduler(sopflow_app)
    scheduler.tick()  # the scheduler knows this broker
    PluginHost(sopflow_app, "jobs").enqueue("jobs.sync", n=3)
    assert pending(sopflow_app) == [("jobs.sync", True)]
    broker.close()
    restarted = make_broker(sopflow_app.settings)  # its queue is gone, the job with it
    install(sopflow_app, restarted)
    try:
        scheduler.tick()  # a new epoch: every pending job is sent again
        drain(sopflow_app, restarted)
        scheduler.tick()
        drain(sopflow_app, restarted)
    finally:
        restarted.close()
    assert RUNS == [{"n": 3}] and pending(sopflow_app) == []
