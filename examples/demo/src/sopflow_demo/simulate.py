"""Simulated weeks of customers: they scan the live codes (31, 23 and 41 on the
first three days, as in seed 000), staff tap "send" on mass-send tasks, some
customers reply with keywords, buy, buy again, or delete the staff member.

Everything happens through the same doors as in production: WeCom callbacks
(real HTTP, real crypto), WeCom's conversation archive for what customers write
to staff (``archive.py``: the Finance SDK's C fake, pulled by the plugin's job),
the 有赞 shop's signed pushes for orders, and the hosted survey page, answered as
a browser would.  The manual
clock jumps from one planned happening to the next; between them the engine
dispatches whatever fell due, exactly on time.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import attrs
import sqlalchemy as sa
from sopflow.models import Touch, TouchStatus

from sopflow_demo.crm import plan_crm
from sopflow_demo.journey import KEYWORD_RULES
from sopflow_demo.scenario import SOURCES, STAFF, Setup
from sopflow_demo.shop import SKIN_TYPES, fill_survey, give_phone, push_paid, survey_link
from sopflow_demo.world import World

#: Seed 000's first three days of arrivals; later days draw from ``LATER_DAY``.
FIRST_DAYS = (31, 23, 41)
LATER_DAY = (15, 40)
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = (
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "洋",
    "艳",
    "勇",
    "军",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "霞",
)
REPLIES = ("多少钱", "有优惠券吗", "想了解一下资料", "可以试用吗", "谢谢", "好的收到", "怎么下单")
#: What a staff member answers a price question, and tells a colleague about it.
PRICE_ANSWER = "您好，这款防晒霜 129 元，新客专享 9 折"
COLLEAGUE_NOTE = "有位客户在问价格，我来跟进"
PRICE_KEYWORDS = tuple(KEYWORD_RULES[0]["keywords"])
#: The share of customers who open the survey link they got and answer it.
SURVEY_RATE = 0.3


@attrs.define
class Persona:
    external_id: str
    name: str
    staff: str
    source: str
    reply_rate: float
    buys_on_day: int | None
    rebuys_on_day: int | None
    churns_on_day: int | None


@attrs.define
class Tally:
    """What the simulation did, to check the engine's numbers against."""

    arrived: int = 0
    churned: int = 0
    orders: int = 0
    buyers: int = 0
    forms: int = 0
    oily: int = 0
    replies: int = 0
    confirmations: int = 0
    by_source: Counter[str] = attrs.Factory(Counter)


