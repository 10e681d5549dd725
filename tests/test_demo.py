"""A small run of `sopflow demo`: the whole product on embedded defaults against
the fake WeCom, and its report checked against the database."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from sopflow_demo.run import DemoOptions, run_demo

pytestmark = pytest.mark.sqlite_pass  # the demo runs on its embedded SQLite whatever the pass


def test_small_demo_report_agrees_with_the_database(tmp_path):
    result = run_demo(DemoOptions(seed=3, days=8, arrival_days=2, report_path=tmp_path / "r.json"))
    report = result.report
    assert [c["check"] for c in report["checks"] if not c["ok"]] == []
    assert report["simulated"]["arrived"] == 31 + 23  # seed 000's first two days
    incubation = report["sops"][0]
    assert incubation["targeted"] == report["simulated"]["arrived"]
    assert [s["when"] for s in incubation["steps"]] == [
        "day 0 20:00",
        "day 1 09:00",
        "day 1 20:00",
        "day 2 09:00",
        "day 2 20:00",
        "day 3 12:00",
    ]
    first = incubation["steps"][0]  # after 8 days every day-0 touch has an outcome
    outcomes = ("sent", "awaiting_confirmation", "cancelled", "skipped", "failed")
    assert sum(first[k] for k in outcomes) == first["targeted"] and first["sent"] > 0
    assert json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["checks"] == report["checks"]
    # the lifecycle journey: everyone stands in a stage; price questions reached 决策 or beyond
    board = report["board"]
    assert list(board) == ["激活", "兴趣", "孵化", "决策", "签单"]
    assert sum(board.values()) == report["simulated"]["arrived"]
    reminders = next(sop for sop in report["sops"] if sop["name"].startswith("决策"))
    assert reminders["targeted"] >= board["决策"] > 0
    # the keyword scene came through the archive pull: every reply, the staff answers, nothing else
    archive = report["archive"]
    assert archive["customer_messages"] == report["simulated"]["replies"] > 0
    assert archive["staff_messages"] == archive["colleague_messages"] > 0
    assert (
        archive["cursor"]
        == archive["last_seq"]
        == sum(archive[k] for k in ("customer_messages", "staff_messages", "colleague_messages"))
    )
    assert archive["healthy"] is True
    names = [c["check"] for c in report["checks"]]
    assert "archive: customers who asked the price stand in 决策 or 签单" in names
    # the shop scene: orders are 有赞 pushes through the orders plugin, checked against orders.count
    assert "有赞 pushes sent = sum of orders.count" in names and report["simulated"]["orders"] > 0
    assert "oily-skin answers = enrolments in the skin_type SOP" in names
    # the CRM scene: the fake Salesforce org's Contacts picked the renewal SOP's audience
    crm = {c["check"]: c for c in report["checks"] if "Salesforce" in c["check"] or "Contacts" in c["check"]}
    assert len(crm) == 3 and all(c["expected"] > 0 for c in crm.values())
    assert next(s for s in report["sops"] if s["name"].startswith("保险续保"))["targeted"] > 0
    # the personal WeChat scene: friends accepted within the daily cap, the rest the next day
    assert "personal WeChat: no two sends closer than the gap" in names
    assert report["personal_wechat"]["accepted_per_day"][:2] == [3, 1]


def test_same_seed_same_report_across_processes(tmp_path):
    """Different hash seeds change set and dict orders inside the engine; the
    demo's report must not depend on them."""
    reports = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"r{hash_seed}.json"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "sopflow.cli",
                "demo",
                "--quiet",
                "--seed",
                "11",
                "--days",
                "5",
                "--arrival-days",
                "2",
                "--report",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
        )
        assert done.returncode == 0, done.stderr[-2000:]
        reports.append(json.loads(out.read_text(encoding="utf-8")))
    assert reports[0] == reports[1]
    assert reports[0]["simulated"]["replies"] > 0


def test_cli_demo_writes_markdown_and_exits_zero(tmp_path):
    out = tmp_path / "report.md"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sopflow.cli",
            "demo",
            "--quiet",
            "--days",
            "3",
            "--arrival-days",
            "1",
            "--report",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    text = out.read_text(encoding="utf-8")
    assert "## 新客孵化 (seed 000)" in text and "MISMATCH" not in text
    assert "| every scanned customer entered the incubation SOP | 31 | 31 | ok |" in text
    assert "Traceback" not in done.stderr


def test_without_a_c_compiler_the_demo_says_how_to_get_one(tmp_path):
    """The archive scene compiles the Finance SDK's C fake: with no ``cc`` and nothing
    cached, the demo stops at once with the fix, not a traceback."""
    env = {k: v for k, v in os.environ.items() if k != "CC"}
    env |= {"PATH": str(tmp_path / "no-bin"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-m", "sopflow.cli", "demo", "--quiet", "--days", "1", "--arrival-days", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert "needs a C compiler (cc)" in done.stderr and "apt-get install gcc libc6-dev" in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_demo_rejects_bad_options():
    done = subprocess.run(
        [sys.executable, "-m", "sopflow.cli", "demo", "--days", "2", "--arrival-days", "5"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "--arrival-days" in done.stderr and "Traceback" not in done.stderr


def test_the_demo_plugin_adds_the_command_and_nothing_else():
    """Installed, the demo's plugin loads with every plain sopflow (its command must
    be there); all it contributes is ``register_commands``."""
    from sopflow.plugins import build_plugin_system

    system = build_plugin_system()  # SOPFLOW_PLUGINS unset: what `sopflow` and `sopflow up` load
    info = system.infos["demo"]
    assert info.distribution == "sopflow-demo" and info.hooks == ["register_commands"]
    assert [
        (hook, r.spec)
        for hook in system.registry.items
        for r in system.registry.all(hook)
        if r.plugin == "demo"
    ] == []


def test_keep_running_prints_a_console_that_its_key_signs_into(tmp_path):
    """``--keep-running``: the printed console URL serves the console, and the printed key signs in."""
    import httpx
    from sopflow_demo.command import still_up

    from tests.console_support import sign_in

    seen: dict[str, object] = {}

    def explore(result) -> None:
        lines = still_up(result.base_url, result.api_key)
        console_url = lines[-1].split()[2]
        assert console_url == f"{result.base_url}/console" and result.api_key in lines[1]
        with httpx.Client(base_url=result.base_url, timeout=10) as client:
            assert sign_in(client, result.api_key).status_code == 303
            seen["board"] = client.get("/console/board")

    run_demo(
        DemoOptions(seed=3, days=2, arrival_days=1, report_path=tmp_path / "r.json"), keep_running=explore
    )
    board = seen["board"]
    assert board.status_code == 200 and 'class="column"' in board.text
