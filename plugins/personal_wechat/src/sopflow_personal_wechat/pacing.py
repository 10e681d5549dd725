"""Ban-safe pacing, decided in the database before any gateway call.

``Pacer.admit(key, kind)`` answers "send now" (and takes the slot) or "not
before T, because ...": a minimum gap between sends with random human-like
jitter, a daily cap per kind (messages, group sends, moments, accepted
friends) that ramps up over a warm-up period for a newly connected account,
quiet hours, and a pause after a restriction or a logout.  The channel turns
"not before T" into ``DeferredError``, so the engine re-schedules the touch
without counting an attempt: nothing sleeps, nothing is dropped.

Every decision is one compare-and-swap on the account's row (``store.pacing``),
so any number of worker processes share one gap and one set of caps.
The defaults and why each is what it is: docs/plugins/personal-wechat.md.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import attrs
import sqlalchemy as sa

from sopflow_personal_wechat.store import pacing

Kind = Literal["message", "group", "moment", "friend"]
KINDS: tuple[Kind, ...] = ("message", "group", "moment", "friend")
_CAP_SETTING = {
    "message": "daily_messages",
    "group": "daily_group_sends",
    "moment": "daily_moments",
    "friend": "daily_friends",
}
#: how often a logged-out account is looked at again
LOGGED_OUT_RECHECK = 300.0
_TRIES = 50


@attrs.frozen
class Policy:
    """An account's pacing settings (the channel settings' names and defaults)."""

    min_gap_seconds: int = 20
    jitter_seconds: int = 25
    daily_messages: int = 300
    daily_group_sends: int = 50
    daily_moments: int = 3
    daily_friends: int = 30
    quiet_start: int = 22
    quiet_end: int = 8
    utc_offset_hours: int = 8
    warmup_days: int = 7
    restriction_backoff_minutes: int = 240

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Policy:
        names = {f.name for f in attrs.fields(cls)}
        return cls(**{k: int(v) for k, v in config.items() if k in names and v is not None})

    def cap(self, kind: Kind, day_number: int) -> int:
        """Today's cap: the full cap, or during the warm-up a share growing by day."""
        full = int(getattr(self, _CAP_SETTING[kind]))
        if day_number >= self.warmup_days or full == 0:
            return full
        return max(1, math.ceil(full * (day_number + 1) / (self.warmup_days + 1)))

    def local(self, ts: float) -> datetime:
        return datetime.fromtimestamp(ts, UTC) + timedelta(hours=self.utc_offset_hours)

    def quiet_until(self, ts: float) -> float | None:
        """When quiet hours end, if ``ts`` is inside them."""
        if self.quiet_start == self.quiet_end:
            return None
        local = self.local(ts)
        inside = (
            self.quiet_start <= local.hour < self.quiet_end
            if self.quiet_start < self.quiet_end
            else local.hour >= self.quiet_start or local.hour < self.quiet_end
        )
        if not inside:
            return None
        end = local.replace(hour=self.quiet_end, minute=0, second=0, microsecond=0)
        if end <= local:
            end += timedelta(days=1)
        return ts + (end - local).total_seconds()

    def next_day(self, ts: float) -> float:
        local = self.local(ts)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        return ts + (midnight - local).total_seconds()


@attrs.frozen
class Admission:
    """``ok``: go now (the slot is taken).  Otherwise wait until ``not_before``."""

    ok: bool
    not_before: float = 0.0
    reason: str = ""