class Simulation:
    def __init__(self, world: World, setup: Setup, seed: int, arrival_days: int, days: int) -> None:
        self.world, self.setup, self.days = world, setup, days
        self.rng = random.Random(seed)
        self.seed = seed
        self._received: Counter[str] = Counter()
        self.start = world.clock.now()
        self.tally = Tally()
        self._agenda: list[tuple[datetime, int, Callable[[], bool | None]]] = []
        self._seq = itertools.count()
        self._people: dict[str, Persona] = {}
        self._orders: Counter[str] = Counter()
        self._churned: set[str] = set()
        for day in range(arrival_days):
            count = FIRST_DAYS[day] if day < len(FIRST_DAYS) else self.rng.randint(*LATER_DAY)
            for _ in range(count):
                self._plan_arrival(day)
        self.crm = plan_crm(self, arrival_days)

    # -- planning ---------------------------------------------------------------------------

    def _at(self, when: datetime, action: Callable[[], bool | None]) -> None:
        heapq.heappush(self._agenda, (when, next(self._seq), action))

    def _local(self, day: int, hour: float) -> datetime:
        return self.start + timedelta(days=day, hours=hour)

    def _plan_arrival(self, day: int) -> None:
        n = len(self._people) + 1
        rng = self.rng
        person = Persona(
            external_id=f"wmDemo{n:05d}",
            name=rng.choice(SURNAMES) + rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.6 else ""),
            staff=rng.choice(STAFF),
            source=SOURCES[0] if rng.random() < 0.6 else SOURCES[1],
            reply_rate=rng.choice((0.0, 0.1, 0.3, 0.6)),
            buys_on_day=rng.randint(0, 9) if rng.random() < 0.35 else None,
            rebuys_on_day=None,
            churns_on_day=rng.randint(1, 20) if rng.random() < 0.08 else None,
        )
        if person.buys_on_day is not None and rng.random() < 0.3:
            person.rebuys_on_day = person.buys_on_day + rng.randint(3, 25)
        self._people[person.external_id] = person
        arrive = self._local(day, rng.uniform(0.5, 12.5))  # start is 09:00 local: 09:30–21:30
        self._at(arrive, lambda: self._arrive(person, day))

    # -- happenings -------------------------------------------------------------------------

    def _arrive(self, p: Persona, day: int) -> bool:
        self.world.fake.add_customer(p.staff, p.external_id, p.name, state=p.source)
        self.tally.arrived += 1
        self.tally.by_source[p.source] += 1
        self._order_at(p, p.buys_on_day, day)
        self._order_at(p, p.rebuys_on_day, day)
        if p.churns_on_day is not None:
            self._at(self._local(day + p.churns_on_day, self.rng.uniform(0, 12)), lambda: self._churn(p))
        return True

    def _order_at(self, p: Persona, after_days: int | None, day: int) -> None:
        if after_days is not None:
            self._at(self._local(day + after_days, self.rng.uniform(1, 12)), lambda: self._order(p))

    def _order(self, p: Persona) -> None:
        if p.external_id in self._churned:
            return
        self._orders[p.external_id] += 1
        count = self._orders[p.external_id]
        if count == 1:  # to order in the shop, the buyer gives the staff member their phone number
            give_phone(self.setup, p.external_id)
            self.tally.buyers += 1
        amount = self.rng.choice((89, 129, 199))
        push_paid(self.setup, p.external_id, count, amount, self.world.clock.now())
        self.tally.orders += 1

    def _answer_survey(self, p: Persona, link: str, skin_type: str) -> None:
        if p.external_id in self._churned:
            return
        fill_survey(self.setup, link, skin_type)
        self.tally.forms += 1
        self.tally.oily += skin_type == "油性"

    def _churn(self, p: Persona) -> None:
        self.world.fake.delete_follow_user(p.staff, p.external_id)
        self._churned.add(p.external_id)
        self.tally.churned += 1

    def _reply(self, p: Persona, text: str) -> None:
        """The customer writes to the staff member: WeCom archives it (no callback);
        a price question gets the staff member's answer ten minutes later."""
        if p.external_id in self._churned:
            return
        now = self.world.clock.now()
        self.world.archive.customer_says(p.external_id, p.staff, text, now)
        self.tally.replies += 1
        if any(k in text for k in PRICE_KEYWORDS):
            self._at(now + timedelta(minutes=10), lambda: self._answer_price(p))

    def _answer_price(self, p: Persona) -> None:
        if p.external_id in self._churned:
            return
        now, archive = self.world.clock.now(), self.world.archive
        archive.staff_says(p.staff, p.external_id, PRICE_ANSWER, now)
        colleague = STAFF[(STAFF.index(p.staff) + 1) % len(STAFF)]
        archive.colleague_says(p.staff, colleague, COLLEAGUE_NOTE, now)

    def _staff_check_phones(self) -> None:
        """Every hour in working time, staff tap "send" on what waits for them;
        customers who got a message may answer within a few hours."""
        fake, now = self.world.fake, self.world.clock.now()
        with fake.lock:
            waiting = [
                (msgid, userid)
                for msgid, task in fake.tasks.items()
                for userid in task.recipients
                if userid not in task.send_time
            ]
            moments = [jobid for jobid, m in fake.moments.items() if m.get("status") == 1]
        for msgid, userid in waiting:
            fake.confirm(msgid, userid)
            self.tally.confirmations += 1
            link = survey_link(fake.tasks[msgid].content.get("text", {}).get("content", ""))
            for recipient, status in fake.tasks[msgid].recipients[userid].items():
                p = self._people.get(recipient)
                if status != 1 or p is None:
                    continue
                # Keyed on the customer and how many messages they got, not on the order
                # the engine sent in (which hash seeds may change): same seed, same run.
                self._received[recipient] += 1
                rng = random.Random(f"{self.seed}:{recipient}:{self._received[recipient]}")
                if link is not None:
                    self._plan_survey(p, link, now)
                if rng.random() < p.reply_rate:
                    text = rng.choice(REPLIES)
                    self._at(
                        now + timedelta(hours=rng.uniform(0.2, 3)), lambda p=p, t=text: self._reply(p, t)
                    )
        for jobid in moments:
            fake.confirm_moment(jobid)

    def _plan_survey(self, p: Persona, link: str, now: datetime) -> None:
        rng = random.Random(f"{self.seed}:{p.external_id}:survey")
        if rng.random() < SURVEY_RATE:
            skin_type = rng.choice(SKIN_TYPES)
            self._at(
                now + timedelta(hours=rng.uniform(0.2, 6)), lambda: self._answer_survey(p, link, skin_type)
            )

    # -- the loop ----------------------------------------------------------------------------

    def run(self, on_hour: Callable[[datetime], None] | None = None, max_steps: int = 200_000) -> Tally:
        """Walk the clock to the end in whole hours, firing happenings in time order;
        hours in which nothing can happen are skipped."""
        world, clock = self.world, self.world.clock
        end = self.start + timedelta(days=self.days)
        hour = self.start
        for _ in range(max_steps):
            if hour > end:
                break
            while self._agenda and self._agenda[0][0] <= hour:
                when, _, action = heapq.heappop(self._agenda)
                if when > clock.now():
                    clock.set(when)
                    world.settle()
                if action():  # an arrival: a running scheduler sends the welcome within WeCom's 20 s
                    world.settle()
            if hour > clock.now():
                clock.set(hour)
            world.pull_archive()  # what customers wrote since the last pull reaches sopflow
            world.settle()
            world.advance_audiences()
            world.run_jobs()
            if self._working(hour):
                self._staff_check_phones()
                world.poll_confirmations()
            if on_hour is not None:
                on_hour(hour)
            hour = self._next_hour(hour, end)
        else:
            raise RuntimeError("the simulation did not reach its end within max_steps")
        return self.tally

    @staticmethod
    def _working(hour: datetime) -> bool:
        return 9 <= hour.hour <= 22

    def _next_hour(self, hour: datetime, end: datetime) -> datetime:
        """The next whole hour at which something is planned, due, or waiting for staff."""
        step = timedelta(hours=1)
        nxt = hour + step
        if self._waiting_for_staff() and self._working(nxt):
            return nxt
        candidates = [end + step]
        if self._agenda:
            candidates.append(self._agenda[0][0])
        due = self._next_due()
        if due is not None:
            candidates.append(due)
        if self._waiting_for_staff():
            morning = hour.replace(hour=9) + (step * 24 if hour.hour >= 9 else timedelta(0))
            candidates.append(morning)
        soonest = min(candidates)
        whole = self.start + step * -(-(soonest - self.start) // step)  # round up to a whole hour
        return max(nxt, whole)

    def _next_due(self) -> datetime | None:
        with self.world.app.tx() as s:
            return s.scalar(sa.select(sa.func.min(Touch.due_at)).where(Touch.status == TouchStatus.SCHEDULED))

    def _waiting_for_staff(self) -> bool:
        fake = self.world.fake
        with fake.lock:
            if any(m.get("status") == 1 for m in fake.moments.values()):
                return True
            return any(u not in t.send_time for t in fake.tasks.values() for u in t.recipients)

    def people(self) -> dict[str, Any]:
        return dict(self._people)
