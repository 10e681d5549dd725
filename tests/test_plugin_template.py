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
    output = run_own_tests(tmp_path / f"sopflow-{name}", overlay)
    skips = set(re.findall(r"^SKIPPED \[\d+\] [^:]+:\d+: (.*)$", output, re.M))
    assert skips == EXPECTED_SKIPS[kind], output


#: What the author adds to the generated conformance class: an address to send to.
MAIL_CONFORMANCE = """
    @pytest.fixture
    def recipient(self):
        return {"external_id": "ada@example.com"}

    def test_the_message_goes_to_the_address_with_the_default_subject(self, outbound_message):
        assert outbound_message.recipient == {"external_id": "ada@example.com"}
        assert outbound_message.params == {"subject": "Hello from ACME"}
"""

MAIL_TESTS = '''"""What the author of an e-mail channel adds: a subject per step, an address."""

from datetime import timedelta

import pytest
from sopflow_sdk.testing import run_due
PLUGIN = "acme_mail"


@pytest.fixture
def sopflow_env():
    return {"SOPFLOW_PLUGINS": PLUGIN}


def test_the_subject_is_checked_at_save_and_the_step_goes_out_a_day_later(api):
    account = {"channel": PLUGIN, "name": "m", "config": {"sender": "ACME"}, "secrets": {"api_key": "k"}}
    assert api.post("/api/v1/channel-accounts", json=account).status_code == 201
    bad = {"type": "send", "channel": PLUGIN, "text": "hi", "subject": "x" * 201, "colour": "red"}
    r = api.post("/api/v1/sops", json={"name": "bad", "definition": {"kind": "new_customer", "steps": [
        {"delay": "1d", "actions": [bad]}]}})
    assert r.status_code == 422
    found = {e["field"]: e["message"] for e in r.json()["errors"]}
    assert "accepted: subject" in found["definition.steps[0].actions[0].colour"]
    assert "definition.steps[0].actions[0].subject" in found
    send = {"type": "send", "channel": PLUGIN, "text": "hi", "subject": "Spring sale"}
    r = api.post("/api/v1/sops", json={"name": "ok", "definition": {"kind": "new_customer", "steps": [
        {"delay": "1d", "actions": [send]}]}})
    assert r.status_code == 201, r.text
    assert api.post(f"/api/v1/sops/{r.json()['id']}/start").status_code == 200
    event = {"type": "customer.added", "idempotency_key": "a1",
             "identity": {"channel": PLUGIN, "external_id": "ada@example.com"}}
    assert api.post("/api/v1/events", json={"events": [event]}).status_code == 200
    run_due(api, by=timedelta(hours=23))
    assert api.get("/api/v1/touches", params={"status": "sent"}).json()["items"] == []
    run_due(api, by=timedelta(hours=1))
    assert len(api.get("/api/v1/touches", params={"status": "sent"}).json()["items"]) == 1
'''


@pytest.mark.slow
def test_an_email_style_channel_from_the_template_passes_its_tests_in_its_own_venv(tmp_path, overlay):
    """The author's path: generate a channel, declare a subject parameter (the
    settings schema comes with the template), give the suite an e-mail address,
    and test a delayed step through the kit alone."""
    result = new("acme-mail", "--kind", "channel", "--output-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    root = tmp_path / "sopflow-acme-mail"
    channel = root / "src" / "sopflow_acme_mail" / "channel.py"
    source = channel.read_text(encoding="utf-8")
    assert "STEP_PARAMS = SettingsSchema()" in source
    channel.write_text(
        source.replace(
            "STEP_PARAMS = SettingsSchema()",
            'STEP_PARAMS = SettingsSchema(Setting("subject", max_length=200, default="Hello from ACME"))',
        ),
        encoding="utf-8",
    )
    (root / "tests" / "test_mail.py").write_text(MAIL_TESTS, encoding="utf-8")
    conformance = root / "tests" / "test_channel_conformance.py"
    suite, found = re.subn(
        r"^(class Test\w+\(ChannelConformance\):\n)",
        lambda m: m.group(1) + MAIL_CONFORMANCE,
        conformance.read_text(encoding="utf-8"),
        flags=re.M,
    )
    assert found == 1
    conformance.write_text(suite, encoding="utf-8")
    output = run_own_tests(root, overlay)
    assert re.search(r"\b[3-9]\d passed", output), output
    skips = set(re.findall(r"^SKIPPED \[\d+\] [^:]+:\d+: (.*)$", output, re.M))
    assert skips == EXPECTED_SKIPS["channel"], output


def run_own_tests(root: Path, overlay: Path) -> str:
    """Install the generated distribution into the overlay venv and run its tests there."""
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
    return output


@pytest.mark.slow
def test_a_plugin_in_its_own_repository_tests_against_the_built_wheels(tmp_path):
    """Nothing of this checkout: sopflow and the SDK built as wheels, installed with
    the SDK's ``testing`` extra into the generated project's own venv (everything
    else from the package index), and the project's own tests pass there."""
    workspace = Path(__file__).resolve().parents[1]
    wheels = tmp_path / "wheels"
    for package in ("core", "sdk"):
        subprocess.run(
            [_uv(), "build", "-q", "--wheel", "--out-dir", str(wheels), str(workspace / package)],
            check=True,
            timeout=300,
        )
    core_wheel = next(wheels.glob("sopflow-*.whl"))
    sdk_wheel = next(wheels.glob("sopflow_sdk-*.whl"))
    result = new("acme-standalone", "--kind", "channel", "--output-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    root = tmp_path / "sopflow-acme-standalone"
    venv = root / ".venv"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    subprocess.run([_uv(), "venv", "-q", str(venv), "--python", sys.executable], check=True, env=env)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    subprocess.run(
        [
            _uv(),
            "pip",
            "install",
            "-q",
            "--python",
            str(python),
            str(core_wheel),
            f"{sdk_wheel}[testing]",
            "-e",
            str(root),
        ],
        check=True,
        env=env,
        timeout=600,
    )
    shown = subprocess.run(
        [str(python), "-c", "import sopflow, sopflow_sdk; print(sopflow.__file__, sopflow_sdk.__file__)"],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    ).stdout
    assert str(workspace) not in shown and str(venv) in shown, shown  # the wheels, not this checkout
    done = subprocess.run(
        [
            str(python),
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "-W",
            "ignore::DeprecationWarning",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    skips = set(re.findall(r"^SKIPPED \[\d+\] [^:]+:\d+: (.*)$", output, re.M))
    assert skips == EXPECTED_SKIPS["channel"], output
