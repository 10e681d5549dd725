"""A burst of 10,000 touches over five accounts and two real worker processes on a manual clock.

The workers (``pw_burst_worker.py``) share nothing but the pacing rows in the
database (SQLite file or Postgres, by SOPFLOW_TEST_BACKEND) and the queues and
clocks in Redis that this test drives in rounds (``Driver``): each round moves
every account's clock to the next instant it is due and both workers take what
is due then, before the next round.  The witness is the gateway's record: the
recording gateway's list of sends at full size, and the fake puppet services'
own records over real gRPC for the smaller logout burst.

Before this driver the clock moved one instant at a time for all accounts and
every waiting touch was deferred on its own at each instant: 1,000 touches took
20-47 s.  Now 10,000 take about 20 s (2,013 rounds) on SQLite, 27 s on Postgres,
on the 2-core machine when quiet; 52-83 s when it is loaded.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pw_support import RecordingGateway, Touch
from sopflow_personal_wechat import intake
from sopflow_personal_wechat.channel import PersonalWeChatChannel
from sopflow_personal_wechat.fake import start_fake
from sopflow_personal_wechat.fake.scenario import TOKEN
from sopflow_personal_wechat.pacing import Pacer, Policy
from sopflow_personal_wechat.port import Contact, GatewayEvent
from test_pw_pacing import check_pacing

pytestmark = pytest.mark.skipif(
    not os.environ.get("SOPFLOW_TEST_REDIS_URL"), reason="needs Redis (SOPFLOW_TEST_REDIS_URL) for the queue"
)

HERE = Path(__file__).parent
#: The acceptance's size; SOPFLOW_PW_BURST makes it smaller for a quick look.
BURST = int(os.environ.get("SOPFLOW_PW_BURST", 10_000))
ACCOUNTS = 5
START = 1_767_225_600.0  # 2026-01-01 08:00 China time: the accounts connect as quiet hours end
#: The documented defaults (20 s gap + up to 25 s jitter, 300 messages a day after a
#: 7-day warm-up, quiet 22:00-08:00 China time): 2,000 touches an account take 11 days.
POLICY: dict[str, int] = {}
#: Account 0 is logged out after this many of its sends and logs in again LOGIN_AFTER later.
LOGOUT_AFTER = max(1, BURST // ACCOUNTS // 2)
LOGIN_AFTER = 600.0
#: The real-gRPC burst: big enough for a logout in the middle of a full day's sending.
GRPC_BURST = 400
#: A worker that does not answer a round within this many (real) seconds has died or hung.
ROUND_TIMEOUT = 30


@pytest.fixture
def queue() -> Any:
    import redis

    r = redis.Redis.from_url(os.environ["SOPFLOW_TEST_REDIS_URL"])
    r.flushdb()
    yield r
    r.flushdb()


def _workers(pacing_url: str, tmp_path: Path, endpoints: list[str]) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    procs = []
    for n in range(2):
        log = open(tmp_path / f"worker{n}.log", "wb")  # noqa: SIM115 - lives as long as the process
        args = [sys.executable, str(HERE / "pw_burst_worker.py"), pacing_url]
        args += [os.environ["SOPFLOW_TEST_REDIS_URL"], str(n), str(ACCOUNTS), json.dumps(POLICY)]
        args += [json.dumps(endpoints)]
        procs.append(subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT))
    return procs


#: One round's hand-out, in one round trip.  ARGV: the round's number, the
#: logged-out accounts ("-" for none), the number of workers.  Takes the head
#: touches of every account that has any, at the account's next due instant, one
#: per worker and account (the first to a worker that turns with the round), and
#: pushes each worker its share as ``<account>:<touch>:<instant>``; an account whose
#: queue it emptied leaves ``pw:due`` (a deferral puts it back).
ROUND = """
local workers = tonumber(ARGV[3])
local work = {}
for w = 1, workers do work[w] = {} end
local due = redis.call('ZRANGE', 'pw:due', 0, -1, 'WITHSCORES')
for k = 1, #due, 2 do
  local account, at = due[k], due[k + 1]
  for i = 0, workers - 1 do
    local touch = redis.call('LPOP', 'pw:q:' .. account)
    if not touch then break end
    local w = (tonumber(ARGV[1]) + i) % workers + 1
    work[w][#work[w] + 1] = account .. ':' .. touch .. ':' .. at
  end
  if redis.call('LLEN', 'pw:q:' .. account) == 0 then redis.call('ZREM', 'pw:due', account) end
end
for w = 1, workers do
  local items = table.concat(work[w], ' ')
  redis.call('RPUSH', 'pw:go:' .. (w - 1), ARGV[1] .. ' ' .. ARGV[2] .. (#items > 0 and ' ' .. items or ''))
end
return #due / 2
"""


class Driver:
    """The engine's scheduler for the workers, on a manual clock per account.

    No rule crosses accounts — each has its own pacing row, gateway and caps — so
    each account's clock moves on its own, from one instant it is due to the next,
    and a round takes every account one step: the same as one clock visiting all
    the accounts' instants in order, with five times fewer rounds.  Both workers
    read an account's clock at the same instant, so they race for its slot."""

    def __init__(self, r: Any, tmp_path: Path, start: float) -> None:
        self.r, self.tmp_path = r, tmp_path
        self.now = [start] * ACCOUNTS  # each account's clock
        self.procs: list[subprocess.Popen[bytes]] = []
        self.rounds = 0
        self.sent: Counter[int] = Counter()  # sends per account so far, as the workers said
        self.logged_out: set[int] = set()  # accounts the recording gateway refuses
        self._round = r.register_script(ROUND)

    def clock(self, account: int) -> Callable[[], float]:
        return lambda: self.now[account]

    def enqueue(self, touches: list[Touch]) -> None:
        """Every touch due now, each in its account's queue in due order."""
        pipe = self.r.pipeline(transaction=False)
        for touch in touches:
            pipe.rpush(f"pw:q:{touch.channel_index}", touch.id)
        pipe.zadd("pw:due", {str(a): self.now[a] for a in {t.channel_index for t in touches}})
        pipe.execute()

    def run(self, between: Callable[[], None] = lambda: None, max_rounds: int = 100_000) -> None:
        """Rounds until no account has a touch waiting: each account's clock jumps to
        the instant it is due next, and both workers take what is due then."""
        try:
            while True:
                # the instants first: the fakes in this process stamp the sends with them
                due = self.r.zrange("pw:due", 0, -1, withscores=True)
                if not due:
                    return
                self.rounds += 1
                assert self.rounds <= max_rounds, "the burst did not end"
                for account, at in due:
                    self.now[int(account)] = max(self.now[int(account)], at)
                out = ",".join(map(str, sorted(self.logged_out))) or "-"
                self._round(args=[self.rounds, out, len(self.procs)])
                for _ in self.procs:
                    self.sent.update(int(a) for a in self._done().split()[1:])
                between()
        finally:
            pipe = self.r.pipeline(transaction=False)
            for n in range(len(self.procs)):
                pipe.rpush(f"pw:go:{n}", "-1 -")
            pipe.execute()
            for p in self.procs:
                p.wait(timeout=30)

    def _done(self) -> str:
        """One worker's answer to the round, waiting in short blocking reads so a
        dead worker is seen at once and a hung one within ``ROUND_TIMEOUT``."""
        deadline = time.monotonic() + ROUND_TIMEOUT
        while (answer := self.r.blpop(["pw:done"], timeout=1)) is None:
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                logs = {f.name: f.read_text()[-2000:] for f in self.tmp_path.glob("worker*.log")}
                raise AssertionError(f"a worker stopped answering in round {self.rounds}: {logs}")
        return str(answer[1].decode())


def _results(r: Any, touches: list[Touch]) -> None:
    """What the workers recorded of each touch: when it was sent, why it was deferred."""
    sent_at = {int(k): float(v) for k, v in r.hgetall("pw:sent_at").items()}
    pipe = r.pipeline(transaction=False)
    for touch in touches:
        pipe.lrange(f"pw:reasons:{touch.id}", 0, -1)
    for touch, reasons in zip(touches, pipe.execute(), strict=True):
        touch.sent_at = sent_at.get(touch.id)
        touch.reasons = [x.decode() for x in reasons]


def _check_every_rule_met(policy: Policy, witness: list[tuple[str, str, float]]) -> None:
    """Met, not only never broken: before its last day each account filled each day's
    (warm-up) cap, and its gaps vary with the jitter."""
    by_account: dict[str, list[float]] = {}
    for account, _, at in witness:
        by_account.setdefault(account, []).append(at)
    day_zero = policy.local(START).date()
    for times in by_account.values():
        per_day = Counter(policy.local(t).date() for t in times)
        full_days = sorted(per_day)[:-1]
        caps = [policy.cap("message", (d - day_zero).days) for d in full_days]
        assert [per_day[d] for d in full_days] == caps
        gaps = [b - a for a, b in itertools.pairwise(times) if b - a < 3600]  # within a day's run
        assert max(gaps) - min(gaps) > policy.jitter_seconds / 2, "no jitter in the gaps"


def test_a_10000_touch_burst_over_five_accounts_and_two_processes_keeps_every_rule_through_a_logout(
    pacing_url: str, queue: Any, tmp_path: Path
) -> None:
    """The acceptance's burst.  Account 0's gateway logs it out half-way through
    its touches: they wait (deferred ``logged_out``) until the intake hears the
    re-login, then go out — none lost, none twice, none while it was out."""
    r, started = queue, time.monotonic()
    driver = Driver(r, tmp_path, START)
    touches = [Touch(i, i % ACCOUNTS, f"t{i}") for i in range(BURST)]
    engine = sa.create_engine(pacing_url)
    intake_side = PersonalWeChatChannel(  # the intake's channel of account 0, on the shared rows
        {"adapter": "wechaty", "endpoint": "10.0.0.0:8788", **POLICY},
        {"token": TOKEN},
        gateway=RecordingGateway("acct0", driver.clock(0), []),
        pacer=Pacer(engine, driver.clock(0)),
    )
    logout_at: list[float] = []

    def between() -> None:
        if driver.sent[0] >= LOGOUT_AFTER and not logout_at:
            driver.logged_out.add(0)  # the gateway refuses from the next round on
            logout_at.append(driver.now[0])
        elif driver.logged_out and driver.now[0] >= logout_at[0] + LOGIN_AFTER:
            driver.logged_out.clear()  # the staff member scanned the QR code: the stream says so
            intake.handle(None, None, intake_side, GatewayEvent("login"))  # type: ignore[arg-type]

    driver.enqueue(touches)
    driver.procs = _workers(pacing_url, tmp_path, [])
    try:
        driver.run(between)
    finally:
        engine.dispose()
    elapsed = time.monotonic() - started
    print(f"\n{BURST} touches: {driver.rounds} rounds in {elapsed:.1f} s")  # the figure, with -s

    witness = [tuple(json.loads(w)) for w in r.lrange("pw:sent", 0, -1)]  # the gateway's record
    _results(r, touches)
    policy = Policy(**POLICY)
    check_pacing(policy, touches, witness, START)  # type: ignore[arg-type]
    assert sorted(text for _, text, _ in witness) == sorted(t.text for t in touches)  # none lost, none twice
    _check_every_rule_met(policy, witness)  # type: ignore[arg-type]
    reasons = Counter(reason for t in touches for reason in t.reasons)
    assert {"min_gap", "daily_cap:message", "quiet_hours", "logged_out"} <= set(reasons), reasons
    account0 = [at for account, _, at in witness if account == "acct0"]
    assert logout_at and not any(logout_at[0] < at < logout_at[0] + LOGIN_AFTER for at in account0)
    resumed = [at for at in account0 if at >= logout_at[0] + LOGIN_AFTER]
    assert len(resumed) == BURST // ACCOUNTS - LOGOUT_AFTER
    # both processes did part of the sending, so the shared rows did the pacing
    by_worker = {int(k): int(v) for k, v in r.hgetall("pw:by_worker").items()}
    assert set(by_worker) == {0, 1} and sum(by_worker.values()) == BURST, by_worker


def test_a_forced_logout_mid_burst_over_real_grpc_loses_nothing_and_sends_nothing_twice(
    pacing_url: str, queue: Any, tmp_path: Path
) -> None:
    """Each account is a fake puppet service over real gRPC; the fakes' own records
    are the witness.  Account 0 is logged out after 20 sends: its touches wait
    (deferred ``logged_out``) until the intake reads the re-login from the stream."""
    r, burst = queue, GRPC_BURST
    driver = Driver(r, tmp_path, START)
    fakes = [start_fake(driver.clock(a), per_minute=100) for a in range(ACCOUNTS)]
    accounts = [f.state.account(TOKEN) for f in fakes]
    touches = [Touch(i, i % ACCOUNTS, f"t{i}") for i in range(burst)]
    for touch in touches:
        a = touch.channel_index
        fakes[a].state.add_contact(accounts[a], Contact(f"wxid_c{touch.id}"))
    engine = sa.create_engine(pacing_url)
    pacer = Pacer(engine, driver.clock(0))
    watcher = PersonalWeChatChannel(  # the intake's side of account 0: it reads the event stream
        {"adapter": "wechaty", "endpoint": fakes[0].endpoint, "tls": False, **POLICY},
        {"token": TOKEN},
        pacer=pacer,
        timeout=5.0,
    )
    logout_at: list[float] = []

    def between() -> None:
        if len(accounts[0].sent) >= 20 and not logout_at:
            fakes[0].state.logout(accounts[0])
            logout_at.append(driver.now[0])
        elif logout_at and not accounts[0].logged_in and driver.now[0] >= logout_at[0] + LOGIN_AFTER:
            fakes[0].state.login(accounts[0])  # ten minutes later the staff member scans the QR code
            deadline = time.monotonic() + 10
            while not pacer.row(watcher.key)["logged_in"]:  # the intake reads the stream: logout, login
                assert time.monotonic() < deadline, "the intake never saw the re-login"
                for event in watcher.gateway.events(idle_timeout=0.05):
                    intake.handle(None, None, watcher, event)  # type: ignore[arg-type]  # no host needed

    driver.enqueue(touches)
    driver.procs = _workers(pacing_url, tmp_path, [f.endpoint for f in fakes])
    try:
        driver.run(between)
    finally:
        watcher.gateway.close()
        engine.dispose()
        for f in fakes:
            f.__exit__(None, None, None)
    witness = [(f"acct{a}", d.content, d.at) for a, account in enumerate(accounts) for d in account.sent]
    _results(r, touches)
    check_pacing(Policy(**POLICY), touches, witness, START)
    for a, account in enumerate(accounts):  # nothing lost, nothing twice
        assert sorted(d.content for d in account.sent) == sorted(f"t{i}" for i in range(a, burst, ACCOUNTS))
    assert logout_at and accounts[0].logged_in
    assert "logged_out" in {reason for t in touches for reason in t.reasons}
    assert min(d.at for d in accounts[0].sent[20:]) >= logout_at[0] + LOGIN_AFTER  # none while logged out
