"""The layering is a contract: ``lint-imports`` keeps it, and breaks on a
forbidden import (proved here on copies, never on the real tree)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = [
    sys.executable,
    "-c",
    "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())",
]


def lint(config: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = f"{pythonpath}{os.pathsep}{env.get('PYTHONPATH', '')}"
    return subprocess.run(
        [*LINT, str(config), "--no-cache"],
        cwd=config.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_tree_keeps_every_contract():
    result = lint(ROOT / ".importlinter")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_an_engine_module_importing_the_api_breaks_the_layers(tmp_path):
    shutil.copytree(ROOT / "core/src/sopflow", tmp_path / "src/sopflow")
    fields = tmp_path / "src/sopflow/engine/customers/fields.py"
    fields.write_text(fields.read_text() + "\nimport sopflow.api.app  # noqa\n")
    config = tmp_path / ".importlinter"
    config.write_text((ROOT / ".importlinter").read_text())
    result = lint(config, tmp_path / "src")
    assert result.returncode != 0
    assert "Core layers" in result.stdout and "BROKEN" in result.stdout
    assert "sopflow.engine.customers.fields -> sopflow.api.app" in result.stdout


def test_an_api_module_importing_sqlalchemy_breaks_the_no_sql_contract(tmp_path):
    """Handlers hold no SQL: a query in an API module means importing SQLAlchemy there."""
    shutil.copytree(ROOT / "core/src/sopflow", tmp_path / "src/sopflow")
    clock = tmp_path / "src/sopflow/api/clock.py"
    clock.write_text(clock.read_text() + "\nimport sqlalchemy  # noqa\n")
    config = tmp_path / ".importlinter"
    config.write_text((ROOT / ".importlinter").read_text())
    result = lint(config, tmp_path / "src")
    assert result.returncode != 0
    assert "The API holds no SQL" in result.stdout and "BROKEN" in result.stdout
    assert "sopflow.api.clock -> sqlalchemy" in result.stdout


def test_a_plugin_importing_core_breaks_the_plugin_contract(tmp_path):
    pkg = tmp_path / "src/sopflow_badplugin"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("from sopflow.engine.customers import ingest  # noqa\n")
    config = tmp_path / ".importlinter"
    config.write_text(
        (ROOT / ".importlinter")
        .read_text()
        .replace("    sopflow_hello\n", "    sopflow_hello\n    sopflow_badplugin\n", 2)
    )
    result = lint(config, tmp_path / "src")
    assert result.returncode != 0
    assert "import only sopflow_sdk" in result.stdout and "BROKEN" in result.stdout
    assert "sopflow_badplugin -> sopflow" in result.stdout
