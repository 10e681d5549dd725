"""The initial import through sopflow's API against the fake WeCom: every member's
existing customers become customers, a re-run adds nothing, nothing is sent."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sopflow_sdk import Secret
from sopflow_wecom.fake import FakeClock, FakeWeCom
from sopflow_wecom.importer import EVENT_TYPE, import_key, run_import
from wecom_support import WeComApp

STAFF = ("anna", "bob", "carl")  # sorted, as get_follow_user_list answers


def _seed(fake: FakeWeCom) -> dict[str, str]:
    """3 members × 250 customers; anna/bob share wm0200–wm0249, bob/carl wm0400–wm0449:
    750 relationships, 650 customers."""
    skin, makeup = fake.create_corp_tags("兴趣", "护肤", "彩妆")
    for n, staff in enumerate(STAFF):
        for i in range(200 * n, 200 * n + 250):
            fake.seed_contact(
                staff,
                f"wm{i:04d}",
                f"客户{i:04d}",
                state="qr_old" if i % 10 == 0 else None,
                tag_ids=[skin, "stStrategyTagNotInTheLibrary"] if i % 2 == 0 else [makeup],
                gender=1 + i % 2,
                corp_name="腾讯" if i == 7 else "",
            )
    return {"skin": skin, "makeup": makeup}


def _welcome_sop(env: WeComApp) -> int:
    definition = {
        "kind": "new_customer",
        "target": {},
        "steps": [
            {
                "delay": "0m",
                "actions": [{"type": "send", "channel": "wecom", "touchpoint": "welcome", "text": "欢迎"}],
            },
            {
                "day": 1,
                "at": "10:00",
                "actions": [{"type": "send", "channel": "wecom", "touchpoint": "private_chat", "text": "hi"}],
            },
        ],
    }
    made = env.api.post("/api/v1/sops", json={"name": "welcome", "definition": definition})
    assert made.status_code == 201, made.text
    assert env.api.post(f"/api/v1/sops/{made.json()['id']}/start").status_code == 200
    return int(made.json()["id"])


def test_import_existing_customers_once_and_send_nothing(wecom_app: WeComApp) -> None:
    env, fake = wecom_app, wecom_app.fake
    # one customer arrived through a callback before the import: it is updated, not created
    fake.add_customer("anna", "wm0000", "客户0000")
    sop_id = _welcome_sop(env)
    _seed(fake)

    started = env.api.post(f"{env.base}/import")
    assert started.status_code == 202, started.text
    progress = started.json()  # no broker: the job ran inline
    assert {k: progress[k] for k in progress if k not in ("started_at", "finished_at")} == {
        "account_id": env.account_id,
        "state": "done",
        "follow_users": 3,
        "follow_users_done": 3,
        "pages": 8,  # 750 relationships, 100 a page
        "contacts_seen": 750,
        "customers_created": 649,
        "customers_updated": 1,
        "unchanged": 0,
        "error": None,
    }
    assert env.api.get(f"{env.base}/import").json() == progress
    assert {tuple(r.body["userid_list"]) for r in fake.requests if r.path.endswith("batch/get_by_user")} == {
        STAFF
    }

    customers = env.all("/api/v1/customers?channel=wecom")
    assert len(customers) == 650
    imported = env.all(f"/api/v1/events?type={EVENT_TYPE}")
    assert len(imported) == 750 and {e["source"] for e in imported} == {"wecom"}
    shared = _customer(env, "wm0200")  # anna's and bob's customer: one customer, both relationships
    assert shared["display_name"] == "客户0200" and shared["source"] == "qr_old"
    assert sorted(shared["tags"]) == ["护肤"]  # the strategy-group tag id is not in the corp library
    # core keeps one identity per (channel, external id): the first member's; bob's is in the event log
    assert shared["identities"] == [
        {"channel": "wecom", "external_id": "wm0200", "staff_external_id": "anna"}
    ]
    events = env.all(f"/api/v1/events?type={EVENT_TYPE}&customer_id={shared['id']}")
    assert sorted(e["payload"]["staff_userid"] for e in events) == ["anna", "bob"]
    assert events[0]["payload"]["gender"] == 1 and events[0]["payload"]["add_way"] == 1
    assert events[0]["idempotency_key"] == import_key(fake.corp_id, "wm0200", "anna")
    wecom_user = _customer(env, "wm0007")
    assert wecom_user["tags"] == ["彩妆"]
    [event] = env.all(f"/api/v1/events?type={EVENT_TYPE}&customer_id={wecom_user['id']}")
    assert (event["payload"]["corp_name"], event["payload"]["type"]) == ("腾讯", 2)

    # nothing is sent and no new-customer SOP touches an imported customer
    env.clock.advance(timedelta(days=2))
    assert env.api.post("/api/v1/touches/dispatch").json() == {"dispatched": 0}
    assert env.all("/api/v1/touches") == []
    assert env.all(f"/api/v1/sops/{sop_id}/enrollments") == []
    assert fake.welcome_messages == [] and fake.tasks == {}

    # a re-run adds nothing; a relationship made since is the only new thing
    fake.seed_contact("carl", "wmLate", "新客户")
    again = env.api.post(f"{env.base}/import").json()
    assert (again["customers_created"], again["customers_updated"], again["unchanged"]) == (1, 0, 750)
    assert len(env.all("/api/v1/customers?channel=wecom")) == 651
    assert len(env.all(f"/api/v1/events?type={EVENT_TYPE}")) == 751

    # the SOP was live all along: a customer who scans now is enrolled
    fake.add_customer("anna", "wmScan", "扫码客户", state="qr_new")
    assert len(env.all(f"/api/v1/sops/{sop_id}/enrollments")) == 1


def _customer(env: WeComApp, external_id: str) -> dict[str, Any]:
    [customer] = env.api.get(f"/api/v1/customers?channel=wecom&external_id={external_id}").json()["items"]
    return customer


def test_import_auth_failures_and_progress_after_a_failed_run(wecom_app: WeComApp) -> None:
    env, fake = wecom_app, wecom_app.fake
    assert env.api.client.post(f"{env.base}/import").status_code == 401
    assert env.api.post(f"/plugins/wecom/accounts/{env.account_id + 99}/import").status_code == 404
    missing = env.api.get(f"{env.base}/import")
    assert missing.status_code == 404 and "POST" in missing.json()["detail"]

    for i in range(120):
        fake.seed_contact("anna", f"wm{i:04d}")
    fake.fail_next("externalcontact/batch/get_by_user", 60011, "no privilege to access/modify contact")
    failed = env.api.post(f"{env.base}/import")
    assert failed.status_code == 502 and "60011" in failed.json()["detail"], failed.text
    progress = env.api.get(f"{env.base}/import").json()
    assert progress["state"] == "failed" and "60011" in progress["error"] and progress["pages"] == 0
    assert env.all(f"/api/v1/events?type={EVENT_TYPE}") == []

    done = env.api.post(f"{env.base}/import").json()  # re-runnable after the fix
    assert (done["state"], done["pages"], done["customers_created"]) == ("done", 2, 120)


def test_import_runs_as_a_background_job(wecom_app: WeComApp, stub_broker: Any) -> None:
    env, fake = wecom_app, wecom_app.fake
    for i in range(30):
        fake.seed_contact("anna", f"wm{i:04d}")
    started = env.api.post(f"{env.base}/import")
    assert started.status_code == 202 and started.json()["state"] in ("queued", "running", "done")
    stub_broker.join("sopflow")
    progress = env.api.get(f"{env.base}/import").json()
    assert (progress["state"], progress["customers_created"]) == ("done", 30)


# -- the import function itself, as a CLI would call it -----------------------------------------------


class _Account:
    def __init__(self, fake: FakeWeCom) -> None:
        self.id, self.tenant_id, self.channel, self.name = 41, 5, "wecom", "main"
        self.config = {"corp_id": fake.corp_id, "base_url": fake.base_url}
        self.secrets = {"secret": Secret(fake.secret)}


class _Host:
    """Ingests like core: one outcome per event, duplicates by idempotency key."""

    def __init__(self, account: _Account) -> None:
        self.account = account
        self.keys: set[str] = set()
        self.customers: dict[str, int] = {}

    def now(self) -> Any:
        from datetime import UTC, datetime

        return datetime(2026, 1, 5, tzinfo=UTC)

    def channel_account(self, account_id: int) -> _Account | None:
        return self.account if account_id == self.account.id else None

    def ingest(self, tenant_id: int, events: Any) -> list[dict[str, Any]]:
        out = []
        for ev in events:
            if ev.idempotency_key in self.keys:
                out.append({"status": "duplicate"})
                continue
            self.keys.add(ev.idempotency_key)
            new = ev.identity.external_id not in self.customers
            cid = self.customers.setdefault(ev.identity.external_id, len(self.customers) + 1)
            out.append({"status": "created", "customer_id": cid, "customer_created": new})
        return out


def test_run_import_reports_progress_per_page_and_chunk() -> None:
    """150 members: two batch calls (100 + 50 members), with a callback per page
    for a progress bar."""
    with FakeWeCom(clock=FakeClock()) as fake:
        for i in range(150):
            fake.seed_contact(f"u{i:03d}", f"wm{i:04d}")
            fake.seed_contact(f"u{i:03d}", "wmShared")
        host = _Host(_Account(fake))
        seen: list[dict[str, Any]] = []
        final = run_import(host, 41, progress=seen.append)  # type: ignore[arg-type]
    assert [(p["follow_users"], p["follow_users_done"], p["pages"]) for p in seen] == [
        (None, 0, 0),  # started
        (150, 0, 0),  # members known
        (150, 0, 1),  # first page of the first 100 members (200 relationships)
        (150, 100, 2),
        (150, 150, 3),  # 100 relationships of the last 50 members: one page
        (150, 150, 3),  # finished
    ]
    assert (final["state"], final["contacts_seen"], final["customers_created"]) == ("done", 300, 151)
    assert final["customers_updated"] == 0  # wmShared was created in this run


def test_run_import_refuses_an_unknown_account() -> None:
    from sopflow_sdk import FatalError

    with FakeWeCom(clock=FakeClock()) as fake, pytest.raises(FatalError, match="no WeCom channel account 9"):
        run_import(_Host(_Account(fake)), 9)  # type: ignore[arg-type]
