"""One worker process of the multi-process burst test (``test_pw_processes.py``).

``python pw_burst_worker.py <pacing_url> <redis_url> <worker> <accounts> <policy json> [<endpoints json>]``

The test's driver owns the manual clock and the queue, both in Redis: the
clock is ``pw:clock`` (epoch seconds), due touches are the sorted set
``pw:due`` (member = zero-padded touch id, score = when it is due).  In each
round (``pw:round``) the worker takes due touches one by one, sends each
through its own ``PersonalWeChatChannel`` (its own database engine, its own
pacer: the only thing the two workers share is the pacing rows), puts a
deferred touch back at the time the channel names and records the reason, and
says it is done with the round (``pw:done:<worker>``).  The recording gateway
records every send in ``pw:sent`` (the witness); with ``endpoints`` each
account is a fake puppet service of the test over real gRPC instead, and the
fakes' own records are the witness.  ``pw:round`` = -1 ends the process.
"""

from __future__ import annotations

import json
import random
import sys
import time

import redis
import sqlalchemy as sa
from pw_support import RecordingGateway, Touch, message
from sopflow_personal_wechat.adapters.wechaty import WechatyGateway
from sopflow_personal_wechat.channel import PersonalWeChatChannel
from sopflow_personal_wechat.fake.scenario import TOKEN
from sopflow_personal_wechat.pacing import Pacer
from sopflow_sdk import DeferredError, Secret


class RedisWitness:
    """``append`` of the recording gateway, into a Redis list every process shares."""

    def __init__(self, r: redis.Redis) -> None:
        self.r = r

    def append(self, sent: tuple[str, str, float]) -> None:
        self.r.rpush("pw:sent", json.dumps(sent))

    def __len__(self) -> int:
        return int(self.r.llen("pw:sent"))


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
    witness = RedisWitness(r)
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
    seen = 0
    while True:
        current = int(r.get("pw:round") or 0)
        if current < 0:
            break
        if current == seen:
            time.sleep(0.001)
            continue
        seen, now[0] = current, float(r.get("pw:clock") or 0)
        while taken := take_due(r, now[0]):
            deliver(r, worker, channels, taken, now[0])
        r.set(f"pw:done:{worker}", seen)
    engine.dispose()


def take_due(r: redis.Redis, now: float) -> list[bytes]:
    """Up to 50 due touches, in due order, each taken by one worker only (ZREM answers 1 once)."""
    members = r.zrangebyscore("pw:due", "-inf", now, start=0, num=50)
    pipe = r.pipeline()
    for member in members:
        pipe.zrem("pw:due", member)
    return [m for m, won in zip(members, pipe.execute(), strict=True) if won]


def deliver(
    r: redis.Redis, worker: int, channels: list[PersonalWeChatChannel], taken: list[bytes], now: float
) -> None:
    """Send each touch as the engine would; a deferred one is due again when the channel says."""
    accounts = len(channels)
    pipe = r.pipeline()
    for member in taken:
        touch_id = int(member)
        touch = Touch(touch_id, touch_id % accounts, f"t{touch_id}")
        try:
            channels[touch.channel_index].send(message(touch))
            pipe.hset("pw:sent_at", member, now)
            pipe.hincrby("pw:by_worker", str(worker), 1)
        except DeferredError as exc:
            pipe.rpush(f"pw:reasons:{touch_id}", exc.reason or "")
            pipe.zadd("pw:due", {member: now + float(exc.retry_after or 1)})
    pipe.execute()


if __name__ == "__main__":
    endpoints = json.loads(sys.argv[6]) if len(sys.argv) > 6 else []
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), json.loads(sys.argv[5]), endpoints)
