"""Load pending touches for the process scenarios (S10 memory, S13 restart):
customers, one active enrolment each and ``steps`` touches per enrolment, on a
started SOP.  Postgres: one set-based ``INSERT … SELECT generate_series``
statement (writable CTEs); SQLite: Core executemany in chunks
(``bench.load.bulk_insert``).  Due times are relative to the real clock
(these scenarios run real ``sopflow`` processes on the system clock).
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.load import CHUNK, bulk_insert

NOW_SQL = "(now() at time zone 'utc')"
#: Compiled bytecode for the sopflow processes the bench starts, outside the repository
#: and kept between runs, as a deployed installation has it (this machine sets
#: PYTHONDONTWRITEBYTECODE, which would make every start compile every module).
PYCACHE = Path(tempfile.gettempdir()) / "sopflow-bench-pycache"


def bytecode_cached(env: dict[str, str]) -> dict[str, str]:
    """``env`` for a sopflow process that writes and reuses bytecode under ``PYCACHE``."""
    env = dict(env)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


def add_touches(
    app: Any,
    tenant_id: int,
    sop_id: int,
    enrolments: int,
    steps: int,
    *,
    due: str = "future",
    tag: str = "p",
) -> None:
    """``enrolments`` new customers, each enrolled once with ``steps`` touches.

    ``due="future"``: step k is due 1 + 10·k days from now plus up to 9 days
    (so nothing comes due during a run); ``due="now"``: due one second ago."""
    if enrolments <= 0:
        return
    with app.engine.connect() as conn:
        version_id = conn.scalar(sa.text("SELECT id FROM sop_versions WHERE sop_id = :s"), {"s": sop_id})
    if app.engine.dialect.name == "postgresql":
        _add_pg(app, tenant_id, sop_id, version_id, enrolments, steps, due, tag)
    else:
        _add_sqlite(app, tenant_id, sop_id, version_id, enrolments, steps, due, tag)


def _add_pg(
    app: Any, tenant_id: int, sop_id: int, version_id: int, n: int, steps: int, due: str, tag: str
) -> None:
    if due == "now":
        due_sql = f"{NOW_SQL} - interval '1 second'"
    else:
        due_sql = f"{NOW_SQL} + make_interval(days => 1 + 10 * k) + random() * interval '9 days'"
    with app.engine.begin() as conn:
        conn.execute(
            sa.text(f"""
            WITH c AS (
                INSERT INTO customers (tenant_id, display_name, fields, created_at, updated_at)
                SELECT :t, :tag || g, '{{}}'::jsonb, {NOW_SQL}, {NOW_SQL} FROM generate_series(1, :n) g
                RETURNING id
            ), e AS (
                INSERT INTO enrollments (tenant_id, sop_id, sop_version_id, customer_id, entry_seq, status,
                                         timezone, enrolled_at, depth, rearmed)
                SELECT :t, :s, :v, c.id, 0, 'active', 'Asia/Shanghai', {NOW_SQL}, 0, false FROM c
                RETURNING id, customer_id
            )
            INSERT INTO touches (tenant_id, sop_id, enrollment_id, customer_id, step_index, status,
                                 planned_at, due_at, attempts, deferrals, outcome)
            SELECT :t, :s, e.id, e.customer_id, k, 'scheduled', d.at, d.at, 0, 0, '{{}}'::jsonb
            FROM e CROSS JOIN generate_series(0, :steps - 1) k
            CROSS JOIN LATERAL (SELECT {due_sql} AS at) d"""),
            {"t": tenant_id, "s": sop_id, "v": version_id, "n": n, "steps": steps, "tag": tag},
        )


def _add_sqlite(
    app: Any, tenant_id: int, sop_id: int, version_id: int, n: int, steps: int, due: str, tag: str
) -> None:
    import random

    from sopflow.models import Customer, Enrollment, Touch

    rng = random.Random(n)
    now = datetime.now(UTC)
    with app.engine.connect() as conn:
        first_c = (conn.scalar(sa.select(sa.func.max(Customer.__table__.c.id))) or 0) + 1
        first_e = (conn.scalar(sa.select(sa.func.max(Enrollment.__table__.c.id))) or 0) + 1
    per = max(1, CHUNK // max(steps, 1))
    for start in range(0, n, per):
        size = min(per, n - start)
        customers, enrolments, touches = [], [], []
        for i in range(start, start + size):
            cid, eid = first_c + i, first_e + i
            customers.append(
                {
                    "id": cid,
                    "tenant_id": tenant_id,
                    "display_name": f"{tag}{i}",
                    "fields": {},
                    "created_at": now,
                    "updated_at": now,
                }
            )
            enrolments.append(
                {
                    "id": eid,
                    "tenant_id": tenant_id,
                    "sop_id": sop_id,
                    "sop_version_id": version_id,
                    "customer_id": cid,
                    "entry_seq": 0,
                    "status": "active",
                    "timezone": "Asia/Shanghai",
                    "enrolled_at": now,
                    "depth": 0,
                    "rearmed": False,
                }
            )
            for k in range(steps):
                at = (
                    now - timedelta(seconds=1)
                    if due == "now"
                    else now + timedelta(days=1 + 10 * k) + timedelta(days=9) * rng.random()
                )
                touches.append(
                    {
                        "tenant_id": tenant_id,
                        "sop_id": sop_id,
                        "enrollment_id": eid,
                        "customer_id": cid,
                        "step_index": k,
                        "status": "scheduled",
                        "planned_at": at,
                        "due_at": at,
                        "attempts": 0,
                        "deferrals": 0,
                        "outcome": {},
                    }
                )
        with app.engine.begin() as conn:
            bulk_insert(conn, Customer.__table__, customers)
            bulk_insert(conn, Enrollment.__table__, enrolments)
            bulk_insert(conn, Touch.__table__, touches)


def count_touches(app: Any, **where: Any) -> int:
    from sopflow.models import Touch

    t = Touch.__table__
    with app.engine.connect() as conn:
        return (
            conn.scalar(
                sa.select(sa.func.count()).select_from(t).where(*(t.c[k] == v for k, v in where.items()))
            )
            or 0
        )


def status_counts(app: Any, ids: Any = None) -> dict[str, int]:
    from sopflow.models import Touch

    t = Touch.__table__
    q = sa.select(t.c.status, sa.func.count()).group_by(t.c.status)
    if ids is not None:
        q = q.where(ids)
    with app.engine.connect() as conn:
        return dict(conn.execute(q).all())
