"""The demo's report: the engine's own numbers (read through the public API),
then checks of those numbers against the database, the fake WeCom and what the
simulation did.  Any disagreement makes ``sopflow demo`` exit non-zero."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sopflow.models import Customer, Enrollment, Event, Touch, TouchStatus

from sopflow_demo.archive import archive_checks, archive_figures, archive_markdown
from sopflow_demo.crm import crm_checks
from sopflow_demo.journey import KEYWORD_RULES, board_counts
from sopflow_demo.personal import personal_markdown
from sopflow_demo.scenario import SOURCES, Setup
from sopflow_demo.shop import shop_checks
from sopflow_demo.simulate import Tally
from sopflow_demo.world import World


def build_report(world: World, setup: Setup, tally: Tally, seed: int, days: int) -> dict[str, Any]:
    api = setup.api
    sops = []
    for name, sop_id in setup.sops.items():
        stats = api.get(f"/api/v1/sops/{sop_id}/stats")
        definition = api.get(f"/api/v1/sops/{sop_id}")["definition"]
        steps = []
        for step in stats["steps"]:
            spec = definition["steps"][step["step_index"]]
            when = f"day {spec['day']} {spec['at']}" if "day" in spec else f"after {spec.get('delay')}"
            steps.append(
                {
                    "step": step["step_index"] + 1,
                    "when": when,
                    "touchpoint": spec["actions"][0].get("touchpoint", "staff_notice"),
                    **{
                        k: step[k]
                        for k in (
                            "targeted",
                            "sent",
                            "awaiting_confirmation",
                            "deferred",
                            "replied",
                            "cancelled",
                            "skipped",
                            "failed",
                        )
                    },
                }
            )
        sops.append(
            {
                "name": name,
                "id": sop_id,
                **{
                    k: stats[k]
                    for k in (
                        "targeted",
                        "active",
                        "completed",
                        "ended_early",
                        "converted",
                        "conversion_rate",
                    )
                },
                "goal_window_days": stats["goal_window_days"],
                "steps": steps,
            }
        )
    report: dict[str, Any] = {
        "seed": seed,
        "days": days,
        "simulated": {
            "arrived": tally.arrived,
            "orders": tally.orders,
            "buyers": tally.buyers,
            "surveys_answered": tally.forms,
            "replies": tally.replies,
            "churned": tally.churned,
            "by_source": dict(tally.by_source),
        },
        "sops": sops,
        "wecom": _wecom_figures(world),
        "archive": archive_figures(world, setup),
    }
    if setup.journey_id is not None:
        report["board"] = board_counts(setup)
    report["checks"] = checks(world, setup, tally, report)
    return report


def _wecom_figures(world: World) -> dict[str, int]:
    fake = world.fake
    with fake.lock:
        delivered = sum(
            1
            for t in fake.tasks.values()
            for r in t.recipients.values()
            for status in r.values()
            if status == 1
        )
        return {
            "mass_send_tasks": len(fake.tasks),
            "delivered": delivered,
            "moments": len(fake.moments),
            "welcome_messages": len(fake.welcome_messages),
            "add_msg_template_accepted": sum(
                1 for r in fake.requests if r.path == "externalcontact/add_msg_template" and r.errcode == 0
            ),
        }


def _check(name: str, expected: Any, actual: Any) -> dict[str, Any]:
    return {"check": name, "expected": expected, "actual": actual, "ok": expected == actual}


def checks(world: World, setup: Setup, tally: Tally, report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each check compares two independent accounts of the same thing."""
    t = setup.tenant_id
    out = []
    with world.app.tx() as s:

        def count(q: Any) -> int:
            return s.scalar(q) or 0

        customers = sa.select(sa.func.count()).select_from(Customer).where(Customer.tenant_id == t)
        out.append(
            _check("customers in the database = customers who scanned", tally.arrived, count(customers))
        )
        by_source = dict(
            s.execute(
                sa.select(Customer.source, sa.func.count())
                .where(Customer.tenant_id == t)
                .group_by(Customer.source)
            ).all()
        )
        out.append(_check("customers per source", dict(tally.by_source), by_source))
        churned = customers.where(Customer.churned_at.is_not(None))
        out.append(_check("churned customers", tally.churned, count(churned)))
        events = sa.select(sa.func.count()).select_from(Event).where(Event.tenant_id == t)
        out.append(_check("order.paid events", tally.orders, count(events.where(Event.type == "order.paid"))))
        out.append(
            _check(
                "message.received events",
                tally.replies,
                count(events.where(Event.type == "message.received")),
            )
        )
        touches = sa.select(sa.func.count()).select_from(Touch).where(Touch.tenant_id == t)
        sent = count(touches.where(Touch.status == TouchStatus.SENT))
        out.append(_check("touches sent (database) = sum of SOP stats", sent, _stat_sum(report, "sent")))
        early = touches.where(Touch.sent_at < Touch.due_at)
        out.append(_check("touches sent before they were due", 0, count(early)))
        refs = [
            r["provider_ref"]
            for (outcome,) in s.execute(
                sa.select(Touch.outcome).where(
                    Touch.tenant_id == t, Touch.sop_id.not_in(setup.reminder_sops or [-1])
                )
            )
            for r in (outcome or {}).get("results", [])
            if r.get("provider_ref") and not str(r["provider_ref"]).startswith("moment:")
        ]
        wecom = report["wecom"]
        out.append(
            _check(
                "one add_msg_template call per mass-send touch (nothing sent twice)",
                len(refs),
                wecom["add_msg_template_accepted"],
            )
        )
        out.append(_check("mass-send ids are unique", len(refs), len(set(refs))))
        enrolled = count(
            sa.select(sa.func.count())
            .select_from(Enrollment)
            .where(Enrollment.sop_id == setup.sops["新客孵化 (seed 000)"])
        )
        scanned = count(customers.where(Customer.source.in_(SOURCES)))
        out.append(_check("every scanned customer entered the incubation SOP", scanned, enrolled))
        if "board" in report:
            board = report["board"]
            out.append(
                _check("every scanned customer stands in the journey (board)", scanned, sum(board.values()))
            )
            buyers = count(
                sa.select(sa.func.count(sa.distinct(Event.customer_id))).where(
                    Event.tenant_id == t, Event.type == "order.paid"
                )
            )
            out.append(_check("customers who bought stand in 签单 (board)", buyers, board.get("签单", 0)))
    welcome = next(
        sop for name, sop in zip(setup.sops, report["sops"], strict=True) if name.startswith("欢迎语")
    )
    out.append(
        _check(
            "welcome messages WeCom received = welcome touches sent",
            report["wecom"]["welcome_messages"],
            welcome["steps"][0]["sent"],
        )
    )
    out.append(_check("at most one mass message per customer per day (WeCom's cap)", 0, _over_cap(world)))
    price_words = list(KEYWORD_RULES[0]["keywords"])
    out += archive_checks(world, setup, report["archive"], price_words)
    return out + shop_checks(world, setup, tally) + crm_checks(world, setup)


