"""WeCom conversation archive: N archived messages pulled through the Finance SDK
binding (the C fake ``sopflow_wecom/fake/finance_sdk.c``, compiled here with
``cc``: RSA-2048 per message, ``DecryptData``, consent, mapping, one transaction per
1,000 with the cursor) against the same events straight through ``host.ingest``.
Ratios in one run, printed; nothing here is asserted in a test.

    uv run python -m bench.wecom_archive --messages 5000 [--backend postgres]

Both paths end in the same ingest and keyword evaluation; the ratio is what the
archive adds on top.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.load import START, Database, api_client

# The test key pairs and the fake's fixtures-side helpers live with the plugin's tests.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "plugins" / "wecom" / "tests"))


def _records(n: int) -> list[tuple[int, dict[str, Any]]]:
    phrases = ("请问多少钱？", "太贵了", "发货了吗", "你好")
    return [
        (
            seq,
            {
                "msgid": f"bench-{seq:07d}",
                "action": "send",
                "from": f"wmBench{seq % 500:05d}",
                "tolist": [f"staff{seq % 7}"],
                "roomid": "",
                "msgtime": 1_700_000_000_000 + seq * 1000,
                "msgtype": "text",
                "text": {"content": f"{phrases[seq % 4]} #{seq}"},
            },
        )
        for seq in range(1, n + 1)
    ]


def run(messages: int, backend: str) -> dict[str, float]:
    from archive_support import ARCHIVE_SECRET, FakeArchive, build_fake, private_keys_secret
    from sopflow.clock import ManualClock
    from sopflow.host import PluginHost
    from sopflow_sdk.testing.harness import make_test_app
    from sopflow_wecom import plugin
    from sopflow_wecom.archive import native, to_ingest_events
    from sopflow_wecom.archive.job import pull_account
    from sopflow_wecom.archive.mapping import ArchivedMessage

    work = Path(tempfile.mkdtemp(prefix="wecom-archive-bench-"))
    library = build_fake(work)
    (work / "data").mkdir()
    fake = FakeArchive(work / "data", library)
    os.environ["WWFAKE_DIR"], os.environ[native.LIBRARY_ENV] = str(fake.dir), str(library)
    records = _records(messages)
    started = time.perf_counter()
    fake.serve_records(records)
    sealing = time.perf_counter() - started
    results: dict[str, float] = {"messages": messages, "sealing_s": round(sealing, 2)}
    for path in ("plain", "archive"):
        db = Database(backend)
        db.create(f"wecom_archive_{path}")
        app = make_test_app(db.url, clock=ManualClock(START), extra_plugins=[("wecom", plugin)])
        try:
            with api_client(app) as api:
                rule = {
                    "name": "询价",
                    "keywords": ["多少钱"],
                    "actions": [{"type": "add_tag", "tag": "意向"}],
                }
                assert api.post("/api/v1/keyword-rules", json=rule).status_code == 201
                account = api.post(
                    "/api/v1/channel-accounts",
                    json={
                        "channel": "wecom",
                        "name": "bench",
                        # tags the rule adds are pushed to WeCom by a job: a closed local port
                        # refuses at once, so no time goes to a network the bench is not about
                        "config": {
                            "corp_id": "wwbench",
                            "archive_enabled": True,
                            "base_url": "http://127.0.0.1:9",
                        },
                        "secrets": {
                            "secret": "s" * 32,
                            "archive_secret": ARCHIVE_SECRET,
                            "archive_private_keys": private_keys_secret(1),
                        },
                    },
                ).json()["id"]
                host = PluginHost(app, "wecom")
                started = time.perf_counter()
                if path == "plain":
                    events = to_ingest_events([ArchivedMessage(s, r) for s, r in records], "wwbench")
                    for start in range(0, len(events), 1000):
                        host.ingest(api.tenant_id, events[start : start + 1000])
                    created = len(events)
                else:
                    result = pull_account(host, host.channel_account(account), max_batches=10_000)
                    created = result.created
                results[f"{path}_s"] = round(time.perf_counter() - started, 2)
                results[f"{path}_created"] = created
        finally:
            app.dispose()
    results["archive_vs_plain"] = round(results["archive_s"] / results["plain_s"], 2)
    results["archive_messages_per_s"] = round(messages / results["archive_s"], 1)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=5_000)
    ap.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    args = ap.parse_args()
    for key, value in run(args.messages, args.backend).items():
        print(f"{key:40} {value}")


if __name__ == "__main__":
    main()
