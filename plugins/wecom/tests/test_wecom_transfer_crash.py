"""Kill -9 between WeCom starting a transfer and sopflow recording it (a real
process, the fake WeCom over real HTTP): the rows stay ``planned``, the next run
calls again, WeCom's 40129 ("a handover is under way") marks them started, and
every customer is handed over exactly once and moves to the new owner, and the
SOP step each was waiting on goes out once, from the new owner."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sopflow_wecom import transfers
from sopflow_wecom.store import transfers as table
from wecom_support import WeComApp

WORKER = Path(__file__).with_name("transfer_worker.py")
GIVER, TAKER = "zhangsan", "lisi"
N = 120  # two calls: 100 and 20


def _states(app: Any) -> Counter[str]:
    with app.engine.connect() as conn:
        return Counter(conn.scalars(sa.select(table.c.state)))


def test_kill_9_after_wecom_started_the_transfer_loses_nothing_and_hands_over_once(
    wecom_app: WeComApp, sopflow_app: Any
) -> None:
    from sopflow.engine.delivery.confirmations import poll_confirmations
    from sopflow.engine.delivery.dispatch import run_until_idle
    from sopflow.host import PluginHost

    env, fake, app = wecom_app, wecom_app.fake, sopflow_app
    step = {"type": "send", "channel": "wecom", "touchpoint": "private_chat", "text": "第一步"}
    definition = {"kind": "new_customer", "target": {}, "steps": [{"delay": "0m", "actions": [step]}]}
    made = env.api.post("/api/v1/sops", json={"name": "n", "definition": definition})
    assert env.api.post(f"/api/v1/sops/{made.json()['id']}/start").status_code == 200
    customers = [f"wmK{i:03d}" for i in range(N)]
    fake.add_staff(TAKER)
    for ext in customers:
        fake.add_customer(GIVER, ext, welcome=False)
    assert run_until_idle(app) == N  # each waits on the giver's mass send
    host = PluginHost(app, "wecom")
    account = host.channel_account(env.account_id)
    assert transfers.plan(host, account, "onjob", GIVER, TAKER, customers, None) == customers

    proc = subprocess.Popen(
        [sys.executable, str(WORKER), app.settings.database_url, str(env.account_id)],
        env={**os.environ, "PYTHONPATH": str(WORKER.parent)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline().strip()
        assert line == "called", proc.stderr.read()[-3000:]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    calls = [r for r in fake.requests if r.path.endswith("externalcontact/transfer_customer")]
    assert [len(r.body["external_userid"]) for r in calls] == [100]  # WeCom started these...
    assert _states(app) == {"planned": N}  # ...and sopflow never heard: nothing recorded yet

    transfers.finish_job(host)  # the periodic job: starts what the crash left planned
    calls = [r for r in fake.requests if r.path.endswith("externalcontact/transfer_customer")]
    assert [len(r.body["external_userid"]) for r in calls] == [100, 100, 20]
    assert _states(app) == {"started": N}
    with app.engine.connect() as conn:
        codes = Counter(conn.scalars(sa.select(table.c.errcode)))
    assert codes == {40129: 100, 0: 20}  # the first hundred were already under way
    assert all(len(fake.transfer_starts[e]) == 1 for e in customers)  # none handed over twice

    env.clock.advance(timedelta(hours=24, seconds=1))
    assert fake.settle_transfers() == N
    assert _states(app) == {"done": N}
    staff_ids = {m["external_id"]: m["id"] for m in env.api.get("/api/v1/staff").json()}
    owners = Counter(c["owner_staff_id"] for c in env.all("/api/v1/customers?channel=wecom"))
    assert owners == {staff_ids[TAKER]: N}
    events = env.all("/api/v1/events?type=customer.transferred")
    assert len(events) == N and len({e["customer_id"] for e in events}) == N

    # the touches the giver never sent go out once each, from the taker
    poll_confirmations(app)
    run_until_idle(app)
    for msgid, task in list(fake.tasks.items()):
        for staff in (GIVER, TAKER):
            if staff in task.recipients and staff not in task.send_time:
                fake.confirm(msgid, staff)
    env.clock.advance(timedelta(minutes=1))
    poll_confirmations(app)
    delivered = Counter(
        (ext, staff)
        for task in fake.tasks.values()
        for staff, recipients in task.recipients.items()
        for ext, status in recipients.items()
        if status == 1
    )
    assert delivered == {(ext, TAKER): 1 for ext in customers}
