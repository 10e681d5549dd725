"""Dramatiq as a peer: ``dramatiq`` CLI worker processes on a private Redis, a
no-op actor that records ``(key, wall time)`` (see ``dramatiq_worker.py``), and
a producer in this process that uses ``send_with_options`` one message at a time,
as a naive user would."""

from __future__ import annotations

import contextlib
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.peers.stats import first_runs, lateness
from bench.servers import redis_server, wait_until

ROOT = Path(__file__).resolve().parents[2]
DAY_MS = 86_400_000
QUEUE = "bench"
ACTOR = "bench_noop"
READY = b"Worker process is ready for action."


class Records:
    """The workers' record files, read incrementally (complete lines only)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.offsets: dict[Path, int] = {}
        self.records: list[tuple[int, float]] = []
        self.keys: set[int] = set()

    def poll(self) -> int:
        for path in self.out.glob("*.rec"):
            offset = self.offsets.get(path, 0)
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read()
            end = data.rfind(b"\n") + 1
            for line in data[:end].splitlines():
                key, at = line.split()
                self.records.append((int(key), float(at)))
                self.keys.add(int(key))
            self.offsets[path] = offset + end
        return len(self.keys)

    def wait_for(self, wanted: set[int] | int, until: float, every: float = 0.05) -> None:
        """Poll until every wanted key (or that many distinct keys) ran, or the wall time ``until``."""
        for _ in range(1_000_000):
            self.poll()
            done = len(self.keys) >= wanted if isinstance(wanted, int) else wanted <= self.keys
            if done or time.time() > until:
                return
            time.sleep(every)


@contextlib.contextmanager
def _redis(redis_url: str | None) -> Iterator[str]:
    """The given Redis (flushed) or a private one started here."""
    import redis

    with contextlib.ExitStack() as stack:
        url = redis_url or stack.enter_context(redis_server())
        client = redis.Redis.from_url(url)
        client.flushdb()
        client.close()
        yield url


def _stop_group(popen: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGTERM the CLI's process group (its PID: the master and the workers it
    forked), SIGKILL it after ``grace`` seconds."""
    if popen.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):  # a worker the master left behind
        os.killpg(popen.pid, signal.SIGKILL)
    popen.wait(timeout=10)


@contextlib.contextmanager
def workers(
    redis_url: str,
    out: Path,
    processes: int = 2,
    threads: int = 8,
    env: dict[str, str] | None = None,
    ready_timeout: float = 60.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m dramatiq bench.peers.dramatiq_worker -p N -t M`` in its own process
    group; returns once every worker process said it is ready."""
    log = out / "workers.log"
    handle = open(log, "ab")  # noqa: SIM115 - closed below
    argv = [sys.executable, "-m", "dramatiq", "bench.peers.dramatiq_worker"]
    argv += ["--processes", str(processes), "--threads", str(threads), "--path", str(ROOT)]
    popen = subprocess.Popen(
        argv,
        cwd=ROOT,
        env={**os.environ, "BENCH_PEER_REDIS_URL": redis_url, "BENCH_PEER_OUT": str(out), **(env or {})},
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:

        def ready() -> bool:
            if popen.poll() is not None:
                raise RuntimeError(
                    f"dramatiq workers exited: {log.read_bytes()[-1500:].decode(errors='replace')}"
                )
            return log.read_bytes().count(READY) >= processes

        wait_until(ready, ready_timeout, "dramatiq workers to be ready", every=0.1)
        yield popen
    finally:
        _stop_group(popen)
        handle.close()


class Producer:
    """Sends to the workers' no-op actor from this process (no global broker set)."""

    def __init__(self, redis_url: str) -> None:
        import dramatiq
        from dramatiq.brokers.redis import RedisBroker

        def stub(key: int) -> None:  # pragma: no cover - runs in the workers
            pass

        self.broker = RedisBroker(url=redis_url)
        self.actor = dramatiq.actor(
            stub, actor_name=ACTOR, queue_name=QUEUE, max_retries=0, broker=self.broker
        )
        self.calib = dramatiq.actor(
            stub, actor_name="bench_calib", queue_name="bench_calib", broker=self.broker
        )

    def send(self, key: int, delay_ms: int | None = None) -> None:
        self.actor.send_with_options(args=(key,), delay=delay_ms)

    def delayed_rate(self, k: int = 200) -> float:
        """Delayed sends per second, timed on ``k`` messages to a queue no worker consumes."""
        t0 = time.perf_counter()
        for i in range(k):
            self.calib.send_with_options(args=(i,), delay=30 * DAY_MS)
        return k / max(time.perf_counter() - t0, 1e-6)

    def delay_until(self, due: float) -> int:
        """Milliseconds from now to the wall time ``due``, rounded up (never early)."""
        return max(0, math.ceil((due - time.time()) * 1000))

    def close(self) -> None:
        self.broker.close()


def _outdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="sopflow-bench-dramatiq-"))


