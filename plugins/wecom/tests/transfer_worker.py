"""A process for the kill -9 transfer test: ``python transfer_worker.py DB_URL ACCOUNT``.

Starts the account's planned transfers; once WeCom has answered the first call,
it says ``called`` and waits to be killed, so the crash lands between WeCom
starting the handovers and sopflow recording that it did.
"""

from __future__ import annotations

import sys
import time

from sopflow_sdk.testing.harness import make_test_app
from sopflow_wecom import plugin, transfers


def _wait_for_the_kill(*args: object) -> None:
    print("called", flush=True)
    while True:
        time.sleep(1)


def main() -> None:
    url, account_id = sys.argv[1], int(sys.argv[2])
    app = make_test_app(url, extra_plugins=[("wecom", plugin)])
    from sopflow.host import PluginHost

    host = PluginHost(app, "wecom")
    account = host.channel_account(account_id)
    transfers._record_start = _wait_for_the_kill  # type: ignore[assignment]
    transfers.start_planned(host, account)


if __name__ == "__main__":
    main()
