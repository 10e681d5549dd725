"""Ban-safe pacing: the rules one by one, then bursts over several accounts and two
workers (two pacers, each on its own database engine) on the manual clock."""

from __future__ import annotations

import itertools
import random
import threading
from collections import Counter, defaultdict
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pw_support import RecordingGateway, Touch, message, run_burst
from sopflow_personal_wechat import intake
from sopflow_personal_wechat.channel import PersonalWeChatChannel
from sopflow_personal_wechat.fake import FakeClock
from sopflow_personal_wechat.fake.scenario import CONTACTS, TOKEN
from sopflow_personal_wechat.pacing import Pacer, Policy
from sopflow_personal_wechat.store import pacing
from sopflow_sdk import DeferredError, OutboundMessage

DAY = 86_400.0


def test_the_gap_is_at_least_min_gap_and_at_most_min_gap_plus_jitter(pacer: Pacer, clock: FakeClock) -> None:
    policy = Policy(min_gap_seconds=20, jitter_seconds=25, quiet_start=0, quiet_end=0)
    gaps = []
    for _ in range(30):
        assert pacer.admit("a", "message", policy).ok
        held = pacer.admit("a", "message", policy)
        assert not held.ok and held.reason == "min_gap"
        gaps.append(held.not_before - clock())
        clock.set(held.not_before)
    assert all(20 <= g <= 45 for g in gaps)
    assert len({round(g, 3) for g in gaps}) > 20  # jitter: no two gaps alike, like a person


def test_daily_caps_ramp_up_over_the_warm_up() -> None:
    policy = Policy(daily_messages=300, warmup_days=7)
    assert [policy.cap("message", d) for d in range(9)] == [38, 75, 113, 150, 188, 225, 263, 300, 300]
    assert Policy(warmup_days=0).cap("moment", 0) == 3


def test_a_cap_defers_to_the_next_local_day(pacer: Pacer, clock: FakeClock) -> None:
    policy = Policy(
        min_gap_seconds=3, jitter_seconds=0, daily_moments=2, warmup_days=0, quiet_start=0, quiet_end=0
    )
    for _ in range(2):
        assert pacer.admit("a", "moment", policy).ok
        clock.advance(3)
    held = pacer.admit("a", "moment", policy)
    assert held.reason == "daily_cap:moment"
    assert policy.local(held.not_before).strftime("%H:%M:%S") == "00:00:00"
    assert pacer.admit("a", "message", policy).ok  # another kind has its own cap


def test_quiet_hours_hold_sends_until_they_end(pacer: Pacer, clock: FakeClock) -> None:
    policy = Policy()  # 22:00-08:00 China time
    clock.set(clock() + 9 * 3600)  # 23:33 local
    held = pacer.admit("a", "message", policy)
    assert held.reason == "quiet_hours"
    assert policy.local(held.not_before).strftime("%H:%M") == "08:00"


def test_a_pause_holds_every_kind(pacer: Pacer, clock: FakeClock) -> None:
    policy = Policy(quiet_start=0, quiet_end=0)
    until = pacer.pause("a", 3600, "restricted: 操作过于频繁", restriction=True)
    assert pacer.admit("a", "group", policy).reason.startswith("paused: restricted")
    clock.set(until)
    assert pacer.admit("a", "group", policy).ok
    assert pacer.row("a")["restrictions"] == 1


