"""The archive pull in a real app: the periodic job and the account's routes over the
C fake of WeCom's Finance SDK, error codes driving health, and secrets kept out of
logs and answers."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sopflow_wecom.plugin
from archive_support import (
    ARCHIVE_SECRET,
    FakeArchive,
    fake_archive,
    fake_library,
    pem,
    private_keys_secret,
    seal,
)
from sopflow_wecom.archive.errors import CODES

__all__ = ["fake_archive", "fake_library"]  # fixtures

DATA = Path(__file__).parent / "data" / "wecom_archive_messages.json"
CORP = "wwarchivetest0001"


def recorded() -> list[tuple[int, dict[str, Any]]]:
    return [(m["seq"], m["record"]) for m in json.loads(DATA.read_text(encoding="utf-8"))["messages"]]


#: The texts of the recorded archive's message.received events ("": the image).
RECEIVED = [
    "你好，请问这款防晒霜多少钱？",
    "群里买有优惠吗？",
    "",
    "太贵了，等活动再说吧",
    "已经下单了，发货了吗？",
]


def run_jobs(app: Any) -> None:
    from sopflow.worker.scheduler import Scheduler

    Scheduler(app).run_periodic_jobs()


@pytest.fixture
def sopflow_plugins() -> list[tuple[str, Any]]:
    return [("wecom", sopflow_wecom.plugin)]


def connect(api: Any, name: str = "archive", **secrets: str) -> int:
    r = api.post(
        "/api/v1/channel-accounts",
        json={
            "channel": "wecom",
            "name": name,
            "config": {"corp_id": CORP, "archive_enabled": True, "archive_pull_seconds": 60},
            "secrets": {
                "secret": "s" * 32,
                "archive_secret": ARCHIVE_SECRET,
                "archive_private_keys": private_keys_secret(1),
                **secrets,
            },
        },
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


@pytest.fixture
def fake(fake_archive: FakeArchive) -> FakeArchive:
    fake_archive.serve_records(recorded())
    return fake_archive


def status(api: Any, account_id: int) -> dict[str, Any]:
    r = api.get(f"/plugins/wecom/accounts/{account_id}/archive")
    assert r.status_code == 200, r.text
    return dict(r.json())


def texts(api: Any) -> list[str]:
    events = api.get("/api/v1/events", params={"type": "message.received", "limit": 200}).json()["items"]
    return sorted(e["payload"]["text"] for e in events)


def test_the_job_pulls_each_enabled_account_on_its_interval(
    api: Any, sopflow_app: Any, manual_clock: Any, fake: FakeArchive
) -> None:
    account_id = connect(api)
    run_jobs(sopflow_app)
    assert texts(api) == sorted(RECEIVED)
    assert fake.calls() == [(0, 1000)]  # one short page: caught up
    shown = status(api, account_id)
    assert shown["seq"] == 108 and shown["healthy"] is True and shown["skipped"] == []
    assert shown["last_pull"] == {"seq": 108, "fetched": 8, "created": 7, "duplicates": 0, "skipped": 0}
    manual_clock.advance(timedelta(seconds=30))
    run_jobs(sopflow_app)
    assert len(fake.calls()) == 1  # not due: archive_pull_seconds is 60
    manual_clock.advance(timedelta(seconds=31))
    run_jobs(sopflow_app)
    assert fake.calls()[-1] == (108, 1000)  # due again, from the stored cursor


def test_an_account_without_the_archive_is_not_pulled(api: Any, sopflow_app: Any, fake: FakeArchive) -> None:
    account_id = connect(api)
    r = api.patch(f"/api/v1/channel-accounts/{account_id}", json={"config": {"corp_id": CORP}})
    assert r.status_code == 200, r.text
    run_jobs(sopflow_app)
    assert fake.calls() == [] and texts(api) == []


def test_a_retriable_code_keeps_the_cursor_and_the_next_tick_retries(
    api: Any, sopflow_app: Any, manual_clock: Any, fake: FakeArchive
) -> None:
    account_id = connect(api)
    fake.fail_with(rc=10001)
    run_jobs(sopflow_app)
    shown = status(api, account_id)
    assert (
        shown["healthy"] is True
        and shown["kind"] == "retriable"
        and "10001 (network error)" in shown["error"]
    )
    assert shown["seq"] == 0 and texts(api) == []
    fake.fail_with()
    manual_clock.advance(timedelta(seconds=60))
    run_jobs(sopflow_app)
    assert status(api, account_id)["seq"] == 108 and len(texts(api)) == 5
    assert fake.calls() == [(0, 1000), (0, 1000)]  # the same messages asked again


def test_ip_not_whitelisted_marks_the_account_unhealthy_until_resumed(
    api: Any, sopflow_app: Any, manual_clock: Any, fake: FakeArchive
) -> None:
    account_id = connect(api)
    fake.fail_with(errcode=301042)
    run_jobs(sopflow_app)
    shown = status(api, account_id)
    assert shown["healthy"] is False and shown["kind"] == "fatal"
    assert "301042" in shown["error"] and "trusted IPs" in shown["error"]
    manual_clock.advance(timedelta(minutes=4, seconds=59))
    run_jobs(sopflow_app)
    assert len(fake.calls()) == 1  # left alone until its first probe: retrying every tick cannot help
    refused = api.post(f"/plugins/wecom/accounts/{account_id}/archive/pull", json={})
    assert refused.status_code == 409 and "301042" in refused.json()["detail"]
    fake.fail_with()  # the operator whitelisted the IP
    resumed = api.post(f"/plugins/wecom/accounts/{account_id}/archive/pull", json={})
    assert resumed.status_code == 200 and resumed.json()["created"] == 7, resumed.text
    assert status(api, account_id)["healthy"] is True
    manual_clock.advance(timedelta(seconds=61))
    run_jobs(sopflow_app)
    assert len(fake.calls()) == 4  # back on its interval


def alerted_account(api: Any, wecom: Any) -> int:
    """An archive account whose stops and recoveries are told to member anna."""
    wecom.add_staff("anna")
    r = api.post(
        "/api/v1/channel-accounts",
        json={
            "channel": "wecom",
            "name": "told",
            "config": {
                "corp_id": wecom.corp_id,
                "agent_id": 1000002,
                "base_url": wecom.base_url,
                "archive_enabled": True,
                "archive_alert_staff": "anna",
            },
            "secrets": {
                "secret": wecom.secret,
                "archive_secret": ARCHIVE_SECRET,
                "archive_private_keys": private_keys_secret(1),
            },
        },
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def test_an_unhealthy_account_is_probed_on_a_backoff_and_recovers_by_itself(
    api: Any, sopflow_app: Any, manual_clock: Any, fake: FakeArchive
) -> None:
    from sopflow_wecom.fake import FakeWeCom

    with FakeWeCom() as wecom:
        account_id = alerted_account(api, wecom)
        fake.fail_with(errcode=301042)
        run_jobs(sopflow_app)
        assert status(api, account_id)["healthy"] is False and fake.calls() == [(0, 1000)]
        probed_at = []  # minutes after the account turned unhealthy
        for minute in range(5, 200, 5):  # the job's ticks, every 5 simulated minutes
            manual_clock.advance(timedelta(minutes=5))
            if minute == 195:
                fake.fail_with()  # the operator whitelisted the IP; nobody pressed "pull"
            before = len(fake.calls())
            run_jobs(sopflow_app)
            if len(fake.calls()) > before:
                probed_at.append(minute)
            if minute < 195:
                shown = status(api, account_id)
                assert shown["healthy"] is False and "301042" in shown["error"], shown
        # 5 minutes, then doubling to an hour; each probe one message from the cursor
        assert probed_at == [5, 15, 35, 75, 135, 195]
        assert fake.calls()[1:] == [(0, 1)] * 6
        shown = status(api, account_id)
        assert shown["healthy"] is True and shown["error"] is None and shown["seq"] == 101
        assert shown["staff_told_recovered"] is True and shown["recovered_at"]
        assert len(texts(api)) == 1  # the probe's one message is kept, not re-read later
        manual_clock.advance(timedelta(seconds=60))
        run_jobs(sopflow_app)
        assert fake.calls()[-1] == (101, 1000)  # back on its interval, from the probe's cursor
        assert texts(api) == sorted(RECEIVED) and status(api, account_id)["seq"] == 108
        told = [body["content"] for _, _, body in wecom.app_message_bodies]
        assert len(told) == 2 and "stopped" in told[0] and "301042" in told[0]
        assert "works again" in told[1]  # once when it stopped, once when it recovered
        manual_clock.advance(timedelta(hours=2))
        run_jobs(sopflow_app)
        assert len(wecom.app_message_bodies) == 2


def test_two_pulls_racing_over_a_turn_tell_staff_once(
    api: Any, sopflow_app: Any, manual_clock: Any, fake: FakeArchive
) -> None:
    """Two processes pulling one account both read its health before either wrote
    it: only one of them tells staff it stopped, and only one that it works again."""
    import sopflow_wecom.archive.job as job
    from sopflow.host import PluginHost
    from sopflow_wecom.fake import FakeWeCom

    host = PluginHost(sopflow_app, "wecom")

    def pull(read_before: dict[str, Any] | None = None) -> int:
        """A pull; with ``read_before``, one that read the health before the last pull wrote it."""
        with pytest.MonkeyPatch.context() as mp:
            if read_before is not None:
                mp.setattr(job, "health", lambda *a: dict(read_before))
            return api.post(f"/plugins/wecom/accounts/{account_id}/archive/pull", json={}).status_code

    with FakeWeCom() as wecom:
        account_id = alerted_account(api, wecom)
        fake.fail_with(errcode=301042)
        healthy = job.health(host, api.tenant_id, account_id)
        assert pull() == 409
        assert pull(read_before=healthy) == 409
        assert len(wecom.app_message_bodies) == 1 and status(api, account_id)["staff_told"] is True
        unhealthy = job.health(host, api.tenant_id, account_id)
        fake.fail_with()
        assert pull() == 200
        assert pull(read_before=unhealthy) == 200
        told = [body["content"] for _, _, body in wecom.app_message_bodies]
        assert len(told) == 2 and "works again" in told[1]
        assert status(api, account_id)["staff_told_recovered"] is True
        # the next stop is a new episode: told again
        fake.fail_with(errcode=301042)
        manual_clock.advance(timedelta(minutes=1))
        assert pull() == 409
        assert len(wecom.app_message_bodies) == 3


def test_a_probe_that_cannot_reach_wecom_leaves_the_account_unhealthy(
    api: Any, sopflow_app: Any, manual_clock: Any, fake: FakeArchive
) -> None:
    account_id = connect(api)
    fake.fail_with(init_rc=10004)  # a wrong secret
    run_jobs(sopflow_app)
    fake.fail_with(rc=10001)  # then the network drops: the probe proves nothing
    manual_clock.advance(timedelta(minutes=5))
    run_jobs(sopflow_app)
    shown = status(api, account_id)
    assert shown["healthy"] is False and "10004" in shown["error"] and shown["failed_probes"] == 1
    manual_clock.advance(timedelta(minutes=9))
    run_jobs(sopflow_app)
    assert status(api, account_id)["failed_probes"] == 1  # the next probe is 10 minutes on
    fake.fail_with()
    manual_clock.advance(timedelta(minutes=1))
    run_jobs(sopflow_app)
    assert status(api, account_id)["healthy"] is True and status(api, account_id)["seq"] == 101


def test_a_message_that_does_not_decrypt_is_recorded_and_passed_over(
    api: Any, sopflow_app: Any, fake: FakeArchive
) -> None:
    account_id = connect(api)
    items = [seal(r, s) for s, r in recorded()]
    items[0]["encrypt_chat_msg"] = items[1]["encrypt_chat_msg"]  # another message's body: 10008
    fake.serve(items)
    run_jobs(sopflow_app)
    shown = status(api, account_id)
    assert shown["seq"] == 108 and shown["healthy"] is True  # the cursor was not blocked
    assert [(s["seq"], s["msgid"]) for s in shown["skipped"]] == [(101, recorded()[0][1]["msgid"])]
    assert "10008" in shown["skipped"][0]["reason"]
    assert texts(api) == sorted(RECEIVED[1:])


def test_bad_key_settings_are_a_422_naming_the_field_and_nothing_moves(
    api: Any, sopflow_app: Any, fake: FakeArchive
) -> None:
    account_id = connect(api, archive_private_keys=json.dumps({"1": "-----BEGIN PRIVATE KEY-----\nnope"}))
    r = api.post(f"/plugins/wecom/accounts/{account_id}/archive/pull", json={})
    assert r.status_code == 422, r.text
    assert r.json()["problems"] == [
        ["secrets.archive_private_keys['1']", "not an unencrypted PEM private key (PKCS#1 or PKCS#8)"]
    ]
    assert fake.calls() == [] and status(api, account_id)["seq"] == 0
    bad = api.post(f"/plugins/wecom/accounts/{account_id}/archive/pull", json={"max_batches": 0})
    assert bad.status_code == 422 and "max_batches" in bad.json()["detail"]


def test_no_secret_or_private_key_reaches_a_log_an_error_or_an_answer(
    api: Any, sopflow_app: Any, manual_clock: Any, fake: FakeArchive, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, the most talkative level
    account_id = connect(api)
    wrong = connect(api, "wrong", archive_secret="wrong-archive-secret-0123456789")
    run_jobs(sopflow_app)  # one healthy pull, one fatal (40001)
    answers = [
        api.get(f"/api/v1/channel-accounts/{account_id}").text,
        api.get(f"/api/v1/channel-accounts/{wrong}").text,
        api.get(f"/plugins/wecom/accounts/{wrong}/archive").text,
        api.post(f"/plugins/wecom/accounts/{wrong}/archive/pull", json={}).text,
    ]
    assert "40001" in answers[2] and "40001" in answers[3]  # the errors are there, told safely
    key_body = pem(1).splitlines()[5]  # a line from the middle of the PEM
    seen = caplog.text + "\n".join(answers)
    assert "wecom archive" in caplog.text.lower()  # the pulls did log
    for secret in (ARCHIVE_SECRET, "wrong-archive-secret-0123456789", key_body, "BEGIN PRIVATE KEY"):
        assert secret not in seen


ALICE, CAROL, DAVE = "wmConsentAlice0001", "wmConsentCarol0001", "wmConsentDave00001"


def chat(seq: int, sender: str, to: str, msgtype: str = "text", **body: Any) -> tuple[int, dict[str, Any]]:
    record: dict[str, Any] = {
        "msgid": f"consent-{seq}",
        "action": "send",
        "from": sender,
        "tolist": [to],
        "roomid": "",
        "msgtime": 1_700_000_000_000 + seq,
        "msgtype": msgtype,
    }
    record[msgtype] = body or {"content": f"message {seq} from {sender}"}
    return seq, record


@pytest.mark.parametrize(("require", "archived"), [(False, {ALICE, DAVE}), (True, {ALICE})])
def test_a_customer_who_did_not_consent_is_never_archived(
    api: Any, sopflow_app: Any, fake: FakeArchive, require: bool, archived: set[str]
) -> None:
    account_id = connect(api)
    r = api.patch(
        f"/api/v1/channel-accounts/{account_id}",
        json={"config": {"corp_id": CORP, "archive_enabled": True, "archive_require_consent": require}},
    )
    assert r.status_code == 200, r.text
    first = [
        chat(1, ALICE, "anna", "agree", userid=ALICE, agree_time=1),
        chat(2, CAROL, "ben", "disagree", userid=CAROL, disagree_time=2),
        chat(3, ALICE, "anna"),
        chat(4, CAROL, "ben"),
    ]
    later = [chat(5, CAROL, "ben"), chat(6, "ben", CAROL), chat(7, DAVE, "anna"), chat(8, "anna", ALICE)]
    fake.serve_records(first)
    assert api.post(f"/plugins/wecom/accounts/{account_id}/archive/pull", json={}).status_code == 200
    fake.serve_records(first + later)  # the answers were stored with the first batch
    assert api.post(f"/plugins/wecom/accounts/{account_id}/archive/pull", json={}).status_code == 200
    events = api.get("/api/v1/events", params={"limit": 200}).json()["items"]
    customers = {
        c["id"]: c["identities"][0]["external_id"] for c in api.get("/api/v1/customers").json()["items"]
    }
    assert {customers[e["customer_id"]] for e in events} == archived
    assert CAROL not in customers.values()  # not even a customer record
    assert status(api, account_id)["seq"] == 8


def test_a_customer_who_approved_through_the_callback_is_archived_when_consent_is_required(
    wecom_app: Any, fake: FakeArchive
) -> None:
    """WeCom's ``msg_audit_approved`` callback counts as the customer's ``agree`` with
    that member, even before the archive holds the answer; a ``disagree`` the archive
    holds still wins, and a replayed callback changes nothing."""
    api, wecom = wecom_app.api, wecom_app.fake
    config = {
        "corp_id": wecom.corp_id,
        "agent_id": 1000002,
        "base_url": wecom.base_url,
        "archive_enabled": True,
        "archive_require_consent": True,
    }
    secrets = {"archive_secret": ARCHIVE_SECRET, "archive_private_keys": private_keys_secret(1)}
    r = api.patch(
        f"/api/v1/channel-accounts/{wecom_app.account_id}", json={"config": config, "secrets": secrets}
    )
    assert r.status_code == 200, r.text
    wecom.approve_archive("anna", DAVE)
    wecom.approve_archive("ben", CAROL)
    replayed = wecom.callback_responses[-1].request
    assert httpx.post(str(replayed.url), content=replayed.content).status_code == 200
    assert [c.status_code for c in wecom.callback_responses] == [200, 200]
    fake.serve_records(
        [
            chat(1, CAROL, "ben", "disagree", userid=CAROL, disagree_time=1),  # changed her mind
            chat(2, DAVE, "anna"),
            chat(3, CAROL, "ben"),
            chat(4, ALICE, "anna"),  # never answered
        ]
    )
    assert (
        api.post(f"/plugins/wecom/accounts/{wecom_app.account_id}/archive/pull", json={}).status_code == 200
    )
    events = api.get("/api/v1/events", params={"limit": 200}).json()["items"]
    approved = [e for e in events if e["type"] == "customer.archive_approved"]
    assert len(approved) == 2 and {e["payload"]["staff_userid"] for e in approved} == {"anna", "ben"}
    received = [e for e in events if e["type"] == "message.received"]
    assert [e["payload"]["text"] for e in received] == [f"message 2 from {DAVE}"]


def test_media_is_metadata_unless_the_account_asks_for_the_content(
    api: Any, sopflow_app: Any, fake: FakeArchive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    photo = bytes(range(256)) * 9  # three of the fake's 1,000-byte pages
    fake.add_media("sdk-file-photo", photo)
    image = {"sdkfileid": "sdk-file-photo", "md5sum": hashlib.md5(photo).hexdigest(), "filesize": len(photo)}
    gone = {"sdkfileid": "sdk-file-expired", "md5sum": "0" * 32, "filesize": 10}
    fake.serve_records([chat(1, ALICE, "anna", "image", **image), chat(2, ALICE, "anna", "file", **gone)])
    account_id = connect(api)
    config = {"corp_id": CORP, "archive_enabled": True, "archive_fetch_media": True}
    assert api.patch(f"/api/v1/channel-accounts/{account_id}", json={"config": config}).status_code == 200
    monkeypatch.delenv("SOPFLOW_WECOM_ARCHIVE_MEDIA_DIR", raising=False)
    unset = api.post(f"/plugins/wecom/accounts/{account_id}/archive/pull", json={})
    assert unset.status_code == 422 and "SOPFLOW_WECOM_ARCHIVE_MEDIA_DIR" in unset.text
    assert fake.calls() == [] and status(api, account_id)["seq"] == 0
    monkeypatch.setenv("SOPFLOW_WECOM_ARCHIVE_MEDIA_DIR", str(tmp_path / "media"))
    assert api.post(f"/plugins/wecom/accounts/{account_id}/archive/pull", json={}).status_code == 200
    events = api.get("/api/v1/events", params={"type": "message.received"}).json()["items"]
    media = {e["payload"]["msg_id"]: e["payload"]["media"] for e in events}
    assert media["consent-1"]["stored"] == {"path": f"{CORP}/consent-1", "size": len(photo), "md5_ok": True}
    assert (tmp_path / "media" / CORP / "consent-1").read_bytes() == photo
    assert media["consent-2"]["type"] == "file" and "10005" in media["consent-2"]["stored"]["error"]
    assert not list((tmp_path / "media" / CORP).glob("*.part"))


def test_staff_are_told_once_when_the_archive_stops(api: Any, sopflow_app: Any, fake: FakeArchive) -> None:
    from sopflow_wecom.fake import FakeWeCom

    with FakeWeCom() as wecom:
        wecom.add_staff("anna")
        r = api.post(
            "/api/v1/channel-accounts",
            json={
                "channel": "wecom",
                "name": "told",
                "config": {
                    "corp_id": wecom.corp_id,
                    "agent_id": 1000002,
                    "base_url": wecom.base_url,
                    "archive_enabled": True,
                    "archive_alert_staff": "anna",
                },
                "secrets": {
                    "secret": wecom.secret,
                    "archive_secret": ARCHIVE_SECRET,
                    "archive_private_keys": private_keys_secret(1),
                },
            },
        )
        assert r.status_code == 201, r.text
        account_id = r.json()["id"]
        fake.fail_with(errcode=301042)
        for _ in range(3):  # the job once, then an operator trying twice before the fix
            api.post(f"/plugins/wecom/accounts/{account_id}/archive/pull", json={})
        [(member, msgtype, body)] = wecom.app_message_bodies
        assert (member, msgtype) == ("anna", "text")
        assert (
            "会话存档" in body["content"] and "301042" in body["content"] and "trusted IPs" in body["content"]
        )
        assert ARCHIVE_SECRET not in body["content"]
        assert status(api, account_id)["staff_told"] is True


def test_one_accounts_failure_does_not_stop_the_others(
    api: Any, sopflow_app: Any, fake: FakeArchive, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sopflow_wecom.archive import job

    broken, fine = connect(api, "broken"), connect(api, "fine")
    real = job.pull_archive

    def pull_or_fail(host: Any, account_id: int, *args: Any, **kwargs: Any) -> Any:
        if account_id == broken:
            raise RuntimeError("a bug in one account's pull")
        return real(host, account_id, *args, **kwargs)

    monkeypatch.setattr(job, "pull_archive", pull_or_fail)
    run_jobs(sopflow_app)
    assert status(api, fine)["seq"] == 108 and status(api, broken)["seq"] == 0


def test_an_init_failure_is_mapped_like_any_other_code(api: Any, sopflow_app: Any, fake: FakeArchive) -> None:
    account_id = connect(api)
    fake.fail_with(init_rc=10011)
    r = api.post(f"/plugins/wecom/accounts/{account_id}/archive/pull", json={})
    assert r.status_code == 409 and "Init returned 10011 (certificate error)" in r.json()["detail"], r.text
    assert status(api, account_id)["healthy"] is False and fake.calls() == []
    fake.fail_with(init_rc=10001)
    r = api.post(f"/plugins/wecom/accounts/{account_id}/archive/pull", json={})
    assert r.status_code == 503 and "Init returned 10001" in r.json()["detail"], r.text


@pytest.mark.parametrize("code", sorted(CODES))
def test_every_mapped_code_takes_its_branch_of_the_error_tree(
    api: Any, sopflow_app: Any, fake: FakeArchive, code: int
) -> None:
    """Each code GetChatData can give (the library's return codes 10000–10011, the
    server's errcode for the others) is told by number and meaning, and does what
    its kind says: retriable keeps the account healthy for the next tick, fatal
    marks it unhealthy; neither moves the cursor or ingests anything."""
    kind, meaning, _ = CODES[code]
    account_id = connect(api)
    fake.fail_with(**{"rc" if code < 20000 else "errcode": code})
    run_jobs(sopflow_app)
    shown = status(api, account_id)
    assert f"{code} ({meaning})" in shown["error"], shown
    assert shown["seq"] == 0 and texts(api) == []
    page_kind = "retriable" if kind == "skippable" else kind  # one message's code, on a whole page
    assert (shown["kind"], shown["healthy"]) == (page_kind, page_kind != "fatal"), shown
