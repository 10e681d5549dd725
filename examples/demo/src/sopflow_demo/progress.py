"""The live progress display: simulated date, customers, touches, stages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from rich.console import Console
from rich.live import Live
from rich.table import Table
from sopflow.models import Customer, Touch, TouchStatus

from sopflow_demo.journey import board_counts


def snapshot(world: Any, sim: Any, hour: datetime) -> dict[str, Any]:
    with world.app.tx() as s:
        statuses = dict(s.execute(sa.select(Touch.status, sa.func.count()).group_by(Touch.status)).all())
        customers = s.scalar(sa.select(sa.func.count()).select_from(Customer)) or 0
    return {
        "date": hour.strftime("%Y-%m-%d %a %H:00"),
        "customers": customers,
        "orders": sim.tally.orders,
        "replies": sim.tally.replies,
        "sent": statuses.get(TouchStatus.SENT, 0),
        "awaiting staff": statuses.get(TouchStatus.PENDING, 0),
        "scheduled": statuses.get(TouchStatus.SCHEDULED, 0),
    }


def render(values: dict[str, Any], stages: dict[str, int]) -> Table:
    table = Table(title="sopflow demo — simulated time on the manual clock", show_header=False)
    for key, value in values.items():
        table.add_row(key, str(value))
    for name, n in stages.items():
        table.add_row(f"stage {name}", str(n))
    return table


class Progress:
    """Refreshes a rich table every few simulated hours."""

    def __init__(self, console: Console, every_hours: int = 6) -> None:
        self.live = Live(console=console, refresh_per_second=8, transient=False)
        self.every_hours = every_hours

    def __enter__(self) -> Progress:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.live.__exit__(*exc)

    def on_hour(self, world: Any, sim: Any, hour: datetime) -> None:
        if hour.hour % self.every_hours:
            return
        stages = board_counts(sim.setup) if sim.setup.journey_id else {}
        self.live.update(render(snapshot(world, sim, hour), stages))
