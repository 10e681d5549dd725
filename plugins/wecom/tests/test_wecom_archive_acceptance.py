"""Acceptance: 5,000 archived messages pulled by real ``sopflow wecom archive-pull``
processes over the C fake of WeCom's Finance SDK, one of them killed with SIGKILL
between two GetChatData calls: every customer message is ingested exactly once,
the cursor ends at the last seq, and the keyword rules tagged the customers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
import sopflow_wecom.plugin
from archive_support import ARCHIVE_SECRET, FakeArchive, fake_archive, fake_library, private_keys_secret
from sopflow_wecom.archive import native

__all__ = ["fake_archive", "fake_library"]  # fixtures

CORP = "wwarchiveload0001"
TOTAL = 5000
PHRASES = ("请问多少钱？", "太贵了", "发货了吗", "你好")


@pytest.fixture
def sopflow_plugins() -> list[tuple[str, Any]]:
    return [("wecom", sopflow_wecom.plugin)]


def archive(total: int) -> list[tuple[int, dict[str, Any]]]:
    """Private chats of 40 customers with two staff members; every fifth message is the
    staff member's, every 97th a ``switch`` marker."""
    out = []
    for seq in range(1, total + 1):
        customer, staff = f"wmLoadTest{seq % 40:04d}", ("anna", "ben")[seq % 40 % 2]
        msgid = f"load-{seq:05d}"
        if seq % 97 == 0:
            record: dict[str, Any] = {
                "msgid": msgid,
                "action": "switch",
                "time": 1_700_000_000_000,
                "user": staff,
            }
        else:
            sender, to = (staff, customer) if seq % 5 == 0 else (customer, staff)
            record = {
                "msgid": msgid,
                "action": "send",
                "from": sender,
                "tolist": [to],
                "roomid": "",
                "msgtime": 1_700_000_000_000 + seq * 1000,
                "msgtype": "text",
                "text": {"content": f"{PHRASES[seq % len(PHRASES)]} #{seq}"},
            }
        out.append((seq, record))
    return out


def pages(api: Any, path: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        sep = "&" if "?" in path else "?"
        page = api.get(f"{path}{sep}limit=500" + (f"&cursor={cursor}" if cursor else ""))
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if not cursor:
            break
    return items


def test_five_thousand_messages_in_six_pulls_survive_a_kill_9(
    api: Any, sopflow_app: Any, fake_archive: FakeArchive
) -> None:
    from sopflow_sdk.testing.harness import TEST_SECRET_KEY

    records = archive(TOTAL)
    fake_archive.serve_records(records)
    rule = {"name": "询价", "keywords": ["多少钱"], "actions": [{"type": "add_tag", "tag": "意向"}]}
    assert api.post("/api/v1/keyword-rules", json=rule).status_code == 201
    r = api.post(
        "/api/v1/channel-accounts",
        json={
            "channel": "wecom",
            "name": "archive",
            # the tags the rule adds are pushed to WeCom by a job; a closed local port
            # refuses at once, so the test never reaches for the real WeCom
            "config": {"corp_id": CORP, "archive_enabled": True, "base_url": "http://127.0.0.1:9"},
            "secrets": {
                "secret": "s" * 32,
                "archive_secret": ARCHIVE_SECRET,
                "archive_private_keys": private_keys_secret(1),
            },
        },
    )
    assert r.status_code == 201, r.text
    account_id = r.json()["id"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPFLOW_")}
    env.update(
        SOPFLOW_DATABASE_URL=sopflow_app.settings.database_url,
        SOPFLOW_SECRET_KEY=TEST_SECRET_KEY,
        SOPFLOW_LOG_LEVEL="WARNING",
        WWFAKE_DIR=str(fake_archive.dir),
        SOPFLOW_WECOM_ARCHIVE_LIBRARY=os.environ[native.LIBRARY_ENV],
    )
    cmd = [sys.executable, "-m", "sopflow.cli", "wecom", "archive-pull", str(account_id), "--limit", "1000"]

    def pull(batches: int = 1) -> str:
        done = subprocess.run(
            [*cmd, "--batches", str(batches)], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    assert "seq 1000: fetched 1000" in pull()
    assert "seq 2000: fetched 1000" in pull()
    # The third process reads batch 3 (committed with its cursor), then hangs in its
    # next GetChatData and is killed there: no goodbye, no cleanup.
    fake_archive.hang(from_call=4)
    killed = subprocess.Popen(
        [*cmd, "--batches", "2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 240
    while not fake_archive.hanging and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # waits for another process, not for time to pass
    assert fake_archive.hanging, killed.communicate(timeout=10)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(timeout=30)
    assert killed.returncode == -signal.SIGKILL
    fake_archive.hang(None)
    assert api.get(f"/plugins/wecom/accounts/{account_id}/archive").json()["seq"] == 3000
    assert "seq 4000: fetched 1000" in pull()
    assert "seq 5000: fetched 1000" in pull()
    assert "seq 5000: fetched 0, created 0" in pull()  # the sixth pull: caught up
    assert [seq for seq, _ in fake_archive.calls()] == [0, 1000, 2000, 3000, 3000, 4000, 5000]

    customer_texts = {
        r["msgid"]: r for _, r in records if r.get("action") == "send" and r["from"].startswith("wm")
    }
    events = pages(api, "/api/v1/events?type=message.received")
    got = [e["payload"]["msg_id"] for e in events]
    assert len(got) == len(set(got)) == len(customer_texts)  # each exactly once
    assert set(got) == set(customer_texts)
    status = api.get(f"/plugins/wecom/accounts/{account_id}/archive").json()
    assert status["seq"] == TOTAL and status["healthy"] is True and status["skipped"] == []
    askers = {r["from"] for r in customer_texts.values() if "多少钱" in r["text"]["content"]}
    customers = pages(api, "/api/v1/customers")
    tagged = {i["external_id"] for c in customers if "意向" in c.get("tags", []) for i in c["identities"]}
    assert askers and tagged == askers
