"""``sopflow plugin new``: each kind renders a distribution whose own tests pass.

The slow tests generate a plugin into a temporary directory, install it
(editable, through its own pyproject and so its own ``sopflow`` entry point)
into a throwaway virtual environment layered over this workspace's packages,
and run its tests there in a subprocess; the workspace's environment is not
touched.  The fast ones check what is rendered and the command's refusals.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from click.testing import CliRunner
from sopflow.cli import main
from sopflow.plugin_new import MAX_NAME, render

KINDS = ("channel", "trigger", "crm")
LONGEST = "abcdefghij-abcdefghij-abcdefgh"
assert len(LONGEST) == MAX_NAME

COMMON = {
    ".copier-answers.yml",
    ".gitignore",
    "README.md",
    "pyproject.toml",
    "src/sopflow_acme/__init__.py",
    "src/sopflow_acme/plugin.py",
    "tests/test_plugin.py",
}
FILES = {
    "channel": {
        "src/sopflow_acme/channel.py",
        "src/sopflow_acme/provider.py",
        "tests/test_channel.py",
        "tests/test_channel_conformance.py",
    },
    "trigger": {"src/sopflow_acme/webhook.py", "tests/test_webhook.py"},
    "crm": {"src/sopflow_acme/crm.py", "src/sopflow_acme/sync.py", "tests/test_sync.py"},
}
# The conformance checks that do not apply to the generated channel, and why.
# Any other skip fails the test: it would be a check the template dodges.
EXPECTED_SKIPS = {
    "channel": {
        "needs_staff_confirmation=False: nothing to poll",
        "no `inbound` fixture: the channel verifies no inbound requests",
    },
    "trigger": set(),
    "crm": set(),
}


def files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def new(*args: str) -> object:
    return CliRunner().invoke(main, ["plugin", "new", *args])


@pytest.mark.parametrize("kind", KINDS)
def test_renders_exactly_the_files_of_its_kind(tmp_path, kind):
    result = new("acme", "--kind", kind, "--output-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    root = tmp_path / "sopflow-acme"
    assert files(root) == COMMON | FILES[kind]
    pyproject = (root / "pyproject.toml").read_text()
    assert '[project.entry-points.sopflow]\nacme = "sopflow_acme.plugin"' in pyproject
    assert 'dependencies = ["sopflow-sdk"]' in pyproject
    assert f"kind: {kind}" in (root / ".copier-answers.yml").read_text()


@pytest.mark.parametrize("kind", KINDS)
def test_generated_code_imports_only_the_sdk_from_sopflow(tmp_path, kind):
    root = render("acme", kind, tmp_path / "acme")
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                assert not top.startswith("sopflow") or top in ("sopflow_sdk", "sopflow_acme"), (
                    f"{path.relative_to(root)} imports {name}"
                )


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ["sms", "x_y", LONGEST])
def test_generated_code_is_ruff_clean_for_any_name_length(tmp_path, kind, name):
    root = render(name, kind, tmp_path / "out")
    for args in (["check", "--no-cache", "."], ["format", "--no-cache", "--check", "."]):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *args], cwd=root, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("name", "fix"),
    [
        ("Acme", "lowercase letters"),
        ("acme--crm", "single hyphens"),
        ("9lives", "starting with a letter"),
        ("x" * (MAX_NAME + 1), f"at most {MAX_NAME} characters"),
        ("sopflow-sms", "without the 'sopflow-' prefix (sopflow plugin new sms"),
    ],
)
def test_a_bad_name_is_refused_with_the_fix_and_writes_nothing(tmp_path, name, fix):
    result = new(name, "--kind", "channel", "--output-dir", str(tmp_path))
    assert result.exit_code == 2
    assert "Invalid value for NAME" in result.output and fix in result.output, result.output
    assert list(tmp_path.iterdir()) == []


def test_an_existing_target_is_refused_and_left_alone(tmp_path):
    target = tmp_path / "sopflow-acme"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    result = new("acme", "--kind", "crm", "--output-dir", str(tmp_path))
    assert result.exit_code == 2
    assert "Invalid value for --output-dir" in result.output, result.output
    assert "already exists; choose another NAME or --output-dir, or remove it first" in result.output
    assert files(target) == {"notes.txt"}


def test_the_kind_is_required_and_checked(tmp_path):
    missing = new("acme", "--output-dir", str(tmp_path))
    assert missing.exit_code == 2 and "Missing option '--kind'" in missing.output
    wrong = new("acme", "--kind", "action", "--output-dir", str(tmp_path))
    assert wrong.exit_code == 2 and "'channel', 'trigger', 'crm'" in wrong.output
    assert list(tmp_path.iterdir()) == []


# -- the generated distributions' own tests, installed for real ------------------------------


def _uv() -> str:
    uv = shutil.which("uv")
    assert uv, "uv is needed to install the generated plugin (scripts/_bootstrap.sh installs it)"
    return uv


@pytest.fixture(scope="module")
def overlay(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway venv that sees this workspace's packages (sopflow, the SDK, pytest)
    through a ``.pth`` file, so installing a generated plugin into it is cheap."""
    venv = tmp_path_factory.mktemp("overlay") / "venv"
    subprocess.run([_uv(), "venv", "-q", str(venv), "--python", sys.executable], check=True)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    workspace_site = sysconfig.get_paths()["purelib"]
    Path(site, "_sopflow_workspace.pth").write_text(f"import site; site.addsitedir({workspace_site!r})\n")
    return python


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_a_generated_plugin_passes_its_own_tests(tmp_path, overlay, kind):
    name = f"acme-{kind}"
    result = new(name, "--kind", kind, "--output-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    root = tmp_path / f"sopflow-{name}"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    subprocess.run(
        [_uv(), "pip", "install", "-q", "--python", str(overlay), "--no-deps", "-e", str(root)],
        check=True,
        env=env,
        timeout=300,
    )
    # Only the SDK's pytest plugin, as in an author's environment (not this
    # workspace's hypothesis, schemathesis, ...): cheaper to start, and truer.
    pytest_args = ["-q", "-rs", "-p", "no:cacheprovider", "-p", "sopflow_sdk.testing.fixtures"]
    done = subprocess.run(
        [str(overlay), "-m", "pytest", *pytest_args, "-W", "ignore::DeprecationWarning"],
        cwd=root,
        env={**env, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    summary = output.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary) and "failed" not in summary and "error" not in summary, summary
    skips = set(re.findall(r"^SKIPPED \[\d+\] [^:]+:\d+: (.*)$", output, re.M))
    assert skips == EXPECTED_SKIPS[kind], output
