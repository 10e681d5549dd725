"""Run the benchmark scenarios (issue 8): every ``bench/scenarios/s*_*.py`` module.

Each scenario is timed as the median of 3 runs (``--quick``: 1 run at tiny
sizes, for the correctness counters only).  The baseline and the hardware
limit of every figure are measured in the same invocation, on the same data.

    uv run python bench/run.py                       # every scenario, SQLite, full sizes
    uv run python bench/run.py --quick               # seconds; what tests/test_bench_quick.py runs
    uv run python bench/run.py --scenario S7 --s7-customers 100000
    uv run python bench/run.py --backend postgres --postgres-url postgresql+psycopg://…/postgres
    uv run python bench/run.py --write-docs          # also rewrite the table in docs/benchmarks.md

Prints the machine line and the exact command, writes JSON (``--out``), and
exits non-zero when a scenario failed or a correctness counter is not zero.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.load import DEFAULT_PG, Context, machine, machine_line, time_limit  # noqa: E402
from bench.scenarios import discover  # noqa: E402

#: Scenario name → module.  A module declares NAME ("S7"), optional ALIASES
#: (("S5",)), ORDER (cheap scenarios first), MUST_BE_ZERO (its correctness
#: counters that must be 0), ``add_arguments(ap)`` and ``run(ctx)``.
SCENARIOS = discover()
ALIASES = {alias: name for name, module in SCENARIOS.items() for alias in getattr(module, "ALIASES", ())}
ORDER = tuple(sorted(SCENARIOS, key=lambda name: (SCENARIOS[name].ORDER, name)))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="tiny sizes, 1 run: correctness counters only")
    ap.add_argument(
        "--scenario",
        action="append",
        type=str.upper,
        metavar="S7",
        help=f"run only these (repeatable; {', '.join(ORDER)}; aliases: {ALIASES})",
    )
    ap.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument(
        "--postgres-url",
        default=os.environ.get("SOPFLOW_TEST_POSTGRES_URL", DEFAULT_PG),
        help="an admin URL; each scenario creates and drops its own databases",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    ap.add_argument("--write-docs", action="store_true", help="replace the marked table in --docs")
    ap.add_argument("--docs", type=Path, default=ROOT / "docs" / "benchmarks.md")
    ap.add_argument(
        "--block",
        default="bench",
        help="which marked table in --docs to replace: <!-- BLOCK:start --> … <!-- BLOCK:end -->",
    )
    ap.add_argument("--runs", type=int, default=None, help="timed runs per figure (default 3; quick 1)")
    ap.add_argument(
        "--budget",
        type=float,
        default=None,
        help="wall-time limit per scenario in s (default 1200; quick 60)",
    )
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    ap.add_argument(
        "--update",
        action="store_true",
        help="keep the other scenarios of --out (an earlier run on this machine): re-measure only the "
        "chosen ones and replace their rows; the table lists every command that measured it",
    )
    ap.add_argument(
        "--from-json",
        type=Path,
        metavar="RESULTS",
        help="run nothing: render the table from an earlier results file (with --write-docs: into the docs)",
    )
    for module in SCENARIOS.values():
        module.add_arguments(ap)
    args = ap.parse_args(argv)
    chosen = []
    for name in args.scenario or ORDER:
        name = ALIASES.get(name, name)
        if name not in SCENARIOS:
            ap.error(f"unknown scenario {name}; use {', '.join(ORDER)}")
        if name not in chosen:
            chosen.append(name)
    args.scenario = chosen
    args.runs = args.runs or (1 if args.quick else 3)
    args.budget = args.budget or (60.0 if args.quick else 1200.0)
    return args


# --------------------------------------------------------------------------- formatting


def fmt_seconds(s: float) -> str:
    if s < 0.01:
        return f"{s * 1000:.1f} ms"
    if s < 1:
        return f"{s:.3f} s"
    if s < 100:
        return f"{s:.2f} s"
    return f"{s:,.0f} s"


def fmt_rate(r: float) -> str:
    if r >= 1_000_000:
        return f"{r / 1_000_000:.2f}M"
    if r >= 10_000:
        return f"{r / 1000:.0f}k"
    if r >= 1_000:
        return f"{r / 1000:.1f}k"
    return f"{r:.0f}"


def fmt_ratio(x: float | None) -> str:
    if x is None:
        return "—"
    if x >= 10:
        return f"{x:.0f}×"
    if x >= 1:
        return f"{x:.1f}×"
    return f"{x:.2g}×"


def cell(fig: dict[str, Any] | None) -> str:
    if not fig:
        return "—"
    if "bytes_per" in fig:  # a memory figure: its rate is per MiB, so ratios still read "higher is better"
        text = f"{fig['bytes_per']:,.0f} B"
    elif is_latency(fig):  # its rate is 1/p50 (or 1/p99): the cell shows the latency
        text = f"{fig['unit'][2:]} {fmt_seconds(fig['seconds'])}"
    else:
        text = f"{fmt_seconds(fig['seconds'])} ({fmt_rate(fig['rate'])} {fig['unit']})"
    if fig.get("note"):
        text += f"; {fig['note']}"
    if fig.get("what"):
        text += f" — {fig['what']}"
    return text


def is_latency(fig: dict[str, Any]) -> bool:
    return str(fig.get("unit", "")).startswith("1/p")


def ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> float | None:
    """Ours ÷ theirs as throughputs (higher is better); latencies compare their
    seconds directly (the rounded 1/latency rate loses small ratios)."""
    if not a or not b:
        return None
    if "bytes_per" in a and a["bytes_per"] < 1:  # below what was measurable: no ratio
        return None
    if is_latency(a) and is_latency(b):
        return b["seconds"] / a["seconds"] if a["seconds"] else None
    if not b.get("rate"):
        return None
    return a["rate"] / b["rate"]


def markdown(report: dict[str, Any]) -> str:
    runs = "Quick run (1 run, tiny sizes)." if report["quick"] else f"Median of {report['runs']} runs."
    lines = [
        f"Machine: {report['machine_line']}. Back-end: {report['backend']}. {runs} "
        f"Measured {report['finished_at'][:10]}, {report['wall_seconds']:.0f} s of wall time in all.",
        "",
        *(f"    {command}" for command in commands(report)),
        "",
        "| # | scenario | size | ours | baseline (same run) | hardware limit (same run) "
        "| ours ÷ baseline | ours ÷ limit | what bounds ours |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for result in report["scenarios"]:
        for row in result.get("rows", []):
            lines.append(
                "| "
                + " | ".join(
                    [
                        row["id"],
                        row["what"],
                        row["size"],
                        cell(row["ours"]),
                        cell(row.get("baseline")),
                        cell(row.get("limit")),
                        fmt_ratio(row.get("vs_baseline")),
                        fmt_ratio(row.get("vs_limit")),
                        row.get("bound", ""),
                    ]
                )
                + " |"
            )
    lines.append("")
    counters = []
    for result in report["scenarios"]:
        if result.get("counters"):
            inner = ", ".join(f"{k} {v:,}" for k, v in result["counters"].items())
            counters.append(f"{result['scenario']}: {inner}")
    lines.append("Correctness counters: " + "; ".join(counters) + ".")
    if report.get("note"):  # set by hand when rows were re-measured apart (say which, and how)
        lines.append(report["note"])
    for err in report["errors"]:
        lines.append(f"\n**{err['scenario']} failed:** {err['error']}")
    return "\n".join(lines)


def commands(report: dict[str, Any]) -> list[str]:
    """The command lines that measured the report's rows, oldest first."""
    return [*(u["command"] for u in report.get("updated_from", [])), report["command"]]


