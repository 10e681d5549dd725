"""A private Redis and a private Postgres cluster that a fault scenario may kill.

Never the shared test services: each server here is started on a free port on
127.0.0.1 in a temporary directory, killed and restarted by its own PID, and
stopped when the ``with`` block ends.  Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.servers import free_port, wait_until


class RedisProcess:
    """``redis-server`` without persistence, or with an append-only file."""

    def __init__(self, workdir: Path, aof: bool) -> None:
        self.workdir, self.aof, self.port = workdir, aof, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always"] if self.aof else ["--appendonly", "no"]
        )
        log = open(self.workdir / "redis.log", "ab")  # noqa: SIM115 - closed with the process
        self.popen = subprocess.Popen(
            [
                *("redis-server", "--bind", "127.0.0.1", "--port", str(self.port)),
                *("--save", "", "--dir", str(self.workdir), *persistence),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self.ping, 10, "redis-server to answer")

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.url, socket_timeout=0.5).ping())
        except redis.exceptions.RedisError:
            return False

    def kill9(self) -> None:
        if self.popen is not None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(10)
            self.popen = None

    def stop(self) -> None:
        if self.popen is not None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.kill9()
            self.popen = None


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found and shutil.which("initdb"):
        return Path(shutil.which("initdb") or "").parent
    if not found:
        raise RuntimeError("no initdb: install the postgresql package (scripts/services.sh does)")
    return Path(found[-1]).parent


class PostgresCluster:
    """A throw-away cluster (initdb, trust auth) owned by ``postgres`` when run as root."""

    def __init__(self, workdir: Path) -> None:
        self.bin = _pg_bin()
        self.data = workdir / "pg"
        self.port = free_port()
        self.url = f"postgresql+psycopg://sopflow@127.0.0.1:{self.port}/postgres"
        self.owner = "postgres" if os.geteuid() == 0 else None
        self.workdir = workdir

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        cmd = [str(a) for a in args]
        if self.owner:
            cmd = ["su", self.owner, "-s", "/bin/sh", "-c", " ".join(f"'{c}'" for c in cmd)]
        return subprocess.run(cmd, check=check, capture_output=True, timeout=120)

    def init(self) -> None:
        self.data.mkdir(parents=True)
        if self.owner:
            shutil.chown(self.workdir, self.owner)
            shutil.chown(self.data, self.owner)
        self._run(self.bin / "initdb", "-D", self.data, "-U", "sopflow", "--auth=trust", "-E", "UTF8")

    def start(self, timeout: float = 60) -> None:
        opts = f"-h 127.0.0.1 -p {self.port} -k {self.workdir} -c fsync=off -c max_connections=100"
        end = time.monotonic() + timeout
        while True:  # after a kill -9 the old shared memory may linger a moment
            done = self._run(
                self.bin / "pg_ctl",
                "-D",
                self.data,
                "-l",
                self.workdir / "pg.log",
                "-w",
                "-o",
                opts,
                "start",
                check=False,
            )
            if done.returncode == 0:
                return
            if time.monotonic() > end:
                raise RuntimeError(f"postgres did not start: {done.stderr.decode()[-500:]}")
            time.sleep(0.5)

    def stop_fast(self) -> None:
        self._run(self.bin / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop", check=False)

    def kill9(self) -> None:
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not _alive(pid), 10, "the postmaster to die")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._run(self.bin / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop", check=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextlib.contextmanager
def fault_servers(aof: bool = False) -> Iterator[tuple[RedisProcess, PostgresCluster]]:
    """A private Redis (``aof``: with an append-only file) and Postgres, stopped at the end."""
    workdir = Path(tempfile.mkdtemp(prefix="sopflow-faults-"))
    workdir.chmod(0o755)  # the cluster's owner (``postgres`` under root) must reach its directory
    redis_proc = RedisProcess(workdir / "redis", aof)
    (workdir / "redis").mkdir()
    cluster = PostgresCluster(workdir / "pgroot")
    (workdir / "pgroot").mkdir()
    try:
        cluster.init()
        cluster.start()
        redis_proc.start()
        yield redis_proc, cluster
    finally:
        redis_proc.stop()
        cluster.close()
        shutil.rmtree(workdir, ignore_errors=True)
