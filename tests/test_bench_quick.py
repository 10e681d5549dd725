"""The benchmark suite's quick run (``bench/run.py --quick``) on SQLite: its
correctness counters must be zero.  Timings are never asserted here — they are
benchmark figures, written to docs/benchmarks.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.sqlite_pass  # the bench runs on SQLite whatever the pass

ROOT = Path(__file__).resolve().parents[1]


def test_bench_quick_correctness_counters(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            "--quick",
            "--quiet",
            "--backend",
            "sqlite",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["errors"] == [], proc.stderr[-3000:]
    counters = {r["scenario"]: r["counters"] for r in report["scenarios"]}
    sys.path.insert(0, str(ROOT))
    from bench.scenarios import discover

    scenarios = discover()
    assert set(counters) == set(scenarios)  # every scenario ran in quick mode
    for name, module in scenarios.items():
        for key in module.MUST_BE_ZERO:
            assert counters[name][key] == 0, (name, key)

    s7 = counters["S7"]  # journey sync
    assert s7["placement_checked"] > 0
    assert s7["placement_mismatches"] == 0
    assert s7["rerun_moves"] == 0
    assert s7["open_history_duplicates"] == 0

    s9 = counters["S9"]  # keyword rules
    assert s9["messages_checked"] > 0
    assert s9["hit_mismatches"] == 0
    assert s9["limit_hit_mismatches"] == 0

    s1 = counters["S1"]  # enrolment
    assert s1["enrol_missing"] == 0 and s1["duplicate_enrolments"] == 0
    assert s1["touch_missing"] == 0 and s1["duplicate_touches"] == 0
    assert s1["due_time_mismatches"] == 0 and s1["due_times_checked"] > 0

    s3 = counters["S3"]  # dispatch burst
    assert s3["early_fires"] == 0
    assert s3["duplicates"] == 0
    assert s3["lost"] == 0
    assert s3["baseline_lost"] == 0 and s3["limit_lost"] == 0

    assert report["must_be_zero"] == []
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_update_replaces_only_the_scenarios_it_measured():
    sys.path.insert(0, str(ROOT))
    from bench.run import commands, markdown, merged

    def report(command, scenarios, errors=()):
        return {
            "command": command,
            "machine_line": "m",
            "backend": "sqlite",
            "quick": False,
            "runs": 3,
            "finished_at": "2026-11-30T10:00:00",
            "wall_seconds": 10.0,
            "scenarios": [{"scenario": name, "rows": [], "counters": {"lost": n}} for name, n in scenarios],
            "errors": [{"scenario": e, "error": "x"} for e in errors],
        }

    earlier = report("run all", [("S7", 1), ("S1", 2), ("S3", 3)], errors=["S9"])
    out = merged(earlier, report("run S3", [("S3", 0)]))
    assert [(r["scenario"], r["counters"]["lost"]) for r in out["scenarios"]] == [
        ("S7", 1),
        ("S1", 2),
        ("S3", 0),
    ]
    assert commands(out) == ["run all", "run S3"]
    assert [e["scenario"] for e in out["errors"]] == ["S9"]  # S9 was not re-run: its error stands
    assert "    run all\n    run S3" in markdown(out)
    again = merged(out, report("run S9", [("S9", 0)]))
    assert commands(again) == ["run all", "run S3", "run S9"] and again["errors"] == []