def test_two_workers_racing_for_one_slot_take_it_once(pacing_url: str, clock: FakeClock) -> None:
    """Two pacers, each with its own engine (as two worker processes have), at one instant."""
    engines = [sa.create_engine(pacing_url, connect_args=_wait(pacing_url)) for _ in range(2)]
    pacers = [Pacer(e, clock) for e in engines]
    policy = Policy(quiet_start=0, quiet_end=0)
    pacers[0].row("a")
    admitted: list[bool] = []
    barrier = threading.Barrier(8)

    def race(p: Pacer) -> None:
        barrier.wait()
        admitted.append(p.admit("a", "message", policy).ok)

    threads = [threading.Thread(target=race, args=(pacers[i % 2],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert admitted.count(True) == 1
    for e in engines:
        e.dispose()


def _wait(url: str) -> dict[str, Any]:
    return {"timeout": 30} if url.startswith("sqlite") else {}


def _engine(url: str) -> sa.Engine:
    """A worker's own engine.  On SQLite without fsync per commit: a test database
    that dies with the test needs no durability, and bursts commit thousands of times."""
    engine = sa.create_engine(url, connect_args=_wait(url))
    if url.startswith("sqlite"):
        sa.event.listen(engine, "connect", lambda conn, _: conn.execute("PRAGMA synchronous=OFF"))
    return engine


def _workers(
    pacing_url: str,
    clock: FakeClock,
    policy: dict[str, Any],
    accounts: int,
    witness: list[tuple[str, str, float]],
) -> tuple[list[list[PersonalWeChatChannel]], list[sa.Engine]]:
    engines = [_engine(pacing_url) for _ in range(2)]
    workers = []
    for n, engine in enumerate(engines):
        pacer = Pacer(engine, clock, random.Random(n))
        workers.append(
            [
                PersonalWeChatChannel(
                    {"adapter": "wechaty", "endpoint": f"10.0.0.{a}:8788", **policy},
                    {"token": "token-000001"},
                    gateway=RecordingGateway(f"acct{a}", clock, witness),
                    pacer=pacer,
                )
                for a in range(accounts)
            ]
        )
    return workers, engines


def check_pacing(
    policy: Policy, touches: list[Touch], witness: list[tuple[str, str, float]], start: float
) -> None:
    """No two sends of one account closer than the gap, no cap exceeded, none in quiet
    hours, nothing sent twice, and every touch sent or deferred with a reason."""
    by_account: dict[str, list[float]] = defaultdict(list)
    for account, _, at in witness:
        by_account[account].append(at)
    for times in by_account.values():
        assert all(b - a >= policy.min_gap_seconds for a, b in itertools.pairwise(times))
        per_day = Counter(policy.local(t).date() for t in times)
        day_zero = policy.local(start).date()
        for day, count in per_day.items():
            assert count <= policy.cap("message", (day - day_zero).days)
        assert all(policy.quiet_until(t) is None for t in times)
    texts = [text for _, text, _ in witness]
    delivered = set(texts)
    assert len(texts) == len(delivered), "a touch was delivered twice"
    for touch in touches:
        assert (touch.sent_at is not None) == (touch.text in delivered)
        assert touch.sent_at is not None or touch.reasons, f"touch {touch.id} neither sent nor deferred"
        assert all(touch.reasons), "a deferral without a reason"


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    accounts=st.integers(1, 5),
    burst=st.integers(1, 100),
    min_gap=st.integers(3, 120),
    jitter=st.integers(0, 60),
    cap=st.integers(1, 12),
    start_hour=st.integers(0, 23),
)
def test_a_burst_over_accounts_and_two_workers_keeps_every_rule(
    pacing_engine: sa.Engine,
    pacing_url: str,
    accounts: int,
    burst: int,
    min_gap: int,
    jitter: int,
    cap: int,
    start_hour: int,
) -> None:
    with pacing_engine.begin() as c:
        c.execute(sa.delete(pacing))
    clock = FakeClock(1_767_225_600.0 + start_hour * 3600)  # 2026-01-01 08:00 China time + hours
    settings_ = {
        "min_gap_seconds": min_gap,
        "jitter_seconds": jitter,
        "daily_messages": cap,
        "warmup_days": 2,
    }
    witness: list[tuple[str, str, float]] = []
    workers, engines = _workers(pacing_url, clock, settings_, accounts, witness)
    touches = [Touch(i, i % accounts, f"t{i}") for i in range(burst)]
    start = clock()
    run_burst(workers, touches, clock, until=start + 3 * DAY)
    check_pacing(Policy(quiet_start=22, quiet_end=8, **settings_), touches, witness, start)
    # the ones left are held by today's cap, never dropped, and their turn comes
    run_burst(workers, touches, clock, until=start + 160 * DAY)
    assert all(t.sent_at is not None for t in touches)
    check_pacing(Policy(quiet_start=22, quiet_end=8, **settings_), touches, witness, start)
    for e in engines:
        e.dispose()


def test_a_deferral_says_when_and_why(pacer: Pacer, clock: FakeClock) -> None:
    witness: list[tuple[str, str, float]] = []
    channel = PersonalWeChatChannel(
        {"adapter": "wechaty", "endpoint": "10.0.0.1:8788", "quiet_start": 0, "quiet_end": 0},
        {"token": "token-000001"},
        gateway=RecordingGateway("a", clock, witness),
        pacer=pacer,
    )
    channel.send(message(Touch(1, 0, "first")))
    with pytest.raises(DeferredError) as info:
        channel.send(message(Touch(2, 0, "second")))
    assert info.value.reason == "min_gap" and 20 <= info.value.retry_after <= 45
    assert [w[1] for w in witness] == ["first"]


def test_a_burst_of_400_touches_over_five_accounts_and_two_workers(pacing_url: str) -> None:
    clock = FakeClock(1_767_225_600.0)  # 08:00 China time
    settings_ = {"min_gap_seconds": 20, "jitter_seconds": 25, "daily_messages": 150, "warmup_days": 0}
    witness: list[tuple[str, str, float]] = []
    workers, engines = _workers(pacing_url, clock, settings_, 5, witness)
    touches = [Touch(i, i % 5, f"t{i}") for i in range(400)]
    run_burst(workers, touches, clock, until=clock() + 3 * DAY)
    check_pacing(Policy(**settings_), touches, witness, 1_767_225_600.0)
    assert len(witness) == 400
    # each account's touches went out in the order they were due
    for a in range(5):
        sent = [int(text[1:]) for account, text, _ in witness if account == f"acct{a}"]
        assert sent == sorted(sent)
    for e in engines:
        e.dispose()


def test_a_forced_logout_mid_burst_pauses_then_resumes_with_nothing_lost_or_twice(
    fake: Any, pacer: Pacer, clock: FakeClock, account_config: dict[str, Any]
) -> None:
    """Over real gRPC; the fake's own record of deliveries is the witness.  The
    account is logged out after four sends; its touches wait (deferred, not
    attempted) until the intake sees the re-login, then go out in order."""
    channel = PersonalWeChatChannel(account_config, {"token": TOKEN}, pacer=pacer, timeout=1.0)
    account = fake.state.account(TOKEN)
    touches = [Touch(i, 0, f"第{i}条") for i in range(12)]
    logged_out_once = []

    def step(now: float) -> None:
        if len(account.sent) == 4 and not logged_out_once:
            fake.state.logout(account)
            logged_out_once.append(now)
        elif not account.logged_in and any("logged_out" in t.reasons for t in touches):
            fake.state.login(account)  # the staff member scanned the QR code again
        for event in channel.gateway.events(idle_timeout=0.05):
            intake.handle(None, None, channel, event)  # type: ignore[arg-type]  # login/logout need no host

    def to_contact(touch: Touch) -> OutboundMessage:
        return attrs.evolve(message(touch), recipient={"external_id": CONTACTS[0].wxid})

    run_burst([[channel]], touches, clock, until=clock() + DAY, on_step=step, make_message=to_contact)
    assert [d.content for d in account.sent] == [f"第{i}条" for i in range(12)]
    assert logged_out_once and any("logged_out" in t.reasons for t in touches)
    assert all(t.sent_at is not None for t in touches)


def test_prometheus_metrics_per_account_come_from_the_shared_rows(pacer: Pacer, clock: FakeClock) -> None:
    from prometheus_client import CollectorRegistry, generate_latest
    from sopflow_personal_wechat.metrics import AccountMetrics

    registry = CollectorRegistry()
    registry.register(AccountMetrics(pacer.engine))  # type: ignore[arg-type]
    witness: list[tuple[str, str, float]] = []
    channel = PersonalWeChatChannel(
        {"adapter": "wechaty", "endpoint": "10.0.0.9:8788", "quiet_start": 0, "quiet_end": 0},
        {"token": "token-000001"},
        gateway=RecordingGateway("a", clock, witness),
        pacer=pacer,
    )
    channel.send(message(Touch(1, 0, "first")))
    with pytest.raises(DeferredError):
        channel.send(message(Touch(2, 0, "second")))
    pacer.pause(channel.key, 60, "restricted: test", restriction=True)
    text = generate_latest(registry).decode()
    label = 'account="wechaty:10.0.0.9:8788"'
    assert f"sopflow_personal_wechat_sent_total{{{label}}} 1.0" in text
    assert f"sopflow_personal_wechat_deferred_total{{{label}}} 1.0" in text
    assert f"sopflow_personal_wechat_restrictions_total{{{label}}} 1.0" in text
    assert f'sopflow_personal_wechat_today{{{label},kind="message"}} 1.0' in text
    assert "token-000001" not in text


def test_a_restriction_pauses_the_account_then_it_resumes(kit: Any, pacer: Pacer, clock: FakeClock) -> None:
    """Over each adapter: the platform refuses, the account pauses for the backoff with
    no gateway call meanwhile, and the touch goes out once after it."""
    config = {
        "adapter": kit.adapter,
        "endpoint": kit.fake.endpoint,
        "tls": False,
        "restriction_backoff_minutes": 60,
    }
    channel = PersonalWeChatChannel(config, {"token": TOKEN}, pacer=pacer, timeout=1.0)
    kit.account.tolerance.per_minute = 0  # WeChat's risk control says no to everything
    touch = attrs.evolve(message(Touch(1, 0, "你好")), recipient={"external_id": CONTACTS[0].wxid})
    with pytest.raises(DeferredError) as info:
        channel.send(touch)
    assert info.value.reason == "restricted" and info.value.retry_after == pytest.approx(3600)
    assert pacer.row(channel.key)["restrictions"] == 1 and pacer.row(channel.key)["counts"] == {"message": 0}
    calls = len(kit.fake.calls)
    clock.advance(1800)
    with pytest.raises(DeferredError) as held:
        channel.send(touch)
    assert held.value.reason.startswith("paused: restricted") and len(kit.fake.calls) == calls
    kit.account.tolerance.per_minute = 20
    clock.advance(1801)
    assert channel.send(touch).status == "sent"
    assert [d.content for d in kit.account.sent] == ["你好"]
