"""S6 event → first touch: a customer enters through ``POST /api/v1/events`` and
the first step of a started ``new_customer`` SOP (``"delay": "0m"``) reaches the
channel — real processes, the system clock.

Ours: a running sopflow — embedded (``sopflow up``: API, in-memory broker,
worker threads and scheduler in one process, on a SQLite file) on
``--backend sqlite``; production (``sopflow serve`` + ``sopflow worker`` +
``sopflow scheduler`` on Postgres and a private Redis) on ``--backend
postgres`` — every setting at its default, unless ``--s6-intervals`` sets
``SOPFLOW_SCHEDULER_INTERVAL``.  The step sends on the built-in no-op ``log``
channel (a timestamped JSON log line the bench reads from the process's log
file; ``--s6-channel webhook`` uses the ``webhook`` action and a receiver on
127.0.0.1 instead).  A load
generator in the bench process posts one ``customer.added`` event per request
at a fixed open-loop rate (32 keep-alive connections; a request waits for a
free one when all are busy, and that wait counts) for a bounded window per
rate.  Latency = wall time from the instant the POST was scheduled to be sent
until the channel's send for that customer; p50/p90/p99/max per rate, and the
achieved rate (events accepted ÷ the time until the last answer).  The path:
ingest transaction → the ``evaluate_events`` actor enrols and, because the touch
is due now, claims and delivers it itself (``runner.deliver_due_now``; the
scheduler's tick every ``SOPFLOW_SCHEDULER_INTERVAL`` is the fallback).  Until
the rate passes what the API ingests, the latency is that work; past it a
backlog builds.

Baseline: a naive Dramatiq pipeline (``bench/s6_dramatiq_peer.py``): the bench
sends ``evaluate`` straight to a private Redis (no HTTP hop); a stock ``dramatiq``
worker (2 processes × 8 threads, default settings) runs it — one transaction
inserting the event and the touch — and sends ``deliver`` with ``delay=0``
(Dramatiq's delay queue), whose no-op send appends a timestamped line to a file.
Same rates, same windows, same database back-end (``--quick``: the first rate
only).  ``--s6-no-peer`` leaves it out.
Limit: that one transaction per event (insert event + insert touch, commit) on
the same database, run back to back: p50 per event.

Figures: ``seconds`` is the p50 latency (so ours ÷ baseline and ours ÷ limit
are ratios of p50 latencies, above 1× = ours faster); p90/p99/max and the
achieved rate are in the note.  One window per rate and run; with ``--runs``
> 1 the run with the median p50 is shown.
Correctness: lost (event accepted, no first touch once sends stop arriving for
10 s or the bounded wait ends) = 0; duplicates (a second send for a customer,
or a second touch row for a customer and step) = 0; api_errors (non-200
answers or broken connections) = 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.load import Context, figure

NAME = "S6"
ORDER = 60
MUST_BE_ZERO = ("lost", "duplicates", "api_errors")
CONNECTIONS = 32
PEER_WHAT = "naive Dramatiq: evaluate → deliver(delay=0), 2 procs × 8 threads, defaults"


def add_arguments(ap: Any) -> None:
    g = ap.add_argument_group("S6 event → first touch")
    g.add_argument(
        "--s6-rates", type=float, nargs="+", default=[5, 200, 1000], help="offered events/s (quick: 5 50)"
    )
    g.add_argument("--s6-seconds", type=float, default=10.0, help="window per rate (quick: 2)")
    g.add_argument(
        "--s6-max-events", type=int, default=2000, help="at most this many events per window (shortens it)"
    )
    g.add_argument(
        "--s6-mode",
        choices=("auto", "embedded", "production"),
        default="auto",
        help="auto: embedded on --backend sqlite, production on postgres",
    )
    g.add_argument(
        "--s6-intervals",
        type=float,
        nargs="+",
        default=[0.0],
        help="SOPFLOW_SCHEDULER_INTERVAL values to run (0 = the engine's default)",
    )
    g.add_argument("--s6-no-peer", action="store_true", help="skip the Dramatiq peer")
    g.add_argument(
        "--s6-channel",
        choices=("log", "webhook"),
        default="log",
        help="log: the built-in no-op channel, read from the process logs; webhook: a 127.0.0.1 receiver",
    )


# --------------------------------------------------------------------------- statistics


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summary(latencies: list[float]) -> dict[str, float]:
    return {
        "p50_s": round(percentile(latencies, 0.5), 4),
        "p90_s": round(percentile(latencies, 0.9), 4),
        "p99_s": round(percentile(latencies, 0.99), 4),
        "max_s": round(max(latencies, default=0.0), 4),
    }


def ms(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s >= 0.01 else f"{s * 1000:.1f} ms"


# --------------------------------------------------------------------------- HTTP on asyncio


class Receiver:
    """The channel: a minimal HTTP/1.1 server on 127.0.0.1 in the bench's event loop;
    it records (customer id, Idempotency-Key, arrival time) of every POST."""

    def __init__(self) -> None:
        self.first: dict[int, float] = {}
        self.calls: dict[int, int] = {}
        self.keys: set[str] = set()
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/touch"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for _ in range(1_000_000):
                head = await reader.readuntil(b"\r\n\r\n")
                now = time.time()
                length, key = 0, ""
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"idempotency-key":
                        key = value.strip().decode()
                body = await reader.readexactly(length) if length else b"{}"
                customer = json.loads(body).get("customer_id")
                if customer is not None:
                    self.first.setdefault(customer, now)
                    self.calls[customer] = self.calls.get(customer, 0) + 1
                self.keys.add(key)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    def duplicates(self) -> int:
        return sum(n - 1 for n in self.calls.values() if n > 1)

    async def poll(self) -> None:
        """Calls are recorded as they arrive."""

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)


class LogTail:
    """The no-op channel seen from outside: new lines of the processes' log files,
    each parsed by ``parse`` into (delivery key, wall time of the send) or None."""

    def __init__(self, parse: Any) -> None:
        self.parse = parse
        self.paths: list[Path] = []
        self.offsets: dict[Path, int] = {}
        self.partial: dict[Path, bytes] = {}
        self.first: dict[Any, float] = {}
        self.calls: dict[Any, int] = {}

    def watch(self, *paths: Path) -> None:
        self.paths += [p for p in paths if p not in self.paths]

    async def poll(self) -> None:
        for path in list(self.paths) + sorted(
            {q for p in self.paths if p.is_dir() for q in p.iterdir()} - set(self.paths)
        ):
            if path.is_dir():
                continue
            try:
                with open(path, "rb") as f:
                    f.seek(self.offsets.get(path, 0))
                    data = f.read()
            except FileNotFoundError:
                continue
            self.offsets[path] = self.offsets.get(path, 0) + len(data)
            lines = (self.partial.pop(path, b"") + data).split(b"\n")
            if lines[-1]:
                self.partial[path] = lines[-1]
            for line in lines[:-1]:
                hit = self.parse(line)
                if hit is not None:
                    key, at = hit
                    self.first.setdefault(key, at)
                    self.calls[key] = self.calls.get(key, 0) + 1

    def duplicates(self) -> int:
        return sum(n - 1 for n in self.calls.values() if n > 1)

    async def close(self) -> None:
        await self.poll()


def parse_log_channel(line: bytes) -> tuple[str, float] | None:
    """A ``log_channel_send`` JSON line of a sopflow process: (text, its timestamp)."""
    if b"log_channel_send" not in line:
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if record.get("event") != "log_channel_send":
        return None
    return record["text"], datetime.fromisoformat(record["timestamp"]).timestamp()


def parse_peer_line(line: bytes) -> tuple[int, float] | None:
    """``<customer> <wall time>`` written by the peer's no-op deliver."""
    parts = line.split()
    return (int(parts[0]), float(parts[1])) if len(parts) == 2 else None


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip().lower()
    keep = headers.get(b"connection") != b"close"
    if b"content-length" in headers:
        return status, await reader.readexactly(int(headers[b"content-length"])), keep
    if headers.get(b"transfer-encoding") == b"chunked":
        body = b""
        for _ in range(100_000):
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
        return status, body, keep
    return status, await reader.read(), False


