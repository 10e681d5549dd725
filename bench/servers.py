"""Throw-away servers and processes for the scenarios that need more than one
process: a private ``redis-server``, sopflow CLI processes (``up``, ``serve``,
``worker``, ``scheduler``) and any other command.

Everything listens on 127.0.0.1 only and is stopped by its PID when the
``with`` block ends (also on errors); every wait is bounded in time.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, every: float = 0.05) -> None:
    """Poll ``predicate`` until true; ``TimeoutError`` after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() > end:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


class Proc:
    """A child process started by this module; its output goes to ``log``."""

    def __init__(
        self, name: str, popen: subprocess.Popen[bytes], log: Path, handle: IO[bytes], group: bool = False
    ) -> None:
        self.name = name
        self.popen = popen
        self.log = log
        self._handle = handle
        self.group = group  # started in its own session: signals go to its process group

    def _signal(self, sig: int) -> None:
        if self.group:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)  # the group this process leads (its forked children)
        elif self.alive():
            os.kill(self.popen.pid, sig)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill9(self) -> None:
        """SIGKILL this process (by its PID) and reap it."""
        self._signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds."""
        if self.alive():
            self._signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.popen.wait(timeout=10)
        if self.group:  # children that outlived their parent
            self._signal(signal.SIGKILL)
        self._handle.close()

    def tail(self, chars: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class Procs:
    """The processes of one scenario run: started here, all stopped by PID in ``close``."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.all: list[Proc] = []

    def start(
        self, name: str, argv: Sequence[str], env: dict[str, str], cwd: Path = ROOT, group: bool = False
    ) -> Proc:
        """Start ``argv``; with ``group`` in a new session, so stopping it also stops the
        processes it forks (e.g. the ``dramatiq`` CLI's worker processes)."""
        log = self.logdir / f"{name}.log"
        handle = open(log, "ab")  # noqa: SIM115 - closed in Proc.stop
        popen = subprocess.Popen(
            list(argv), env=env, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT, start_new_session=group
        )
        proc = Proc(name, popen, log, handle, group)
        self.all.append(proc)
        return proc

    def sopflow(self, command: str, env: dict[str, str], *args: str, name: str | None = None) -> Proc:
        """``python -m sopflow.cli <command> <args>`` with ``env`` (the current interpreter)."""
        return self.start(name or command, [sys.executable, "-m", "sopflow.cli", command, *args], env)

    def logs(self, chars: int = 1500) -> str:
        return "\n".join(f"--- {p.name} (pid {p.pid}) ---\n{p.tail(chars)}" for p in self.all)

    def close(self) -> None:
        for proc in reversed(self.all):
            with contextlib.suppress(Exception):
                proc.stop()


@contextlib.contextmanager
def processes(prefix: str = "sopflow-bench-procs-") -> Iterator[Procs]:
    """A log directory and a process list; every process still running is stopped at the end."""
    logdir = Path(tempfile.mkdtemp(prefix=prefix))
    procs = Procs(logdir)
    try:
        yield procs
    finally:
        procs.close()
        shutil.rmtree(logdir, ignore_errors=True)


@contextlib.contextmanager
def redis_server(timeout: float = 10.0) -> Iterator[str]:
    """A private ``redis-server`` on 127.0.0.1 (no persistence); yields its URL (db 0).

    Installed by ``scripts/services.sh`` (Debian package ``redis-server``)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed; run scripts/services.sh start once")
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="sopflow-bench-redis-"))
    log = open(workdir / "redis.log", "ab")  # noqa: SIM115 - closed below
    argv = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    argv += ["--dir", str(workdir)]
    popen = subprocess.Popen(
        argv,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        import redis

        client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5)

        def up() -> bool:
            if popen.poll() is not None:
                raise RuntimeError(f"redis-server exited: {(workdir / 'redis.log').read_text()[-500:]}")
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        wait_until(up, timeout, "redis-server to answer PING")
        client.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        if popen.poll() is None:
            popen.terminate()
            try:
                popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait(timeout=5)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


def sopflow_env(database_url: str, data_dir: Path, **extra: Any) -> dict[str, str]:
    """The environment of a sopflow CLI process on ``database_url`` with the system clock,
    no plugins but the built-ins, quiet logs; ``extra`` adds ``SOPFLOW_*`` settings
    (keyword ``redis_url`` → ``SOPFLOW_REDIS_URL``)."""
    from sopflow_sdk.testing.harness import TEST_SECRET_KEY

    env = {
        **os.environ,
        "SOPFLOW_DATABASE_URL": database_url,
        "SOPFLOW_SECRET_KEY": TEST_SECRET_KEY,
        "SOPFLOW_CLOCK": "system",
        "SOPFLOW_PLUGINS": "",
        "SOPFLOW_DATA_DIR": str(data_dir),
        "SOPFLOW_LOG_LEVEL": "ERROR",
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
    }
    for key, value in extra.items():
        if value is not None:
            env[f"SOPFLOW_{key.upper()}"] = str(value)
    return env
