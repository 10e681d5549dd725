"""The ``sopflow`` command, run as a real subprocess (``python -m sopflow.cli``,
the same ``main`` the ``sopflow`` console script calls).

Every run gets its own ``SOPFLOW_DATA_DIR`` and none of the caller's
``SOPFLOW_*`` variables, so nothing touches ``~/.local/share/sopflow``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

BACKEND = os.environ.get("SOPFLOW_TEST_BACKEND", "sqlite")
SECRET = "cli-test-secret-key-0123456789"
KEY_LINE = re.compile(r"admin API key \(shown once[^)]*\): (\S+)")


def clean_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPFLOW_")}
    env.update(SOPFLOW_DATA_DIR=str(data_dir), SOPFLOW_LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def sopflow(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sopflow.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def database_url(empty_url: str) -> str:
    """A fresh, empty database (``empty_url`` in tests/conftest.py)."""
    return empty_url


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "sopflow"
    assert script.exists(), "the `sopflow` entry point is missing; run `uv sync --all-packages`"
    r = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for command in ("up", "serve", "worker", "scheduler", "migrate", "tenants", "plugins"):
        assert re.search(rf"^\s+{command}\s", r.stdout, re.M), f"`sopflow {command}` missing from --help"


def test_migrate_on_a_fresh_database(tmp_path: Path, database_url: str) -> None:
    from sopflow.models import metadata

    env = clean_env(tmp_path, SOPFLOW_DATABASE_URL=database_url, SOPFLOW_SECRET_KEY=SECRET)
    r = sopflow("migrate", env=env)
    assert r.returncode == 0, r.stderr
    assert "database is up to date" in r.stdout
    engine = sa.create_engine(database_url)
    try:
        tables = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {t.name for t in metadata.sorted_tables} | {"alembic_version"} <= tables
    again = sopflow("migrate", env=env)  # idempotent
    assert again.returncode == 0, again.stderr


def test_migrate_embedded_creates_the_sqlite_file_in_the_data_dir(tmp_path: Path) -> None:
    r = sopflow("migrate", "--embedded", env=clean_env(tmp_path))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "sopflow.db").exists()
    key = tmp_path / "secret.key"
    assert key.exists() and oct(key.stat().st_mode & 0o777) == "0o600"


def test_tenants_create_prints_a_key_that_authenticates(tmp_path: Path, database_url: str) -> None:
    from litestar.testing import TestClient
    from sopflow.api.app import build_api
    from sopflow_sdk.testing.harness import make_test_app

    env = clean_env(tmp_path, SOPFLOW_DATABASE_URL=database_url, SOPFLOW_SECRET_KEY=SECRET)
    r = sopflow("tenants", "create", "acme", "--timezone", "Europe/Berlin", env=env)
    assert r.returncode == 0, r.stderr
    assert "tenant 'acme'" in r.stdout
    match = KEY_LINE.search(r.stdout)
    assert match, r.stdout
    key = match.group(1)
    app = make_test_app(database_url, env={"SOPFLOW_SECRET_KEY": SECRET})
    try:
        with TestClient(build_api(app)) as client:
            me = client.get("/api/v1/tenants/current", headers={"authorization": f"Bearer {key}"})
            assert me.status_code == 200, me.text
            assert me.json()["name"] == "acme" and me.json()["timezone"] == "Europe/Berlin"
            # an admin key: it can write too
            field = client.post(
                "/api/v1/fields",
                json={"key": "order_count", "type": "number"},
                headers={"authorization": f"Bearer {key}"},
            )
            assert field.status_code == 201, field.text
            wrong = client.get("/api/v1/tenants/current", headers={"authorization": f"Bearer {key}x"})
            assert wrong.status_code == 401
    finally:
        app.dispose()
    # a second tenant of the same name is refused with a message, not a traceback
    dup = sopflow("tenants", "create", "acme", env=env)
    assert dup.returncode != 0 and "Traceback" not in dup.stderr, dup.stderr
    assert dup.stderr.startswith("Error:") and "already exists" in dup.stderr, dup.stderr


def test_tenants_create_with_a_bad_timezone_is_refused_cleanly(tmp_path: Path) -> None:
    r = sopflow("tenants", "create", "acme", "--timezone", "Mars/Olympus", env=clean_env(tmp_path))
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert "Mars/Olympus" in r.stderr, r.stderr


def test_plugins_json_lists_built_ins_and_wecom(tmp_path: Path) -> None:
    r = sopflow("plugins", "--json", env=clean_env(tmp_path))
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    for builtin in ("default_fields", "default_triggers", "default_channels"):
        assert rows[builtin]["default"] is True and rows[builtin]["distribution"] is None
        assert rows[builtin]["hooks"], builtin
    assert rows["wecom"]["default"] is False
    assert rows["wecom"]["distribution"] == "sopflow-wecom"
    assert {"register_channels", "register_routes"} <= set(rows["wecom"]["hooks"])
    table = sopflow("plugins", env=clean_env(tmp_path))
    assert table.returncode == 0, table.stderr
    assert "wecom" in table.stdout and "(built-in)" in table.stdout


def test_plugins_respects_the_enable_list(tmp_path: Path) -> None:
    r = sopflow("plugins", "--json", env=clean_env(tmp_path, SOPFLOW_PLUGINS=""))
    assert r.returncode == 0, r.stderr
    assert "wecom" not in {row["name"] for row in json.loads(r.stdout)}
    bad = sopflow("plugins", env=clean_env(tmp_path, SOPFLOW_PLUGINS="nosuch"))
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "nosuch" in bad.stderr and "install" in bad.stderr


def test_plain_environment_has_the_demo_command_and_not_the_hello_example(tmp_path: Path) -> None:
    """Installed plugins load unless SOPFLOW_PLUGINS says otherwise; the hello
    example is installed too, but opt-in."""
    rows = {
        row["name"]: row for row in json.loads(sopflow("plugins", "--json", env=clean_env(tmp_path)).stdout)
    }
    assert "hello" not in rows
    assert rows["demo"]["distribution"] == "sopflow-demo" and rows["demo"]["hooks"] == ["register_commands"]
    assert re.search(r"^\s+demo\s", sopflow("--help", env=clean_env(tmp_path)).stdout, re.M)
    named = sopflow("plugins", "--json", env=clean_env(tmp_path, SOPFLOW_PLUGINS="hello"))
    assert named.returncode == 0, named.stderr
    assert {row["name"] for row in json.loads(named.stdout)} >= {"hello"}


BAD_SETTINGS = [
    # (command, extra env, variable, words of the fix)
    (["migrate", "--embedded"], {"SOPFLOW_CLOCK": "bogus"}, "SOPFLOW_CLOCK", ["'system'", "'manual'"]),
    (["up"], {"SOPFLOW_PORT": "abc"}, "SOPFLOW_PORT", ["'abc'", "positive integer"]),
    (["plugins"], {"SOPFLOW_TIMEZONE": "Mars/Olympus"}, "SOPFLOW_TIMEZONE", ["IANA"]),
    (
        ["migrate"],
        {"SOPFLOW_DATABASE_URL": "sqlite:///{tmp}/x.db"},
        "SOPFLOW_SECRET_KEY",
        ["not set", "secrets.token_urlsafe"],
    ),
    (["serve"], {}, "SOPFLOW_DATABASE_URL", ["postgresql+psycopg://", "sqlite:///"]),
    (
        ["worker"],
        {"SOPFLOW_DATABASE_URL": "mysql://db", "SOPFLOW_SECRET_KEY": SECRET},
        "SOPFLOW_DATABASE_URL",
        ["sqlite://", "postgresql+psycopg://"],
    ),
    (
        ["scheduler"],
        {"SOPFLOW_DATABASE_URL": "sqlite:///{tmp}/x.db", "SOPFLOW_SECRET_KEY": "short"},
        "SOPFLOW_SECRET_KEY",
        ["at least 16 characters"],
    ),
    (["migrate", "--embedded"], {"SOPFLOW_LOG_FORMAT": "xml"}, "SOPFLOW_LOG_FORMAT", ["'json'", "'console'"]),
]


@pytest.mark.parametrize(
    ("args", "extra", "variable", "fix"), BAD_SETTINGS, ids=[f"{a[0]}-{v}" for a, _, v, _ in BAD_SETTINGS]
)
def test_a_bad_setting_exits_non_zero_naming_the_variable_and_the_fix(
    tmp_path: Path, args: list[str], extra: dict[str, str], variable: str, fix: list[str]
) -> None:
    env = clean_env(tmp_path, **{k: v.replace("{tmp}", str(tmp_path)) for k, v in extra.items()})
    r = sopflow(*args, env=env, timeout=60)
    assert r.returncode != 0, f"exit 0 despite a bad {variable}: {r.stdout}"
    assert "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith("Error:"), r.stderr
    assert variable in r.stderr, r.stderr
    for words in fix:
        assert words in r.stderr, f"the message should say how to fix {variable}: {r.stderr}"
    assert not (tmp_path / "x.db").exists(), "nothing is created when the settings are bad"


def test_worker_without_redis_says_what_to_do(tmp_path: Path) -> None:
    env = clean_env(
        tmp_path, SOPFLOW_DATABASE_URL=f"sqlite:///{tmp_path / 'w.db'}", SOPFLOW_SECRET_KEY=SECRET
    )
    r = sopflow("worker", env=env, timeout=60)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "SOPFLOW_REDIS_URL" in r.stderr and "sopflow up" in r.stderr


def test_an_unreachable_database_is_reported_without_a_traceback(tmp_path: Path) -> None:
    env = clean_env(
        tmp_path,
        SOPFLOW_DATABASE_URL=f"sqlite:///{tmp_path}/no/such/dir/x.db",
        SOPFLOW_SECRET_KEY=SECRET,
    )
    r = sopflow("migrate", env=env, timeout=60)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr, r.stderr[-500:]
    assert "SOPFLOW_DATABASE_URL" in r.stderr and "directory exists" in r.stderr
    refused = clean_env(
        tmp_path,
        SOPFLOW_DATABASE_URL=f"postgresql+psycopg://u:hunter2secret@127.0.0.1:{free_port()}/x",
        SOPFLOW_SECRET_KEY=SECRET,
    )
    r = sopflow("migrate", env=refused, timeout=60)
    assert r.returncode != 0 and "Traceback" not in r.stderr and "SOPFLOW_DATABASE_URL" in r.stderr
    assert "hunter2secret" not in r.stderr + r.stdout  # the password never reaches the output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def test_up_serves_health_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    out, err = tmp_path / "up.out", tmp_path / "up.err"
    env = clean_env(tmp_path, SOPFLOW_PLUGINS="")
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sopflow.cli", "up", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=stdout,
            stderr=stderr,
        )
    try:
        health: Any = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"`sopflow up` exited early ({proc.returncode}): {read(err)}"
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert health is not None, f"no answer on /health within 30 s; stderr: {read(err)}"
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "database": "ok", "clock": "system"}
        # the first start on a fresh data dir creates a tenant and prints its key once
        match = KEY_LINE.search(read(out))
        assert match, read(out)
        me = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/tenants/current",
            headers={"authorization": f"Bearer {match.group(1)}"},
            timeout=5,
        )
        assert me.status_code == 200 and me.json()["name"] == "default", me.text
        assert (tmp_path / "sopflow.db").exists()
        assert "broker in-memory" in read(out)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
            pytest.fail(f"`sopflow up` ignored SIGTERM for 20 s; stderr: {read(err)}")
    # uvicorn shuts down gracefully, then re-raises the SIGTERM to sopflow's own
    # handler, which exits through the scheduler's and worker's clean-up
    assert code == 0, f"exit {code}; stderr: {read(err)}"
    assert "scheduler and worker stopped" in read(out)
    assert "Traceback" not in read(err), read(err)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)


def test_up_on_a_taken_port_says_so_and_starts_nothing(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        env = clean_env(tmp_path, SOPFLOW_PLUGINS="")
        r = sopflow("up", "--host", "127.0.0.1", "--port", str(port), env=env, timeout=60)
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr[-800:]
    assert f"127.0.0.1:{port}" in r.stderr and "--port" in r.stderr
    assert "API on" not in r.stdout and "sopflow up: database" not in r.stdout  # nothing was started


def test_a_second_up_says_how_to_get_a_key(sopflow_app: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from sopflow.cli import _ensure_first_tenant
    from sopflow_sdk.testing.harness import new_tenant

    _ensure_first_tenant(sopflow_app)
    first = capsys.readouterr().out
    assert "created tenant 'default'; admin API key (shown once): sfk_" in first
    new_tenant(sopflow_app, "acme")
    _ensure_first_tenant(sopflow_app)
    again = capsys.readouterr().out
    assert "sfk_" not in again  # a key is shown once, never again
    assert "sopflow tenants create NAME" in again and "POST /api/v1/api-keys" in again


def test_journeys_sync_places_customers_with_a_progress_bar(tmp_path: Path, database_url: str) -> None:
    from litestar.testing import TestClient
    from sopflow.api.app import build_api
    from sopflow_sdk.testing.harness import make_test_app, new_tenant

    env = clean_env(tmp_path, SOPFLOW_DATABASE_URL=database_url, SOPFLOW_SECRET_KEY=SECRET)
    assert sopflow("migrate", env=env).returncode == 0
    app = make_test_app(database_url, env={"SOPFLOW_SECRET_KEY": SECRET})
    try:
        _, key = new_tenant(app, "acme")
        auth = {"authorization": f"Bearer {key}"}
        with TestClient(build_api(app)) as client:
            for i in range(7):
                r = client.post(
                    "/api/v1/customers",
                    json={"display_name": f"c{i}", "tags": ["vip"] if i % 2 else []},
                    headers=auth,
                )
                assert r.status_code == 201, r.text
            body = {
                "name": "j",
                "stages": [{"name": "vip", "rules": [{"conditions": [{"tags": {"any_of": ["vip"]}}]}]}],
            }
            journey = client.post("/api/v1/journeys", json=body, headers=auth).json()
            assert client.post(f"/api/v1/journeys/{journey['id']}/start", headers=auth).status_code == 200
    finally:
        app.dispose()
    r = sopflow("journeys", "sync", str(journey["id"]), "--batch", "3", env=env)
    assert r.returncode == 0, r.stderr
    assert "checked 7 customers, moved 3" in r.stdout and "placing customers" in r.stdout
    missing = sopflow("journeys", "sync", "999", env=env)
    assert (
        missing.returncode != 0 and "no journey 999" in missing.stderr and "Traceback" not in missing.stderr
    )


def test_a_log_line_is_one_write_so_no_other_output_splits_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """`sopflow up` printed a JSON log line and its own status line on one line:
    the logger wrote the newline separately, and the other thread's text landed between."""
    import io

    from sopflow.logging import configure_logging, get_logger

    class Recorder(io.StringIO):
        def __init__(self) -> None:
            super().__init__()
            self.writes: list[str] = []

        def write(self, text: str) -> int:
            self.writes.append(text)
            return super().write(text)

    err = Recorder()
    monkeypatch.setattr(sys, "stderr", err)
    configure_logging("INFO", "json")
    get_logger("sopflow.test").info("scheduler_started", interval=1.0)
    [line] = err.writes
    assert line.endswith("\n") and json.loads(line)["event"] == "scheduler_started"