def merged(earlier: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    """``report``'s scenarios in place of the same ones in ``earlier``; the rest kept."""
    if earlier["backend"] != report["backend"] or earlier["quick"] != report["quick"]:
        raise SystemExit("--update: the earlier results are for another back-end or size; run them all")
    fresh = {r["scenario"]: r for r in report["scenarios"]}
    kept = [r for r in earlier["scenarios"] if r["scenario"] not in fresh]
    ordered = sorted([*kept, *fresh.values()], key=lambda r: ORDER.index(r["scenario"]))
    history = [*earlier.get("updated_from", []), {k: earlier[k] for k in ("command", "finished_at")}]
    out = {**report, "scenarios": ordered, "updated_from": history}
    out["wall_seconds"] = round(earlier["wall_seconds"] + report["wall_seconds"], 1)
    out["errors"] = [*report["errors"], *(e for e in earlier["errors"] if e["scenario"] not in fresh)]
    return out


def write_docs(path: Path, block: str, name: str = "bench") -> None:
    start_mark, end_mark = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = path.read_text()
    start, end = text.find(start_mark), text.find(end_mark)
    if start < 0 or end < start:
        raise SystemExit(f"{path} has no {start_mark} … {end_mark} block")
    path.write_text(text[: start + len(start_mark)] + "\n" + block + "\n" + text[end:])


def bad_counters(report: dict[str, Any]) -> list[str]:
    return [
        f"{result['scenario']}.{key} = {value}"
        for result in report["scenarios"]
        for key, value in result.get("counters", {}).items()
        if key in SCENARIOS[result["scenario"]].MUST_BE_ZERO and value != 0
    ]


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json:
        block = markdown(json.loads(args.from_json.read_text()))
        print(block)
        if args.write_docs:
            write_docs(args.docs, block, args.block)
            print(f"updated {args.docs}")
        return 0
    command = "uv run python bench/run.py" + ("".join(f" {shlex.quote(a)}" for a in sys.argv[1:]))
    info = machine(args.backend, args.postgres_url)
    line = machine_line(info)
    print(f"machine: {line}")
    print(f"command: {command}")
    if os.cpu_count() and os.cpu_count() <= 2:  # type: ignore[operator]
        print("note: the cores are shared with anything else running on this machine")
    started = time.perf_counter()
    report: dict[str, Any] = {
        "command": command,
        "machine": info,
        "machine_line": line,
        "backend": args.backend,
        "quick": args.quick,
        "runs": args.runs,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "scenarios": [],
        "errors": [],
    }
    for name in args.scenario:
        ctx = Context(
            backend=args.backend,
            postgres_url=args.postgres_url,
            quick=args.quick,
            runs=args.runs,
            args=args,
            budget_seconds=args.budget,
            verbose=not args.quiet,
        )
        t0 = time.perf_counter()
        try:
            with time_limit(args.budget + 30, name):
                result = SCENARIOS[name].run(ctx)
        except Exception as exc:
            traceback.print_exc()
            report["errors"].append({"scenario": name, "error": f"{type(exc).__name__}: {exc}"})
            continue
        result["wall_seconds"] = round(time.perf_counter() - t0, 1)
        for row in result.get("rows", []):
            row["vs_baseline"] = ratio(row["ours"], row.get("baseline"))
            row["vs_limit"] = ratio(row["ours"], row.get("limit"))
        report["scenarios"].append(result)
        print(json.dumps({"scenario": name, "counters": result.get("counters", {})}, ensure_ascii=False))
    report["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    report["wall_seconds"] = round(time.perf_counter() - started, 1)
    if args.update and args.out.exists():
        report = merged(json.loads(args.out.read_text()), report)
    report["must_be_zero"] = bad_counters(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    block = markdown(report)
    print(block)
    print(f"wrote {args.out}")
    if args.write_docs:
        write_docs(args.docs, block, args.block)
        print(f"updated {args.docs}")
    if report["errors"] or report["must_be_zero"]:
        print("FAILED: " + "; ".join([e["scenario"] for e in report["errors"]] + report["must_be_zero"]))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