def _stat_sum(report: dict[str, Any], key: str) -> int:
    return sum(step[key] for sop in report["sops"] for step in sop["steps"])


def _over_cap(world: World) -> int:
    """Customer-days on which the fake WeCom delivered more than one mass message."""
    fake = world.fake
    with fake.lock:
        per_day = Counter(
            (recipient, datetime.fromtimestamp(ts, world.clock.now().tzinfo).date())
            for recipient, times in fake.deliveries.items()
            for ts in times
        )
    return sum(1 for n in per_day.values() if n > 1)


def ok(report: dict[str, Any]) -> bool:
    return all(c["ok"] for c in report["checks"])


def to_markdown(report: dict[str, Any]) -> str:
    sim = report["simulated"]
    sources = ", ".join(f"{k}: {v}" for k, v in sim["by_source"].items())
    lines = [
        f"# sopflow demo report (seed {report['seed']}, {report['days']} simulated days)",
        "",
        f"{sim['arrived']} customers scanned the live codes ({sources}); "
        f"{sim['orders']} orders pushed by the 有赞 shop ({sim['buyers']} buyers), "
        f"{sim['surveys_answered']} skin-type surveys answered, {sim['replies']} replies, "
        f"{sim['churned']} deleted the staff member.",
        "",
    ]
    for sop in report["sops"]:
        rate = sop["conversion_rate"]
        lines += [
            f"## {sop['name']}",
            "",
            f"targeted {sop['targeted']}, completed {sop['completed']}, ended early {sop['ended_early']}, "
            f"still active {sop['active']}; "
            f"converted within {sop['goal_window_days']} days: {sop['converted']}"
            + (f" ({rate:.0%})" if rate is not None else ""),
            "",
            "| step | when | touchpoint | targeted | sent | awaiting staff | deferred | replied "
            "| cancelled |",
            "|---:|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for st in sop["steps"]:
            lines.append(
                f"| {st['step']} | {st['when']} | {st['touchpoint']} | {st['targeted']} | {st['sent']} | "
                f"{st['awaiting_confirmation']} | {st['deferred']} | {st['replied']} | {st['cancelled']} |"
            )
        lines.append("")
    if "board" in report:
        lines += ["## Journey board", "", "| stage | customers |", "|---|---:|"]
        lines += [f"| {name} | {n} |" for name, n in report["board"].items()]
        lines.append("")
    if "personal_wechat" in report:  # the personal WeChat scene (personal.py)
        lines += personal_markdown(report["personal_wechat"])
    w = report["wecom"]
    lines += [
        "## WeCom (the fake's own records)",
        "",
        f"{w['mass_send_tasks']} mass-send tasks, {w['delivered']} messages delivered after staff confirmed, "
        f"{w['moments']} moments posts, {w['welcome_messages']} welcome messages.",
        "",
        *archive_markdown(report["archive"]),
        "## Checks",
        "",
        "| check | expected | actual | |",
        "|---|---|---|---|",
    ]
    for c in report["checks"]:
        lines.append(
            f"| {c['check']} | {c['expected']} | {c['actual']} | {'ok' if c['ok'] else 'MISMATCH'} |"
        )
    return "\n".join(lines) + "\n"


def write(report: dict[str, Any], path: Path) -> None:
    if path.suffix == ".json":
        path.write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    else:
        path.write_text(to_markdown(report), encoding="utf-8")