class Pacer:
    """The pacing of every account on one database (``engine``)."""

    def __init__(
        self, engine: sa.Engine, clock: Callable[[], float], rng: random.Random | None = None
    ) -> None:
        self.engine, self.clock = engine, clock
        self.rng = rng or random.SystemRandom()

    def __repr__(self) -> str:
        return f"<Pacer {self.engine.url.render_as_string(hide_password=True)}>"

    def row(self, key: str) -> dict[str, Any]:
        """The account's row (created on first use: "connected" now)."""
        with self.engine.begin() as c:
            found = c.execute(sa.select(pacing).where(pacing.c.account_key == key)).mappings().first()
            if found is not None:
                return dict(found)
        now = self.clock()
        fresh = {
            "account_key": key,
            "version": 0,
            "connected_at": now,
            "next_at": 0.0,
            "day": "",
            "counts": {},
            "paused_until": 0.0,
            "paused_reason": "",
            "restrictions": 0,
            "deferred": 0,
            "sent": 0,
            "logged_in": True,
            "qr_url": "",
            "last_heartbeat": None,
        }
        try:
            with self.engine.begin() as c:
                c.execute(sa.insert(pacing).values(**fresh))
        except sa.exc.IntegrityError:  # another worker made it first
            return self.row(key)
        return fresh

    def _swap(self, key: str, change: Callable[[dict[str, Any]], Any]) -> Any:
        """Apply ``change`` to the row (it edits the dict, returns a result) atomically:
        read and compare-and-swap on ``version`` in one transaction, again if another
        worker changed the row in between."""
        for _ in range(_TRIES):
            with self.engine.begin() as c:
                found = c.execute(sa.select(pacing).where(pacing.c.account_key == key)).mappings().first()
                row = dict(found) if found is not None else None
                if row is None:
                    done = 0
                else:
                    result = change(row)
                    values = {k: v for k, v in row.items() if k not in ("account_key", "version")}
                    done = c.execute(
                        sa.update(pacing)
                        .where(pacing.c.account_key == key, pacing.c.version == row["version"])
                        .values(**values, version=row["version"] + 1)
                    ).rowcount
            if row is None:
                self.row(key)  # first use: make the row, then decide on it
            elif done == 1:
                return result
        raise RuntimeError(f"pacing row {key!r} kept changing under {_TRIES} tries")

    def admit(self, key: str, kind: Kind, policy: Policy) -> Admission:
        """Take a slot for one ``kind`` send now, or say when to come back and why."""
        now = self.clock()

        def decide(row: dict[str, Any]) -> Admission:
            today = policy.local(now).date().isoformat()
            if row["day"] != today:
                row["day"], row["counts"] = today, {}
            verdict = self._hold(row, kind, policy, now)
            if verdict is not None:
                row["deferred"] += 1
                return verdict
            counts = dict(row["counts"])
            counts[kind] = counts.get(kind, 0) + 1
            row["counts"] = counts
            row["sent"] += 1
            if kind != "friend":  # accepting a friend is not a message: it keeps the gap free
                row["next_at"] = now + policy.min_gap_seconds + self.rng.uniform(0, policy.jitter_seconds)
            return Admission(True)

        return self._swap(key, decide)

    def _hold(self, row: Mapping[str, Any], kind: Kind, policy: Policy, now: float) -> Admission | None:
        if row["paused_until"] > now:
            return Admission(False, row["paused_until"], f"paused: {row['paused_reason']}"[:50])
        if not row["logged_in"]:
            return Admission(False, now + LOGGED_OUT_RECHECK, "logged_out")
        quiet = policy.quiet_until(now)
        if quiet is not None:
            return Admission(False, quiet, "quiet_hours")
        day_number = int((now - row["connected_at"]) // 86_400)
        if row["counts"].get(kind, 0) >= policy.cap(kind, day_number):
            return Admission(False, policy.next_day(now), f"daily_cap:{kind}")
        if kind != "friend" and row["next_at"] > now:
            return Admission(False, row["next_at"], "min_gap")
        return None

    def refund(self, key: str, kind: Kind) -> None:
        """Give back a slot whose send never left (the gateway was unreachable)."""

        def give_back(row: dict[str, Any]) -> None:
            counts = dict(row["counts"])
            counts[kind] = max(0, counts.get(kind, 0) - 1)
            row["counts"] = counts
            row["sent"] = max(0, row["sent"] - 1)

        self._swap(key, give_back)

    def pause(self, key: str, seconds: float, reason: str, *, restriction: bool = False) -> float:
        """Hold every send of the account for ``seconds``; when it resumes."""
        until = self.clock() + seconds

        def hold(row: dict[str, Any]) -> float:
            row["paused_until"] = max(row["paused_until"], until)
            row["paused_reason"] = reason[:200]
            row["restrictions"] += int(restriction)
            return row["paused_until"]

        return self._swap(key, hold)

    def seen(self, key: str, **state: Any) -> None:
        """What the intake saw: ``logged_in``, ``qr_url``, ``last_heartbeat``."""

        def note(row: dict[str, Any]) -> None:
            row.update(state)  # logged_in=False holds every send until a login says True

        self._swap(key, note)
