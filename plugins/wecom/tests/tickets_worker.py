"""A process for the shared ticket budget test:
``python tickets_worker.py DB_URL ACCOUNT ATTEMPTS APP_LIMIT NOW``
(``NOW``: the test's manual clock, as a Unix time, which stands still here).

Says ``ready``, waits for a line on stdin (so both processes start together),
then forgets and asks for the corp ticket ``ATTEMPTS`` times (an invalidation
storm), and prints ``fetched <n> refused <m>``: how many of its calls got a
ticket and how many the shared budget refused.
"""

from __future__ import annotations

import sys

from sopflow_sdk import RetriableError
from sopflow_sdk.testing.harness import make_test_app
from sopflow_wecom import plugin
from sopflow_wecom.client import WeComClient
from sopflow_wecom.sidebar.tickets import SharedTickets


def main() -> None:
    url, account_id, attempts, app_limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    now = float(sys.argv[5])
    app = make_test_app(url, extra_plugins=[("wecom", plugin)])
    from sopflow.host import PluginHost

    host = PluginHost(app, "wecom")
    account = host.channel_account(account_id)
    client = WeComClient(
        account.config["corp_id"],
        account.secrets["secret"],
        base_url=account.config["base_url"],
        clock=lambda: now,
    )
    tickets = SharedTickets(host, account.tenant_id, client, account.config["agent_id"], app_limit=app_limit)
    print("ready", flush=True)
    sys.stdin.readline()
    got = refused = 0
    for _ in range(attempts):
        tickets.invalidate("corp")
        try:
            tickets.ticket("corp")
            got += 1
        except RetriableError:
            refused += 1
    print(f"fetched {got} refused {refused}", flush=True)


if __name__ == "__main__":
    main()
