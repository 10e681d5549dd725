"""The jsapi tickets and WeCom's fetch budget shared by every sopflow process
through the plugin's durable state: one cached ticket, one hourly budget, with
two independent instances on one database and with two real processes, against
the fake WeCom over real HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sopflow_sdk import RetriableError
from sopflow_sdk.testing.harness import make_test_app
from sopflow_wecom import plugin
from sopflow_wecom.client import WeComClient
from sopflow_wecom.jsapi import js_signature
from sopflow_wecom.sidebar.tickets import SharedTickets
from wecom_support import WeComApp

WORKER = Path(__file__).with_name("tickets_worker.py")


def _tickets(app: Any, env: WeComApp, **limits: Any) -> tuple[SharedTickets, WeComClient]:
    from sopflow.host import PluginHost

    host = PluginHost(app, "wecom")
    account = host.channel_account(env.account_id)
    client = WeComClient(
        env.fake.corp_id,
        env.fake.secret,
        base_url=env.fake.base_url,
        clock=lambda: env.clock.now().timestamp(),
    )
    return SharedTickets(host, account.tenant_id, client, account.config["agent_id"], **limits), client


def test_two_instances_on_one_database_share_one_cached_ticket(wecom_app: WeComApp, sopflow_app: Any) -> None:
    other_app = make_test_app(sopflow_app.settings.database_url, extra_plugins=[("wecom", plugin)])
    first, c1 = _tickets(sopflow_app, wecom_app)
    second, c2 = _tickets(other_app, wecom_app)
    try:
        a = first.configs("https://sop.example.com/sidebar?a=1#x", noncestr="n0nce", timestamp=1700000000)
        b = second.configs("https://sop.example.com/sidebar?a=1", noncestr="n0nce", timestamp=1700000000)
        assert a == b  # the same tickets signed both
        assert wecom_app.fake.count("get_jsapi_ticket") == 1 and wecom_app.fake.count("ticket/get") == 1
        corp = second.ticket("corp").reveal()
        assert corp in wecom_app.fake.tickets
        assert a["config"]["signature"] == js_signature(
            corp, "n0nce", 1700000000, "https://sop.example.com/sidebar?a=1"
        )
        assert corp not in repr(second) and corp not in str(a)
        assert first.fetches_in_the_last_hour() == {"corp": 2, "app": 2}  # the corp and agent ticket
        wecom_app.clock.advance(timedelta(seconds=7200 - 299))  # within 300 s of the expiry
        assert second.ticket("corp").reveal() != corp
        assert first.ticket("corp").reveal() == second.ticket("corp").reveal()
        assert wecom_app.fake.count("get_jsapi_ticket") == 2
        assert first.fetches_in_the_last_hour() == {"corp": 1, "app": 1}  # the others are over an hour old
    finally:
        c1.close()
        c2.close()
        other_app.engine.dispose()


def test_the_budget_spent_by_one_instance_is_spent_for_the_other(
    wecom_app: WeComApp, sopflow_app: Any
) -> None:
    other_app = make_test_app(sopflow_app.settings.database_url, extra_plugins=[("wecom", plugin)])
    first, c1 = _tickets(sopflow_app, wecom_app, app_limit=3)
    second, c2 = _tickets(other_app, wecom_app, app_limit=3)
    try:
        for tickets in (first, second, first):
            tickets.invalidate("corp")
            tickets.ticket("corp")
        second.invalidate("corp")
        with pytest.raises(RetriableError) as refused:
            second.ticket("corp")
        assert "3 jsapi_ticket fetches an hour per app" in refused.value.user_message
        assert 0 < refused.value.retry_after <= 3600
        assert wecom_app.fake.count("get_jsapi_ticket") == 3  # WeCom never saw the fourth
        wecom_app.clock.advance(timedelta(seconds=3601))
        second.ticket("corp")  # the hour has passed
        assert wecom_app.fake.count("get_jsapi_ticket") == 4
    finally:
        c1.close()
        c2.close()
        other_app.engine.dispose()


def test_a_failed_fetch_still_counts_and_stores_no_ticket(wecom_app: WeComApp, sopflow_app: Any) -> None:
    tickets, client = _tickets(sopflow_app, wecom_app)
    try:
        for _ in range(100):  # someone else spent WeCom's hour (the fake answers 45009 past 100)
            client.call("GET", "get_jsapi_ticket")
        with pytest.raises(Exception) as failed:
            tickets.ticket("corp")
        assert getattr(failed.value, "errcode", None) == 45009
        assert tickets.fetches_in_the_last_hour() == {"corp": 1, "app": 1}
        assert tickets.host.state(tickets.tenant_id).items("jsapi.ticket.") == {}
    finally:
        client.close()


def test_two_processes_never_spend_more_than_one_budget(wecom_app: WeComApp, sopflow_app: Any) -> None:
    limit, attempts = 6, 10
    env = {**os.environ, "PYTHONPATH": str(WORKER.parent)}
    args = [sys.executable, str(WORKER), sopflow_app.settings.database_url, str(wecom_app.account_id)]
    procs = [
        subprocess.Popen(
            [*args, str(attempts), str(limit), str(wecom_app.clock.now().timestamp())],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read()[-3000:]
        for proc in procs:  # both storms at once
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err[-3000:]
            _, got, _, refused = out.split()
            results.append((int(got), int(refused)))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
    # one budget between them: WeCom saw exactly the limit, the rest were refused or
    # answered with the ticket the other process had just fetched
    assert wecom_app.fake.count("get_jsapi_ticket") == limit
    assert sum(got + refused for got, refused in results) == 2 * attempts
    assert sum(refused for _, refused in results) >= 2 * attempts - 2 * limit
    assert all(refused > 0 for _, refused in results)  # each process met the shared limit
    tickets, client = _tickets(sopflow_app, wecom_app)
    client.close()
    assert tickets.fetches_in_the_last_hour()["app"] == limit
