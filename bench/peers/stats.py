"""Percentiles and the lateness summary shared by the peers and the scenarios."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..1); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def lateness(offsets: Sequence[float]) -> dict[str, float]:
    """p50/p99/max of seconds after the due instant (negative = early)."""
    return {
        "p50_s": round(percentile(offsets, 0.5), 3),
        "p99_s": round(percentile(offsets, 0.99), 3),
        "max_s": round(max(offsets, default=0.0), 3),
    }


def first_runs(records: Iterable[tuple[int, float]]) -> tuple[dict[int, float], int]:
    """The first execution time of every key, and how many executions were repeats."""
    first: dict[int, float] = {}
    counts: Counter[int] = Counter()
    for key, at in records:
        counts[key] += 1
        if key not in first or at < first[key]:
            first[key] = at
    return first, sum(c - 1 for c in counts.values())
