"""Forecast bench (not a test): the 40-day send calendar of N enrolled customers,
against running the same SOP on the manual clock over the same 40 days.

    uv run python bench/forecast.py --customers 100000 [--days 40] [--no-clock-run]

One SQLite file in a temporary directory; the customers are bulk-inserted
(setup, not timed) and enrolled by starting a nurture SOP of three steps (two
on day 1, so the one-push-a-day cap defers half of them, and one on day 3).
Timed: ``GET /api/v1/forecast?days=N`` through the API, then the manual clock's
run of the same horizon (``run_to``: claim and deliver every touch).  Printed:
both wall times, their ratio, and whether the forecast's sends equal the
run's (counted per local day).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load import api_client, insert_customers, ok, open_app


def send(text: str) -> dict:
    return {"type": "send", "channel": "log", "touchpoint": "private_chat", "text": text}


DEFINITION = {
    "kind": "nurture",
    "target": {"rule": {"tags": {"any_of": ["fc"]}}},
    "steps": [
        {"day": 1, "at": "09:00", "actions": [send("one")]},
        {"day": 1, "at": "10:00", "actions": [send("two")]},
        {"day": 3, "at": "09:00", "actions": [send("three")]},
    ],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=40)
    ap.add_argument("--no-clock-run", action="store_true", help="time the forecast only")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from sopflow.db import make_engine
    from sopflow.migrate import upgrade
    from sopflow.models import Touch
    from sqlalchemy import select

    from tests.sop_support import run_to

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/forecast.db"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        app = open_app(url)
        with api_client(app) as api:
            insert_customers(app, api.tenant_id, ({"tags": ["fc"]} for _ in range(args.customers)))
            sop = ok(api.post("/api/v1/sops", json={"name": "fc", "definition": DEFINITION}), 201)["id"]
            t0 = time.perf_counter()
            ok(api.post(f"/api/v1/sops/{sop}/start"))
            run_to(app, app.clock, app.clock.now())  # the audience is enrolled
            enrol_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            body = ok(api.get(f"/api/v1/forecast?days={args.days}"))
            forecast_s = time.perf_counter() - t0
            tz = ZoneInfo(body["timezone"])
            predicted: dict[str, int] = {}
            for row in body["calendar"]:
                if row["sent"]:
                    predicted[row["day"]] = predicted.get(row["day"], 0) + row["sent"]
            print(f"customers={args.customers} days={args.days} enrol_s={enrol_s:.2f}")
            totals = body["totals"]
            print(f"forecast_s={forecast_s:.2f} sends={totals['sent']} deferrals={totals['deferrals']}")
            if args.no_clock_run:
                return 0
            t0 = time.perf_counter()
            run_to(app, app.clock, app.clock.now() + timedelta(days=args.days), max_steps=1_000_000)
            clock_s = time.perf_counter() - t0
            actual: dict[str, int] = {}
            with app.engine.connect() as conn:
                for (sent_at,) in conn.execute(select(Touch.sent_at).where(Touch.sent_at.is_not(None))):
                    day = sent_at.astimezone(tz).date().isoformat()
                    actual[day] = actual.get(day, 0) + 1
            print(f"manual_clock_run_s={clock_s:.2f} ratio_forecast_to_run={forecast_s / clock_s:.3f}")
            print(f"forecast_equals_run_per_day={predicted == actual}")
        app.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
