"""``sopflow demo``: the click command, added to ``sopflow`` by the plugin.

Every ``sopflow`` start loads this module (to collect plugin commands), so the
demo itself, which starts an app, is imported only when the command runs.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path
from typing import Any

import click


@click.command()
@click.option("--seed", default=7, show_default=True, help="Random seed: the same seed, the same run.")
@click.option(
    "--days", default=42, show_default=True, help="Simulated days (seed 001's day-40 touch needs 41+)."
)
@click.option(
    "--arrival-days", default=3, show_default=True, help="Days on which new customers scan the codes."
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the report to this file (.json for JSON, anything else Markdown).",
)
@click.option("--keep-running", is_flag=True, help="Leave the API up afterwards and print its URL and a key.")
@click.option("--quiet", is_flag=True, help="No live progress display (the report is still printed).")
def demo(
    seed: int, days: int, arrival_days: int, report_path: Path | None, keep_running: bool, quiet: bool
) -> None:
    """The seeds' scenarios end to end on embedded defaults, against a fake WeCom:
    a few hundred customers over simulated weeks, then a report checked against
    the database.  Exits non-zero if any figure disagrees."""
    from rich.console import Console

    from sopflow_demo.progress import Progress
    from sopflow_demo.report import to_markdown
    from sopflow_demo.run import DemoOptions, run_demo
    from sopflow_demo.world import DemoError

    console = Console()
    if days < 1 or arrival_days < 1 or arrival_days > days:
        raise click.BadParameter(
            "give --days ≥ 1 and 1 ≤ --arrival-days ≤ --days", param_hint="--arrival-days"
        )
    options = DemoOptions(seed=seed, days=days, arrival_days=arrival_days, report_path=report_path)

    progress = None if quiet else Progress(console)
    shown = False

    def show(result: Any) -> None:
        nonlocal shown
        if progress is not None:
            progress.live.stop()
            console.print()  # the live table's last border and the report's heading on lines of their own
        console.print(to_markdown(result.report), markup=False, highlight=False, soft_wrap=True)
        console.print(f"demo finished in {result.seconds:.1f} s")
        shown = True

    def hold(result: Any) -> None:
        show(result)
        for line in still_up(result.base_url, result.api_key):
            console.print(line, markup=False, highlight=False)
        console.print("Ctrl-C to stop.")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()

    try:
        if progress is not None:
            progress.live.start()
        result = run_demo(
            options,
            on_hour=progress.on_hour if progress is not None else None,
            keep_running=hold if keep_running else None,
        )
    except DemoError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        if progress is not None:
            progress.live.stop()
    if not shown:
        show(result)
    if not result.ok:
        bad = [c["check"] for c in result.report["checks"] if not c["ok"]]
        raise click.ClickException(f"the report disagrees with the database: {'; '.join(bad)}")


def still_up(base_url: str, api_key: str) -> list[str]:
    """What ``--keep-running`` prints: the API, the operator console and how to sign in."""
    return [
        f"API still up on {base_url}  (docs: {base_url}/schema)",
        f"admin API key: {api_key}",
        f"operator console: {base_url}/console  (sign in with the admin API key above)",
    ]
