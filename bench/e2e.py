"""Helpers for the scenarios that run our real processes or a real clock (S2, S4):
a started SOP on the built-in ``log`` channel, customers with touches at given
due times (bulk Core inserts), and the deliveries read back from the workers'
logs.

The ``log`` channel writes one JSON log line per send (``log_channel_send``,
with the idempotency key ``touch:<id>:<action>`` and a microsecond UTC
timestamp) at INFO: a worker started with ``SOPFLOW_LOG_LEVEL=INFO`` and
``SOPFLOW_LOG_FORMAT=json`` makes every channel call observable across
processes for the price of one rendered line on stderr.  The channel
de-duplicates keys within one process (it is declared idempotent), so a second
call with the same key in the same process is not logged: a key logged twice
means two processes sent it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.load import START, bulk_insert, insert_customers

CHUNK = 20_000


def log_definition(steps: int) -> dict[str, Any]:
    """A ``new_customer`` SOP with ``steps`` sends on the ``log`` channel (nobody is
    enrolled by a rule: the scenario inserts enrolments and touches itself)."""
    return {
        "kind": "new_customer",
        "target": {},
        "steps": [
            {
                "delay": f"{i + 1}d",
                "actions": [
                    {
                        "type": "send",
                        "channel": "log",
                        "touchpoint": "private_chat",
                        "text": "Hi {{ customer.display_name }}",
                    }
                ],
            }
            for i in range(steps)
        ],
    }


def started_sop(app: Any, name: str, steps: int) -> tuple[int, int, int]:
    """A new tenant and a started SOP on the log channel: (tenant_id, sop_id, version_id)."""
    from sopflow.engine.sops.manage import create_sop, start_sop
    from sopflow.models import SopVersion
    from sopflow_sdk.testing.harness import new_tenant

    tenant_id, _ = new_tenant(app, name)
    with app.tx() as s:
        sop = create_sop(s, app, tenant_id, name, log_definition(steps), app.now())
        start_sop(s, sop, app.now())
        sop_id = sop.id
    with app.engine.connect() as conn:
        version_id = conn.scalar(sa.select(SopVersion.id).where(SopVersion.sop_id == sop_id))
    return tenant_id, sop_id, version_id


def add_touches(
    app: Any,
    tenant_id: int,
    sop_id: int,
    version_id: int,
    dues: Iterable[Sequence[datetime]],
    name: str = "c",
) -> tuple[int, int]:
    """One customer and enrolment per item of ``dues``, and one touch per due time
    in it (step 0, 1, …).  Generated and written in chunks; returns the range of
    customer ids ``(first, last + 1)``."""
    from sopflow.models import Enrollment, Touch

    first = last = None
    for block in _chunks(dues, CHUNK):
        start_id = insert_customers(
            app,
            tenant_id,
            ({"display_name": f"{name}{i}", "timezone": "Asia/Shanghai"} for i in range(len(block))),
        )
        first = start_id if first is None else first
        last = start_id + len(block)
        with app.engine.begin() as conn:
            enrol_first = (conn.scalar(sa.select(sa.func.max(Enrollment.__table__.c.id))) or 0) + 1
            bulk_insert(
                conn,
                Enrollment.__table__,
                [
                    {
                        "id": enrol_first + i,
                        "tenant_id": tenant_id,
                        "sop_id": sop_id,
                        "sop_version_id": version_id,
                        "customer_id": start_id + i,
                        "entry_seq": 0,
                        "status": "active",
                        "timezone": "Asia/Shanghai",
                        "enrolled_at": START,
                        "depth": 0,
                        "rearmed": False,
                    }
                    for i in range(len(block))
                ],
            )
            bulk_insert(
                conn,
                Touch.__table__,
                [
                    touch_row(tenant_id, sop_id, enrol_first + i, start_id + i, step, due)
                    for i, steps in enumerate(block)
                    for step, due in enumerate(steps)
                ],
            )
    return (first or 0), (last or 0)


def touch_row(
    tenant_id: int, sop_id: int, enrollment_id: int, customer_id: int, step: int, due: datetime
) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "sop_id": sop_id,
        "enrollment_id": enrollment_id,
        "customer_id": customer_id,
        "step_index": step,
        "status": "scheduled",
        "planned_at": due,
        "due_at": due,
        "attempts": 0,
        "deferrals": 0,
        "outcome": {},
    }


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    block: list[Any] = []
    for item in items:
        block.append(item)
        if len(block) >= size:
            yield block
            block = []
    if block:
        yield block


class LogDeliveries:
    """The ``log_channel_send`` lines of some worker logs, read incrementally:
    ``calls`` is every (touch id, epoch seconds) seen, ``by_key`` counts keys."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = list(paths)
        self.offsets = {p: 0 for p in self.paths}
        self.calls: list[tuple[int, float]] = []
        self.by_key: Counter[str] = Counter()
        self.touches: set[int] = set()

    def poll(self) -> int:
        for path in self.paths:
            try:
                with open(path, "rb") as f:
                    f.seek(self.offsets[path])
                    data = f.read()
            except FileNotFoundError:
                continue
            end = data.rfind(b"\n") + 1
            self.offsets[path] += end
            for line in data[:end].splitlines():
                if b'"log_channel_send"' not in line:
                    continue
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                key = entry["key"]
                touch_id = int(key.split(":")[1])
                at = datetime.fromisoformat(entry["timestamp"]).timestamp()
                self.by_key[key] += 1
                self.calls.append((touch_id, at))
                self.touches.add(touch_id)
        return len(self.touches)

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for n in self.by_key.values())