class HttpPool:
    """Up to ``size`` keep-alive connections; a request waits for a free one."""

    def __init__(self, port: int, size: int = CONNECTIONS) -> None:
        self.port = port
        self.free: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self.slots = asyncio.Semaphore(size)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        async with self.slots:
            conn = None
            while self.free and conn is None:
                reader, writer, last = self.free.pop()
                if time.perf_counter() - last < 2.0 and not writer.is_closing():
                    conn = reader, writer
                else:  # idle for a while: the server may have closed it
                    writer.close()
            if conn is None:
                conn = await asyncio.open_connection("127.0.0.1", self.port)
            reader, writer = conn
            try:
                writer.write(raw)
                status, body, keep = await read_response(reader)
            except BaseException:
                writer.close()
                raise
            if keep:
                self.free.append((reader, writer, time.perf_counter()))
            else:
                writer.close()
            return status, body

    def close(self) -> None:
        for _, writer, _ in self.free:
            writer.close()
        self.free.clear()


def event_request(port: int, token: str, key: str) -> bytes:
    body = json.dumps(
        {
            "events": [
                {
                    "type": "customer.added",
                    "idempotency_key": key,
                    "identity": {"channel": "bench", "external_id": key},
                    "display_name": key,
                }
            ]
        }
    ).encode()
    head = (
        f"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


# --------------------------------------------------------------------------- one window


class Window:
    """Send ``n`` events at ``rate``/s open-loop, then wait for their first touches."""

    def __init__(self, rate: float, n: int) -> None:
        self.rate, self.n = rate, n
        self.accepted: dict[int, float] = {}  # customer → scheduled send instant
        self.errors = 0
        self.lag: list[float] = []  # actual send − scheduled (the bench's own delay)
        self.responded: list[float] = []

    async def send_all(self, send: Any) -> None:
        t0 = time.time() + 0.05  # wall time: the deliveries are stamped in other processes
        self.t0 = t0
        tasks = []

        async def one(i: int, at: float) -> None:
            self.lag.append(time.time() - at)
            try:
                customer = await send(i)
            except Exception:
                self.errors += 1
                return
            self.responded.append(time.time())
            if customer is None:
                self.errors += 1
            else:
                self.accepted[customer] = at

        for i in range(self.n):
            at = t0 + i / self.rate
            delay = at - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, at)))
        await asyncio.gather(*tasks)

    async def wait_delivered(self, receiver: Any, stall: float, cap: float) -> None:
        """Until every accepted customer got a touch, or ``stall`` s without a new
        delivery, or ``cap`` s in all."""
        end = time.monotonic() + cap
        seen, last_change = -1, time.monotonic()
        while time.monotonic() < end:
            await receiver.poll()
            got = sum(1 for c in self.accepted if c in receiver.first)
            if got == len(self.accepted):
                return
            if got != seen:
                seen, last_change = got, time.monotonic()
            elif time.monotonic() - last_change > stall:
                return
            await asyncio.sleep(0.05)

    def result(self, receiver: Any) -> dict[str, Any]:
        lat = [receiver.first[c] - at for c, at in self.accepted.items() if c in receiver.first]
        span = max([*self.responded, self.t0 + self.n / self.rate]) - self.t0
        return {
            "offered_rate": self.rate,
            "events": self.n,
            "accepted": len(self.accepted),
            "achieved_rate": round(len(self.accepted) / span, 1) if span > 0 else 0.0,
            "lost": len(self.accepted) - len(lat),
            "api_errors": self.errors,
            "client_lag_p99_s": round(percentile(self.lag, 0.99), 4),
            **summary(lat),
        }


