"""S15 operator console board: open the board of a journey with N customers.

Ours: ``GET /console/board`` through the app (Litestar in-process, a signed-in
session): the session look-up, the per-stage counts, a first page of 20 cards
per stage with their tags, owner and last activity, and the rendered HTML — the
server's whole time for the page; also with a tag filter and a text filter.
The hardware bound: the two statements the page cannot do without,
run raw — the grouped count over ``customer_stages`` and one stage's first page.
Baseline: the API's board as JSON (the page's cost without session and HTML).
"""

from __future__ import annotations

import random
import re
from typing import Any

import sqlalchemy as sa

from bench.load import (
    START,
    Context,
    analyze,
    api_client,
    bulk_insert,
    figure,
    insert_customers,
    median,
    ok,
    open_app,
    timed,
)

NAME = "S15"
ORDER = 70
MUST_BE_ZERO = ("count_mismatch", "cards_missing", "filter_mismatch")
STAGES = [{"name": n} for n in ("新线索 new", "沟通中 talking", "到店 visit", "成交 won", "流失 lost")]
TAGS = ["vip", "咨询", "价格", "复购"]


def add_arguments(ap: Any) -> None:
    g = ap.add_argument_group("S15 console board")
    g.add_argument("--s15-customers", type=int, default=100_000, help="customers on the board (quick: 500)")


def _people(n: int, stage_ids: list[int]) -> Any:
    rng = random.Random(15)
    for i in range(n):
        yield {
            "display_name": f"客户 {i:06d}",
            "tags": [t for t in TAGS if rng.random() < 0.25],
            "stage_id": stage_ids[min(len(stage_ids) - 1, int(rng.expovariate(1.0)))],
        }


def _events(app: Any, tenant_id: int, first: int, n: int) -> None:
    """One event per customer, so each card's last activity is a real look-up."""
    from sopflow.models import Event

    rows = [
        {
            "tenant_id": tenant_id,
            "customer_id": first + i,
            "type": "message.received",
            "idempotency_key": f"s15-{i}",
            "occurred_at": START,
            "received_at": START,
            "payload": {},
            "source": "bench",
            "depth": 0,
            "evaluated_at": START,
        }
        for i in range(n)
    ]
    with app.engine.begin() as conn:
        bulk_insert(conn, Event.__table__, rows)


def run(ctx: Context) -> dict[str, Any]:
    from sopflow.engine.customers.console_sessions import sign_in
    from sopflow.models import Customer, CustomerStage

    n = 500 if ctx.quick else ctx.args.s15_customers
    db = ctx.database("s15")
    try:
        app = open_app(db.url)
        with api_client(app) as api:
            journey = ok(api.post("/api/v1/journeys", json={"name": "board", "stages": STAGES}), 201)
            stage_ids = [s["id"] for s in journey["stages"]]
            ctx.log(f"S15: loading {n:,} customers ({ctx.backend})")
            first = insert_customers(
                app, api.tenant_id, _people(n, stage_ids), pipeline_id=journey["pipeline_id"]
            )
            _events(app, api.tenant_id, first, n)
            analyze(app)
            with app.tx() as s:
                token, _ = sign_in(s, api.key, app.now(), 60)
            client = api.client
            client.cookies.set("sopflow_console", token, path="/console")
            page_url = f"/console/board?journey={journey['id']}"

            bearer = {"authorization": f"Bearer {api.key}"}

            def get(url: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
                r = client.get(url, params=params, headers=headers)
                if r.status_code != 200:
                    raise RuntimeError(f"{url} answered {r.status_code}: {r.text[:300]}")
                return r

            get(page_url)  # warm: templates compiled, the configuration cache filled
            runs: dict[str, list[float]] = {"page": [], "tag": [], "text": [], "api": [], "bound": []}
            last: dict[str, Any] = {}
            pid = journey["pipeline_id"]
            for _ in range(ctx.runs):
                for key, fn in (
                    ("page", lambda: get(page_url)),
                    ("tag", lambda: get(page_url, tag="vip")),
                    ("text", lambda: get(page_url, q="客户 0001")),
                    ("api", lambda: get(f"/api/v1/journeys/{journey['id']}/board", headers=bearer)),
                ):
                    seconds, last[key] = timed(fn)
                    runs[key].append(seconds)

                def bound() -> None:
                    with app.engine.connect() as conn:
                        conn.execute(
                            sa.select(CustomerStage.stage_id, sa.func.count())
                            .where(CustomerStage.pipeline_id == pid)
                            .group_by(CustomerStage.stage_id)
                        ).all()
                        conn.execute(
                            sa.select(Customer.id, Customer.display_name)
                            .join(CustomerStage, CustomerStage.customer_id == Customer.id)
                            .where(CustomerStage.pipeline_id == pid, CustomerStage.stage_id == stage_ids[0])
                            .order_by(Customer.id.desc())
                            .limit(21)
                        ).all()

                seconds, _ = timed(bound)
                runs["bound"].append(seconds)
            api_board = last["api"].json()
            with app.tx() as s:
                vip = s.scalar(
                    sa.text("SELECT count(*) FROM customer_tags WHERE tenant_id = :t AND tag = 'vip'"),
                    {"t": api.tenant_id},
                )
        app.dispose()
    finally:
        db.close()

    counts = [int(c) for c in re.findall(r"data-count>(\d+)<", last["page"].text)]
    cards = last["page"].text.count('class="card"')
    expected_cards = sum(min(20, c["count"]) for c in api_board["stages"])
    tag_counts = [int(c) for c in re.findall(r"data-count>(\d+)<", last["tag"].text)]
    bound_s = median(runs["bound"])
    rows = [
        {
            "id": "S15",
            "what": f"console board opens ({label})",
            "size": f"{n:,} customers, {len(STAGES)} stages",
            "ours": figure(median(runs[key]), 1, "pages/s", runs[key]),
            "baseline": figure(
                median(runs["api"]),
                1,
                "pages/s",
                runs["api"],
                what="the API's board (JSON, no session, no HTML)",
            ),
            "limit": figure(
                bound_s, 1, "pages/s", runs["bound"], what="the grouped count + one page, raw SQL"
            ),
            "bound": "the grouped count over customer_stages (one index scan of the pipeline's rows)",
        }
        for key, label in (
            ("page", "whole page, rendered"),
            ("tag", "filtered by tag"),
            ("text", "filtered by name text"),
        )
    ]
    counters = {
        "count_mismatch": abs(sum(counts) - n) + abs(sum(c["count"] for c in api_board["stages"]) - n),
        "cards_missing": abs(cards - expected_cards),
        "filter_mismatch": abs(sum(tag_counts) - (vip or 0)),
        "page_seconds": round(median(runs["page"]), 4),
    }
    return {"scenario": "S15", "title": "Operator console board", "rows": rows, "counters": counters}
