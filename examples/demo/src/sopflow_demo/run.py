"""Put the demo together: world → scenario → simulation → report."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from sopflow_demo import report as reporting
from sopflow_demo.personal import personal_scene
from sopflow_demo.scenario import install
from sopflow_demo.simulate import Simulation
from sopflow_demo.world import World

#: A Monday morning in Shanghai; the simulation starts here whatever the real date.
START = datetime(2026, 3, 2, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@attrs.frozen
class DemoOptions:
    seed: int = 7
    days: int = 42
    arrival_days: int = 3  # seed 000's three days of arrivals (31, 23 and 41)
    report_path: Path | None = None
    workdir: Path | None = None


@attrs.define
class DemoResult:
    report: dict[str, Any]
    seconds: float
    base_url: str = ""
    api_key: str = ""

    @property
    def ok(self) -> bool:
        return reporting.ok(self.report)


def run_demo(
    options: DemoOptions,
    on_hour: Callable[[World, Simulation, datetime], None] | None = None,
    keep_running: Callable[[DemoResult], None] | None = None,
) -> DemoResult:
    """Run the whole demo; ``keep_running`` is called with the API still up."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sopflow-demo-") as tmp:
        workdir = options.workdir or Path(tmp)
        with World(workdir, START) as world:
            setup = install(world)
            sim = Simulation(world, setup, options.seed, options.arrival_days, options.days)
            hook = (lambda hour: on_hour(world, sim, hour)) if on_hour else None
            tally = sim.run(hook)
            report = reporting.build_report(world, setup, tally, options.seed, options.days)
            personal_scene(world, setup, report)  # after the WeCom weeks: its own days and checks
            result = DemoResult(report, time.monotonic() - started, world.base_url, setup.api_key)
            if options.report_path is not None:
                reporting.write(report, options.report_path)
            if keep_running is not None:
                keep_running(result)
            setup.api.close()
            if setup.web is not None:
                setup.web.close()
    return result