# --------------------------------------------------------------------------- ours


def make_tenant(url: str, name: str) -> tuple[int, str]:
    from sopflow.clock import SystemClock
    from sopflow_sdk.testing.harness import make_test_app, new_tenant

    app = make_test_app(url, clock=SystemClock(), env={"SOPFLOW_CLOCK": "system"})
    try:
        return new_tenant(app, name)
    finally:
        app.dispose()


async def wait_healthy(base: str, procs: list[Any], timeout: float) -> None:
    import httpx

    end = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < end:
            for p in procs:
                if not p.alive():
                    raise RuntimeError(f"{p.name} exited: {p.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{base}/health")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise TimeoutError(f"the sopflow API on {base} did not come up in {timeout:.0f} s")


async def start_sop(base: str, token: str, channel: str, hook: str | None) -> int:
    import httpx

    action = (
        {"type": "webhook", "url": hook, "idempotent": True}
        if channel == "webhook"
        else {
            "type": "send",
            "channel": "log",
            "touchpoint": "private_chat",
            "text": "{{ customer.display_name }}",  # the event's key: which event this touch answers
        }
    )
    definition = {"kind": "new_customer", "target": {}, "steps": [{"delay": "0m", "actions": [action]}]}
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        r = await client.post("/api/v1/sops", json={"name": "s6 welcome", "definition": definition})
        if r.status_code != 201:
            raise RuntimeError(f"creating the SOP: {r.status_code} {r.text[:300]}")
        sop_id = r.json()["id"]
        r = await client.post(f"/api/v1/sops/{sop_id}/start")
        if r.status_code != 200:
            raise RuntimeError(f"starting the SOP: {r.status_code} {r.text[:300]}")
    return int(sop_id)


