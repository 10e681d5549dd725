"""kill -9 of a real worker process around the outbox: nothing lost, nothing
written twice (the fake org's request log is the witness)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from salesforce_support import connect, customer_by_record, host
from sopflow_salesforce import outbox, sync
from sopflow_salesforce.fake import DemoOrg
from sopflow_salesforce.store import outbox as outbox_table

WORKER = Path(__file__).with_name("outbox_worker.py")


def start_worker(mode: str, app: Any, account_id: int, customer_id: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(WORKER.parent)}
    args = [sys.executable, str(WORKER), mode, app.settings.database_url, str(account_id), str(customer_id)]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_when(proc: subprocess.Popen, word: str) -> None:
    line = proc.stdout.readline().strip()
    if line != word:
        proc.kill()
        pytest.fail(f"worker said {line!r}, not {word!r}: {proc.stderr.read()[-2000:]}")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def states(app: Any) -> list[str]:
    with app.engine.connect() as conn:
        return [r.state for r in conn.execute(sa.select(outbox_table.c.state).order_by(outbox_table.c.id))]


@pytest.fixture
def linked(api: Any, org: DemoOrg, sopflow_app: Any) -> tuple[int, dict, int]:
    account_id = connect(api, org)
    rec = org.fake.org.create("Contact", {"LastName": "Kim"})
    sync.sync_account(host(sopflow_app), host(sopflow_app).channel_account(account_id))
    customer_id = customer_by_record(api, rec["Id"])["id"]
    # The value changes where on_event does not see it (no push runs in this process).
    with sopflow_app.tx() as s:
        from sopflow.models import Customer

        c = s.get(Customer, customer_id)
        c.fields = {**c.fields, "engagement": "hot"}
    return account_id, rec, customer_id


def test_killed_between_the_outbox_write_and_the_call(linked: Any, org: DemoOrg, sopflow_app: Any) -> None:
    account_id, rec, customer_id = linked
    kill_when(start_worker("queued", sopflow_app, account_id, customer_id), "queued")
    assert states(sopflow_app) == ["pending"] and org.fake.writes("Contact") == []
    outbox.push_all(host(sopflow_app), account_id)  # the next worker
    outbox.push_all(host(sopflow_app), account_id)
    assert states(sopflow_app) == ["done"] and len(org.fake.writes("Contact")) == 1
    assert org.fake.org.record("Contact", rec["Id"])["Engagement__c"] == "hot"


def test_killed_after_salesforce_applied_the_write(linked: Any, org: DemoOrg, sopflow_app: Any) -> None:
    account_id, _, customer_id = linked
    h = host(sopflow_app)
    account = h.channel_account(account_id)
    assert outbox.record_changes(h, account, h.customer(account.tenant_id, customer_id)) is not None
    kill_when(start_worker("called", sopflow_app, account_id, customer_id), "called")
    assert states(sopflow_app) == ["sending"] and len(org.fake.writes("Contact")) == 1
    outbox.push_all(host(sopflow_app), account_id)  # reconciles: Salesforce holds the value
    assert states(sopflow_app) == ["done"] and len(org.fake.writes("Contact")) == 1
    assert sync.sync_account(host(sopflow_app), host(sopflow_app).channel_account(account_id))["changed"] == 0
