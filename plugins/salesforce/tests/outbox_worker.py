"""A worker process for the kill -9 tests: ``python outbox_worker.py MODE DB_URL ACCOUNT CUSTOMER``.

``queued``: write the customer's change to the outbox, say so, then wait to be killed
(the crash lands between the outbox write and the call).  ``called``: push the
outbox, and when Salesforce has answered the write, say so and wait to be killed
(the crash lands between the call and storing its answer).
"""

from __future__ import annotations

import sys
import time

from sopflow_salesforce import outbox, plugin
from sopflow_sdk.testing.harness import make_test_app


def _wait_for_the_kill(word: str) -> None:
    print(word, flush=True)
    while True:
        time.sleep(1)


def main() -> None:
    mode, url, account_id, customer_id = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    app = make_test_app(url, extra_plugins=[("salesforce", plugin)])
    from sopflow.host import PluginHost

    host = PluginHost(app, "salesforce")
    account = host.channel_account(account_id)
    if mode == "queued":
        customer = host.customer(account.tenant_id, customer_id)
        assert outbox.record_changes(host, account, customer) is not None
        _wait_for_the_kill("queued")
    outbox.settle = lambda *args, **kwargs: _wait_for_the_kill("called")  # type: ignore[assignment]
    outbox.push_account(host, account)


if __name__ == "__main__":
    main()