def touch_duplicates(url: str, sop_id: int) -> int:
    """Touches beyond one per customer and step of the SOP (a second enrolment or touch)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.exec_driver_sql(
                    "SELECT COALESCE(SUM(n - 1), 0) FROM (SELECT COUNT(*) AS n FROM touches "
                    f"WHERE sop_id = {int(sop_id)} GROUP BY customer_id, step_index) AS t"
                ).scalar_one()
            )
    finally:
        engine.dispose()


async def run_windows(
    ctx: Context,
    label: str,
    sender: Any,
    receiver: Any,
    plan: list[tuple[float, int]],
    stall: float,
) -> list[dict[str, Any]]:
    out = []
    for rate, n in plan:
        best: list[dict[str, Any]] = []
        for r in range(ctx.runs):
            window = Window(rate, n)
            await window.send_all(lambda i, tag=f"{rate:g}-{r}": sender(tag, i))
            await window.wait_delivered(receiver, stall, cap=max(60.0, 3 * n / max(rate, 1) + 30))
            res = window.result(receiver)
            best.append(res)
            ctx.log(
                f"S6 {label} {rate:g}/s run {r + 1}: {res['accepted']} accepted, achieved "
                f"{res['achieved_rate']}/s, p50 {ms(res['p50_s'])}, p99 {ms(res['p99_s'])}, "
                f"max {ms(res['max_s'])}, lost {res['lost']}, errors {res['api_errors']}"
            )
        best.sort(key=lambda x: x["p50_s"])
        median_run = dict(best[len(best) // 2])
        median_run["runs_p50_s"] = [x["p50_s"] for x in best]
        median_run["lost"] = sum(x["lost"] for x in best)
        median_run["api_errors"] = sum(x["api_errors"] for x in best)
        out.append(median_run)
    return out


async def ours(
    ctx: Context,
    url: str,
    mode: str,
    interval: float,
    redis_url: str | None,
    plan: list[tuple[float, int]],
    channel: str,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    from bench.servers import free_port, processes, sopflow_env

    tag = f"{mode}-{interval:g}".replace(".", "_")
    _, token = await asyncio.to_thread(make_tenant, url, f"s6-{tag}")
    receiver: Any
    hook = None
    if channel == "webhook":
        receiver = Receiver()
        hook = await receiver.start()
    else:
        receiver = LogTail(parse_log_channel)
    port = free_port()
    pool = HttpPool(port)
    try:
        with processes("sopflow-bench-s6-") as procs:
            settings: dict[str, Any] = {"port": port, "scheduler_interval": interval or None}
            if mode == "production":
                settings["redis_url"] = redis_url
            if channel == "log":  # the log channel's sends are INFO lines with a timestamp
                settings.update(log_level="INFO", log_format="json")
            env = sopflow_env(url, procs.logdir, **settings)
            if mode == "embedded":
                started = [procs.sopflow("up", env, "--port", str(port))]
            else:
                started = [
                    procs.sopflow("serve", env, "--port", str(port)),
                    procs.sopflow("worker", env),
                    procs.sopflow("scheduler", env),
                ]
            if isinstance(receiver, LogTail):
                receiver.watch(*(p.log for p in started))
            base = f"http://127.0.0.1:{port}"
            try:
                await wait_healthy(base, started, 60)
                sop_id = await start_sop(base, token, channel, hook)

                async def post(prefix: str, i: int) -> Any:
                    key = f"s6-{tag}-{prefix}-{i}"
                    status, body = await pool.request(event_request(port, token, key))
                    if status != 200:
                        return None
                    result = json.loads(body)["results"][0]
                    if result["status"] != "created":
                        return None
                    return result["customer_id"] if channel == "webhook" else key

                warm = Window(5, 3)  # imports, caches, first connections: not timed
                await warm.send_all(lambda i: post("warm", i))
                await warm.wait_delivered(receiver, stall=10, cap=30)
                if len(warm.accepted) < 3 or any(c not in receiver.first for c in warm.accepted):
                    raise RuntimeError(f"warm-up touches did not arrive; logs:\n{procs.logs()}")
                results = await run_windows(ctx, f"ours ({mode})", post, receiver, plan, stall=10)
                await asyncio.sleep(1.0)  # late duplicates
                await receiver.poll()
            except BaseException:
                ctx.log(f"S6 process logs:\n{procs.logs()}")
                raise
    finally:
        pool.close()
        await receiver.close()
    counters = {
        "lost": sum(r["lost"] for r in results),
        "api_errors": sum(r["api_errors"] for r in results),
        "duplicates": receiver.duplicates() + await asyncio.to_thread(touch_duplicates, url, sop_id),
        "delivered": len(receiver.first),
    }
    return results, counters


# --------------------------------------------------------------------------- peer and limit


async def peer(
    ctx: Context, url: str, redis_url: str, plan: list[tuple[float, int]], channel: str
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker

    from bench.servers import ROOT, processes

    out_dir = Path(tempfile.mkdtemp(prefix="sopflow-bench-s6-peer-out-"))
    receiver: Any
    hook = ""
    if channel == "webhook":
        receiver = Receiver()
        hook = await receiver.start()
    else:
        receiver = LogTail(parse_peer_line)
        receiver.watch(out_dir)
    broker = RedisBroker(url=redis_url, middleware=[])  # the producer side: no middleware needed
    try:
        with processes("sopflow-bench-s6-peer-") as procs:
            env = {
                **os.environ,
                "BENCH_PEER_REDIS_URL": redis_url,
                "BENCH_PEER_DATABASE_URL": url,
                "BENCH_PEER_CHANNEL": channel,
                "BENCH_PEER_RECEIVER": hook,
                "BENCH_PEER_OUT": str(out_dir),
                "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
            }
            argv = [sys.executable, "-m", "dramatiq", "bench.s6_dramatiq_peer"]
            argv += ["--processes", "2", "--threads", "8", "--worker-shutdown-timeout", "5000"]
            procs.start("dramatiq", argv, env, group=True)
            counter = iter(range(10**9))

            async def send(prefix: str, i: int) -> int:
                customer = next(counter)
                message = dramatiq.Message(
                    queue_name="default",
                    actor_name="evaluate",
                    args=(f"peer-{prefix}-{i}", customer),
                    kwargs={},
                    options={},
                )
                broker.enqueue(message)
                return customer

            try:
                warm = Window(5, 3)  # until the worker processes are up
                await warm.send_all(lambda i: send("warm", i))
                await warm.wait_delivered(receiver, stall=30, cap=40)
                if any(c not in receiver.first for c in warm.accepted):
                    raise RuntimeError(f"the Dramatiq peer did not deliver; logs:\n{procs.logs()}")
                results = await run_windows(ctx, "peer (Dramatiq)", send, receiver, plan, stall=10)
                await asyncio.sleep(1.0)
                await receiver.poll()
            except BaseException:
                ctx.log(f"S6 peer logs:\n{procs.logs()}")
                raise
    finally:
        broker.close()
        await receiver.close()
        shutil.rmtree(out_dir, ignore_errors=True)
    counters = {
        "peer_lost": sum(r["lost"] for r in results),
        "peer_duplicates": receiver.duplicates(),
    }
    return results, counters


def limit(url: str, n: int) -> dict[str, Any]:
    """``n`` back-to-back transactions: insert the event and the touch, commit."""
    from sopflow.db import make_engine

    from bench.s6_dramatiq_peer import event_and_touch

    engine = make_engine(url)
    times = []
    try:
        for i in range(n + 10):
            t = time.perf_counter()
            with engine.begin() as conn:
                event_and_touch(conn, f"limit-{i}", 10**12 + i, time.time())
            if i >= 10:  # the first ones open connections
                times.append(time.perf_counter() - t)
    finally:
        engine.dispose()
    return {"events": n, "mean_s": sum(times) / len(times), **summary(times)}


# --------------------------------------------------------------------------- run


def run(ctx: Context) -> dict[str, Any]:
    from sopflow.db import make_engine

    from bench.s6_dramatiq_peer import create_tables
    from bench.servers import redis_server

    args = ctx.args
    rates = [5.0, 50.0] if ctx.quick else list(args.s6_rates)
    seconds = 2.0 if ctx.quick else args.s6_seconds
    plan = [(rate, max(2, min(args.s6_max_events, round(rate * seconds)))) for rate in rates]
    mode = args.s6_mode
    if mode == "auto":
        mode = "production" if ctx.backend == "postgres" else "embedded"
    intervals = list(args.s6_intervals)
    channel = args.s6_channel
    db = ctx.database("s6")
    try:
        engine = make_engine(db.url)
        create_tables(engine)
        engine.dispose()
        need_redis = mode == "production" or not args.s6_no_peer
        with redis_server() if need_redis else contextlib.nullcontext() as redis_url:
            ours_runs: dict[float, list[dict[str, Any]]] = {}
            counters: dict[str, int] = {"lost": 0, "duplicates": 0, "api_errors": 0, "delivered": 0}
            for interval in intervals:
                ctx.log(f"S6: ours ({mode}, scheduler interval {interval or 'default'}), rates {rates}")
                results, c = asyncio.run(ours(ctx, db.url, mode, interval, redis_url, plan, channel))
                ours_runs[interval] = results
                for k, v in c.items():
                    counters[k] = counters.get(k, 0) + v
            peer_runs: list[dict[str, Any]] | None = None
            if not args.s6_no_peer:
                ctx.log("S6: naive Dramatiq peer")
                # quick: the first rate only (the 30 s budget); its rows at other rates show no peer
                peer_plan = plan[:1] if ctx.quick else plan
                peer_runs, c = asyncio.run(peer(ctx, db.url, redis_url, peer_plan, channel))
                counters.update(c)
        lim = limit(db.url, 50 if ctx.quick else 500)
        ctx.log(f"S6 limit: one transaction p50 {ms(lim['p50_s'])}, p99 {ms(lim['p99_s'])}")
    finally:
        db.close()

    where = (
        "embedded (`sopflow up`: SQLite file, in-memory broker)"
        if mode == "embedded"
        else "production (`serve` + `worker` + `scheduler`, Redis)"
    )
    rows = []
    for interval, results in ours_runs.items():
        for i, res in enumerate(results):
            base = peer_runs[i] if peer_runs and i < len(peer_runs) else None
            rows.append(
                {
                    "id": "S6",
                    "what": f"event → first touch, {where}, {channel} channel, scheduler interval "
                    + (f"{interval:g} s" if interval else "1 s (default)"),
                    "size": f"{res['offered_rate']:g} events/s offered, {res['events']:,} events",
                    "ours": latency_figure(res),
                    "baseline": latency_figure(base, PEER_WHAT) if base else None,
                    "limit": figure(
                        lim["p50_s"],
                        1,
                        "1/p50",
                        **lim,
                        note=f"p99 {ms(lim['p99_s'])}",
                        what="one transaction: insert event + insert touch, commit (back to back)",
                    ),
                    "bound": bound(res, interval, mode),
                }
            )
    return {
        "scenario": "S6",
        "title": "event → first touch latency",
        "rows": rows,
        "counters": counters,
        "sizes": {"rates": rates, "seconds": seconds, "mode": mode, "intervals": intervals},
    }


def bound(res: dict[str, Any], interval: float, mode: str) -> str:
    text = (
        "one queue hop to the evaluate step, which enrols, then claims and delivers the due-now touch "
        f"itself (the scheduler's tick, every {interval or 1:g} s, is the fallback), each its own "
        "transactions"
    )
    if res["achieved_rate"] < 0.9 * res["offered_rate"]:
        where = "the one `sopflow up` process (API, worker threads, scheduler: one GIL)"
        if mode == "production":
            where = "the API process (`sopflow serve`, one process)"
        text = (
            f"ingest: {where} accepted {res['achieved_rate']:g} events/s, so requests queue and the "
            f"latency is mostly that backlog (CPU); under it, {text}"
        )
    return text


def latency_figure(res: dict[str, Any], what: str | None = None) -> dict[str, Any]:
    note = (
        f"p90 {ms(res['p90_s'])}, p99 {ms(res['p99_s'])}, max {ms(res['max_s'])}; "
        f"achieved {res['achieved_rate']:g}/s"
    )
    if res["lost"]:
        note += f"; {res['lost']} lost"
    if res["client_lag_p99_s"] > 0.05:  # the bench itself sent late: the figure includes it
        note += f"; bench send lag p99 {ms(res['client_lag_p99_s'])}"
    extra = {k: v for k, v in res.items() if k not in ("p50_s",)}
    out = figure(res["p50_s"], 1, "1/p50", res.get("runs_p50_s", ()), **extra, note=note)
    out["p50_s"] = res["p50_s"]
    if what:
        out["what"] = what
    return out