def dramatiq_delayed(
    n: int,
    due_in_s: float | None = None,
    processes: int = 2,
    threads: int = 8,
    redis_url: str | None = None,
    wait_s: float | None = None,
) -> dict[str, Any]:
    """The naive peer: ``n`` messages sent with ``send_with_options(delay=…)`` so
    that all come due at one wall-clock instant, default worker settings.

    The workers run before the enqueue starts (as in production).  ``due_in_s``
    is the due instant after the start of the enqueue; by default it is
    estimated from a timed sample (2 × the expected enqueue time + 1 s: the
    cores are shared), so the enqueue is over before anything is due
    (``enqueue_overran_s`` says if not).  Lateness is measured from the due instant; ``rate_from_due`` is n ÷
    (last execution − due instant), ``rate`` n ÷ (last − first execution).  The
    wait is bounded by ``wait_s`` after the due instant (default 30 s + n/500 s)."""
    out = _outdir()
    try:
        with _redis(redis_url) as url, workers(url, out, processes, threads):
            producer = Producer(url)
            try:
                lead = due_in_s if due_in_s is not None else max(1.0, 2 * n / producer.delayed_rate() + 1.0)
                start = time.time()
                due = start + lead
                t0 = time.perf_counter()
                for key in range(n):
                    producer.send(key, producer.delay_until(due))
                enqueue_s = time.perf_counter() - t0
            finally:
                producer.close()
            overran = max(0.0, time.time() - due)
            records = Records(out)
            records.wait_for(n, due + (wait_s if wait_s is not None else 30 + n / 500))
            time.sleep(0.3)  # late duplicates
            records.poll()
        return _summary(records, range(n), due, enqueue_s, lead, overran, processes, threads)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _summary(
    records: Records,
    keys: range,
    due: float,
    enqueue_s: float,
    lead: float,
    overran: float,
    processes: int,
    threads: int,
) -> dict[str, Any]:
    first, duplicates = first_runs(r for r in records.records if r[0] in keys)
    offsets = [at - due for at in first.values()]
    ran = len(first)
    last = max(first.values(), default=due)
    begin = min(first.values(), default=due)
    return {
        "n": len(keys),
        "ran": ran,
        "lost": len(keys) - ran,
        "duplicates": duplicates,
        "early": sum(1 for o in offsets if o < 0),
        "lateness": lateness(offsets),
        "enqueue_s": round(enqueue_s, 4),
        "enqueue_rate": round(len(keys) / max(enqueue_s, 1e-9), 1),
        "due_in_s": round(lead, 3),
        "enqueue_overran_s": round(overran, 3),
        "drain_s": round(last - due, 4),
        "span_s": round(last - begin, 4),
        "rate_from_due": round(ran / max(last - due, 1e-9), 1),
        "rate": round(ran / max(last - begin, 1e-9), 1),
        "layout": f"{processes} processes × {threads} threads",
    }


