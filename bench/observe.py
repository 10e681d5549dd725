"""What the process scenarios (S10, S13) observe from outside the engine: the
resident memory of a process (``VmRSS`` in /proc), Redis ``used_memory``, and
a webhook receiver on 127.0.0.1 that records every delivery by its
``Idempotency-Key``.  The servers and processes themselves come from
``bench/servers.py``."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def rss_kib(pid: int) -> int:
    """VmRSS of a process in KiB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    """Direct child PIDs of ``pid``."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            out += [int(x) for x in (task / "children").read_text().split()]
    return out


def sample_rss(pids: dict[str, int], seconds: float, every: float = 0.25) -> dict[str, int]:
    """The highest VmRSS (KiB) of each process over ``seconds``."""
    peak = dict.fromkeys(pids, 0)
    for _ in range(max(1, round(seconds / every))):
        for name, pid in pids.items():
            peak[name] = max(peak[name], rss_kib(pid))
        time.sleep(every)
    return peak


def redis_used_memory(url: str) -> int:
    import redis

    client = redis.Redis.from_url(url)
    try:
        return int(client.info("memory")["used_memory"])
    finally:
        client.close()


class Receiver:
    """The webhook action's receiver on 127.0.0.1: every call is kept as
    (Idempotency-Key, ``time.perf_counter()``); it answers 200 after ``delay``
    seconds (a simulated provider call).  Any path is accepted."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[tuple[str, float]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if delay:
                    time.sleep(delay)
                with receiver.lock:
                    receiver.calls.append((self.headers.get("Idempotency-Key") or "", time.perf_counter()))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return self.url_for("deliver")

    def url_for(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{path}"

    def snapshot(self) -> list[tuple[str, float]]:
        with self.lock:
            return list(self.calls)

    def keys(self) -> Counter[str]:
        return Counter(k for k, _ in self.snapshot())

    def first_after(self, t: float) -> float | None:
        return min((at for _, at in self.snapshot() if at >= t), default=None)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
