"""One worker process of the multi-process burst tests (``test_pw_processes.py``).

``python pw_burst_worker.py <pacing_url> <redis_url> <worker> <accounts> <policy json> [<endpoints json>]``

The test's driver owns the manual clocks (one per account: no rule crosses
accounts) and the queues, all in Redis (``ROUND`` in the test): each
account's waiting touches in due order, and when each account is due next.
For each round it takes the head touches of every account at the instant it
is due — one per worker and account, so two touches of one account race for
its one slot through the two processes' own pacers, whose only shared thing
is the pacing rows — and pushes each worker its share on ``pw:go:<worker>``
as ``<round> <logged-out accounts|-> <account>:<touch>:<instant> ...`` (a
round of ``-1`` ends the process).

The worker sends each touch through its own ``PersonalWeChatChannel``; a
deferred one goes back to the head of its account's queue, the account is due
again when the channel says, and the reason is recorded.  The results, the
witness and "done" (``pw:done``) go back in one pipelined round trip: two
round trips a round, however many touches it holds.  This is the engine's
behaviour with the channel's deferrals (due again at "not before", nothing
counted as an attempt), except that the touches behind an account's head wait
behind it instead of each being deferred on its own — which is what makes
10,000 touches cheap.

The recording gateway records every send in ``pw:sent`` (the witness) and
refuses sends of the accounts the driver says are logged out; with
``endpoints`` each account is a fake puppet service of the test over real
gRPC instead, and the fakes' own records are the witness.
"""

from __future__ import annotations

import json
import random
import sys
from typing import Any

import redis
import sqlalchemy as sa
from pw_support import RecordingGateway, Touch, message
from sopflow_personal_wechat.adapters.wechaty import WechatyGateway
from sopflow_personal_wechat.channel import PersonalWeChatChannel
from sopflow_personal_wechat.fake.scenario import TOKEN
from sopflow_personal_wechat.pacing import Pacer
from sopflow_sdk import DeferredError, Secret

#: a worker that hears nothing for this long (real seconds) has lost its driver
IDLE_EXIT = 120


class BufferedWitness:
    """``append`` of the recording gateway, flushed into the Redis list ``pw:sent``
    (shared by every process) with the round's other results."""

    def __init__(self) -> None:
        self.pending: list[str] = []
        self.count = 0

    def append(self, sent: tuple[str, str, float]) -> None:
        self.pending.append(json.dumps(sent))
        self.count += 1

    def __len__(self) -> int:  # the recording gateway's message ids
        return self.count

    def flush(self, pipe: Any) -> None:
        if self.pending:
            pipe.rpush("pw:sent", *self.pending)
            self.pending = []


def main(
    url: str, redis_url: str, worker: int, accounts: int, policy: dict[str, int], endpoints: list[str]
) -> None:
    r = redis.Redis.from_url(redis_url)
    now = [0.0]  # the clock of the current round: it moves only between rounds

    def clock() -> float:
        return now[0]

    engine = sa.create_engine(url, connect_args={"timeout": 30} if url.startswith("sqlite") else {})
    if url.startswith("sqlite"):  # a test database that dies with the test needs no fsync per commit
        sa.event.listen(engine, "connect", lambda conn, _: conn.execute("PRAGMA synchronous=OFF"))
    pacer = Pacer(engine, clock, random.Random(worker))
    witness = BufferedWitness()
    channels = [
        PersonalWeChatChannel(
            {"adapter": "wechaty", "endpoint": endpoints[a] if endpoints else f"10.0.0.{a}:8788", **policy},
            {"token": TOKEN},
            # over real gRPC to the test's fake puppet services, else the recording gateway
            gateway=WechatyGateway(endpoints[a], Secret(TOKEN), tls=False, timeout=5.0)
            if endpoints
            else RecordingGateway(f"acct{a}", clock, witness),  # type: ignore[arg-type]
            pacer=pacer,
        )
        for a in range(accounts)
    ]
    try:
        while started := r.blpop([f"pw:go:{worker}"], timeout=IDLE_EXIT):
            number, out, *work = started[1].decode().split(" ")
            if int(number) < 0:
                break
            if not endpoints:  # the fakes know their own login state
                logged_out = set() if out == "-" else {int(a) for a in out.split(",")}
                for a, channel in enumerate(channels):
                    channel.gateway.logged_in = a not in logged_out  # type: ignore[attr-defined]
            taken = [(int(a), int(t), float(at)) for a, t, at in (item.split(":") for item in work)]
            deliver(r, worker, channels, taken, witness, now)
    finally:
        for channel in channels:
            channel.gateway.close()
        engine.dispose()


def deliver(
    r: redis.Redis,
    worker: int,
    channels: list[PersonalWeChatChannel],
    taken: list[tuple[int, int, float]],
    witness: BufferedWitness,
    clock: list[float],
) -> None:
    """Send each touch as the engine would, at its account's instant (``clock`` is what
    the pacer and the recording gateway read); a deferred one goes back to the head of
    its account's queue, due again when the channel says.  One round trip back."""
    pipe = r.pipeline(transaction=False)
    sent = []
    for account, touch_id, now in taken:
        clock[0] = now
        touch = Touch(touch_id, account, f"t{touch_id}")
        try:
            channels[account].send(message(touch))
            pipe.hset("pw:sent_at", str(touch_id), repr(now))
            sent.append(str(account))
        except DeferredError as exc:
            pipe.rpush(f"pw:reasons:{touch_id}", exc.reason or "")
            pipe.lpush(f"pw:q:{account}", touch_id)
            # GT: when both workers' touches were held, the later "not before" wins
            pipe.zadd("pw:due", {str(account): now + float(exc.retry_after or 1)}, gt=True)
    witness.flush(pipe)
    if sent:
        pipe.hincrby("pw:by_worker", str(worker), len(sent))
    pipe.rpush("pw:done", " ".join([str(worker), *sent]))
    pipe.execute()


if __name__ == "__main__":
    endpoints = json.loads(sys.argv[6]) if len(sys.argv) > 6 else []
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), json.loads(sys.argv[5]), endpoints)
