"""Comparing groups of enrolments: a random split's arms, or two SOPs run for two
staff groups.  Per group: enrolled, sent, replied and converted within N days,
each rate with a 95% Wilson score interval, and each group after the first
compared with the first by a pooled two-proportion z-test (two-sided).

Written out (a few lines each, textbook formulas) rather than pulling in scipy
or statsmodels for two functions; the tests check them against reference values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.models import Enrollment, Touch
from sopflow.models.touch_status import TouchStatus

#: the normal quantile of a two-sided 95% interval
Z95 = 1.959963984540054
METRICS = ("sent", "replied", "converted")


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of ``successes`` / ``trials``; ``None`` with no trials."""
    if trials <= 0:
        return None
    p = successes / trials
    z2n = z * z / trials
    centre = (p + z2n / 2) / (1 + z2n)
    half = z * math.sqrt(p * (1 - p) / trials + z2n / (4 * trials)) / (1 + z2n)
    return max(0.0, centre - half), min(1.0, centre + half)


def two_proportion_test(k1: int, n1: int, k2: int, n2: int) -> dict[str, float | None]:
    """Pooled two-proportion z-test of k2/n2 against k1/n1: the difference, z and
    the two-sided p-value (z and p ``None`` when the pooled rate is 0 or 1)."""
    if n1 <= 0 or n2 <= 0:
        return {"difference": None, "z": None, "p_value": None}
    p1, p2 = k1 / n1, k2 / n2
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return {"difference": p2 - p1, "z": None, "p_value": None}
    z = (p2 - p1) / se
    return {"difference": p2 - p1, "z": z, "p_value": math.erfc(abs(z) / math.sqrt(2))}


def group_counts(
    session: Session, where: sa.ColumnElement[bool], by: Any, window_days: int
) -> dict[Any, dict[str, int]]:
    """Per value of ``by`` over the enrolments ``where`` selects: enrolled, and how
    many of them had a touch sent, a reply, and a conversion within ``window_days``
    of enrolling."""
    e, t = Enrollment.__table__, Touch.__table__
    sent = sa.exists().where(t.c.enrollment_id == e.c.id, t.c.status == TouchStatus.SENT)
    replied = sa.exists().where(t.c.enrollment_id == e.c.id, t.c.replied_at.is_not(None))
    rows = session.execute(
        sa.select(by, sa.func.count(), sa.func.count().filter(sent), sa.func.count().filter(replied))
        .select_from(e)
        .where(where)
        .group_by(by)
    ).all()
    out = {key: {"enrolled": n, "sent": s, "replied": r, "converted": 0} for key, n, s, r in rows}
    # the few converted rows are read and compared here: date arithmetic differs per database
    window = timedelta(days=window_days)
    for key, enrolled_at, converted_at in session.execute(
        sa.select(by, e.c.enrolled_at, e.c.converted_at).where(where, e.c.converted_at.is_not(None))
    ):
        if converted_at - enrolled_at <= window:
            out[key]["converted"] += 1
    return out


def compare_groups(groups: Sequence[tuple[dict[str, Any], dict[str, int]]]) -> list[dict[str, Any]]:
    """Each group's label fields with its counts, rates and intervals; each group
    after the first also has ``versus_first``: the test per metric."""
    out: list[dict[str, Any]] = []
    first = groups[0][1] if groups else None
    for label, counts in groups:
        n = counts["enrolled"]
        row: dict[str, Any] = {**label, "enrolled": n}
        for metric in METRICS:
            k = counts[metric]
            interval = wilson_interval(k, n)
            row[metric] = {
                "count": k,
                "rate": k / n if n else None,
                "interval_95": list(interval) if interval else None,
            }
        if first is not None and out:
            row["versus_first"] = {
                metric: two_proportion_test(first[metric], first["enrolled"], counts[metric], n)
                for metric in METRICS
            }
        out.append(row)
    return out