def dramatiq_noop_throughput(
    n: int,
    processes: int = 2,
    threads: int = 8,
    queue_prefetch: int | None = None,
    redis_url: str | None = None,
    wait_s: float | None = None,
) -> dict[str, Any]:
    """The raw library's consume rate: ``n`` immediate messages enqueued first,
    then ``processes`` × ``threads`` workers started; ``rate`` = n ÷ (last − first
    execution).  ``queue_prefetch`` sets ``dramatiq_queue_prefetch`` (default:
    2 × threads, which caps a fast actor at about processes × prefetch ÷ 7.5 ms)."""
    out = _outdir()
    try:
        with _redis(redis_url) as url:
            producer = Producer(url)
            try:
                t0 = time.perf_counter()
                for key in range(n):
                    producer.send(key)
                enqueue_s = time.perf_counter() - t0
            finally:
                producer.close()
            env = {"dramatiq_queue_prefetch": str(queue_prefetch)} if queue_prefetch else None
            with workers(url, out, processes, threads, env=env):
                records = Records(out)
                records.wait_for(n, time.time() + (wait_s if wait_s is not None else 30 + n / 500))
                time.sleep(0.2)
                records.poll()
        first, duplicates = first_runs(records.records)
        times = sorted(first.values())
        span = (times[-1] - times[0]) if len(times) > 1 else 0.0
        return {
            "n": n,
            "ran": len(first),
            "lost": n - len(first),
            "duplicates": duplicates,
            "span_s": round(span, 4),
            "rate": round(len(first) / max(span, 1e-9), 1),
            "enqueue_s": round(enqueue_s, 4),
            "enqueue_rate": round(n / max(enqueue_s, 1e-9), 1),
            "layout": f"{processes} processes × {threads} threads"
            + (f", dramatiq_queue_prefetch={queue_prefetch}" if queue_prefetch else ", default prefetch"),
        }
    finally:
        shutil.rmtree(out, ignore_errors=True)


def dramatiq_head_of_line(
    backlog: int,
    probes: int,
    probe_delay_s: float = 2.0,
    within_s: float = 40.0,
    wait_s: float = 60.0,
    processes: int = 2,
    threads: int = 8,
    redis_url: str | None = None,
    seed: int = 4,
) -> dict[str, Any]:
    """Head-of-line blocking: ``backlog`` messages delayed 1–40 days are enqueued,
    default workers start and fill their delay-queue prefetch (1,000 × threads
    per process), then ``probes`` messages delayed ``probe_delay_s`` are sent.
    Reports how many probes ran within ``within_s`` of being sent (the wait is
    bounded at ``wait_s``), their lateness after their due instant, and the
    lateness with the probes that never ran counted at the bound (a lower bound)."""
    rng = random.Random(seed)
    out = _outdir()
    try:
        with _redis(redis_url) as url:
            import redis

            client = redis.Redis.from_url(url)
            producer = Producer(url)
            try:
                t0 = time.perf_counter()
                for key in range(backlog):
                    producer.send(key, rng.randint(DAY_MS, 40 * DAY_MS))
                enqueue_s = time.perf_counter() - t0
                with workers(url, out, processes, threads):
                    dq = f"dramatiq:{QUEUE}.DQ"
                    stable_since, last = time.monotonic(), client.llen(dq)
                    end = time.monotonic() + 15
                    while time.monotonic() < end and time.monotonic() - stable_since < 1.0:
                        time.sleep(0.1)
                        now_len = client.llen(dq)
                        if now_len != last:
                            stable_since, last = time.monotonic(), now_len
                    held = backlog - int(last)
                    sent_at = time.time()
                    due = sent_at + probe_delay_s
                    wanted = set(range(backlog, backlog + probes))
                    for key in sorted(wanted):
                        producer.send(key, producer.delay_until(due))
                    records = Records(out)
                    records.wait_for(wanted, sent_at + wait_s, every=0.1)
                    records.poll()
            finally:
                producer.close()
                client.close()
        first, duplicates = first_runs(r for r in records.records if r[0] in wanted)
        offsets = [first[k] - due for k in sorted(first)]
        bound = wait_s - probe_delay_s
        censored = offsets + [bound] * (probes - len(first))
        early_backlog = sum(1 for k, _ in records.records if k < backlog)
        return {
            "backlog": backlog,
            "probes": probes,
            "probes_ran": len(first),
            "ran_within": sum(1 for k in first if first[k] - sent_at <= within_s),
            "within_s": within_s,
            "wait_s": wait_s,
            "lateness": lateness(offsets),
            "lateness_censored": lateness(censored),
            "duplicates": duplicates,
            "early": sum(1 for o in offsets if o < 0) + early_backlog,
            "held_in_workers": held,
            "enqueue_s": round(enqueue_s, 4),
            "enqueue_rate": round(backlog / max(enqueue_s, 1e-9), 1),
            "layout": f"{processes} processes × {threads} threads",
        }
    finally:
        shutil.rmtree(out, ignore_errors=True)
