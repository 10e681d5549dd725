"""The worker service that keeps one ``Listener`` per logged-in personal WeChat account.

Every worker process runs ``run_listeners`` (``register_worker_services``).
Every ``RECONCILE_SECONDS`` it compares the listeners it runs with the
accounts it should listen to — the personal WeChat accounts of tenants that
have the plugin on, whose pacing row says logged in — and starts the missing
ones, stops the ones whose account went away, was switched off, logged out or
changed its settings, and replaces one whose thread ended (a logout ends it).
At the worker's shutdown it stops them all.  The periodic intake job reads
the accounts with no live listener in its process (the logged-out ones: their
QR scan and re-login), so a login reaches the pacing row and the next
reconciliation starts the account's listener again.

One process listens to an account at a time: a listener holds a lease in the
plugin's state (``listener_lease:<account id>``, renewed at every
reconciliation, ``LEASE_SECONDS`` on the host's clock), so two worker
processes do not both read one stream — WeChatFerry's message socket takes one
client — and when the holder dies another worker takes over once its lease
runs out.  Should two ever read at once (a lease that ran out under a stalled
process) nothing is ingested twice: each event's idempotency key is the
gateway's own id (a message's id, a friend request's id, a room join's room,
member and time), and login, logout and heartbeat only set the account's row.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid

import sqlalchemy as sa
from sopflow_sdk import Host, SopflowError

from sopflow_personal_wechat.accounts import account_channel
from sopflow_personal_wechat.channel import CHANNEL, PersonalWeChatChannel
from sopflow_personal_wechat.listener import Listener

#: seconds between two looks at which accounts should have a listener: a new or
#: re-logged-in account waits at most this long (plus an intake run) for its stream
RECONCILE_SECONDS = 5.0
#: a listener's wait for one more event before it reopens the stream: also the most
#: a worker's shutdown waits for it
IDLE_SECONDS = 5.0

#: how long a listener's lease lasts unrenewed: another worker takes the account over
#: this long after its holder died (several reconciliations, so a slow pass keeps it)
LEASE_SECONDS = 60.0
LEASE = "listener_lease:"
#: this process, as a lease names its holder
OWNER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

#: account id → its listener in this process (the intake job leaves those accounts alone)
running: dict[int, Listener] = {}
_guard = threading.Lock()


def run_listeners(host: Host, stop: threading.Event) -> None:
    """Keep the listeners right until ``stop`` is set, then stop every one of them."""
    try:
        while not stop.is_set():
            reconcile(host)
            stop.wait(RECONCILE_SECONDS)
    finally:
        for listener in stop_all():
            release(host, listener.account.tenant_id, listener.account.id)


def reconcile(host: Host) -> None:
    """Start, stop and replace listeners so each logged-in account has one live one,
    in the process that holds its lease."""
    wanted: dict[int, tuple[object, PersonalWeChatChannel]] = {}
    for account in host.channel_accounts(CHANNEL):  # tenants with the plugin off are left out
        channel = account_channel(account, host)
        if channel.pacer.row(channel.key)["logged_in"] and lease(host, account.tenant_id, account.id):
            wanted[account.id] = (account, channel)
    ended: set[int] = set()
    with _guard:
        for account_id, listener in list(running.items()):
            keep = account_id in wanted and listener.channel is wanted[account_id][1] and listener.alive
            if not keep:
                if not listener.alive:  # it ended by itself (a logout) after ``wanted`` was read
                    ended.add(account_id)
                listener.request_stop()
                del running[account_id]
                if account_id not in wanted:
                    release(host, listener.account.tenant_id, account_id)
        for account_id, (account, channel) in wanted.items():
            # one that just ended starts again at the next look, on the state read then
            if account_id not in running and account_id not in ended:
                running[account_id] = Listener(host, account, channel, idle_timeout=IDLE_SECONDS).start()


def lease(host: Host, tenant_id: int, account_id: int, owner: str = OWNER) -> bool:
    """Take or renew the account's listener lease; whether ``owner`` holds it now."""
    now = host.now().timestamp()
    try:
        with host.transaction(tenant_id) as tx:
            held = tx.state.get(LEASE + str(account_id), lock=True)
            if held and held["owner"] != owner and held["until"] > now:
                return False
            tx.state.set(LEASE + str(account_id), {"owner": owner, "until": now + LEASE_SECONDS})
    except (
        sa.exc.DBAPIError,
        SopflowError,
    ):  # another worker took it at this moment (a unique key, a busy write)
        return False
    return True


def release(host: Host, tenant_id: int, account_id: int, owner: str = OWNER) -> None:
    """Give the lease up (logout, switched off, shutdown) so another worker need not wait."""
    try:
        with host.transaction(tenant_id) as tx:
            held = tx.state.get(LEASE + str(account_id), lock=True)
            if held and held["owner"] == owner:
                tx.state.delete(LEASE + str(account_id))
    except (sa.exc.DBAPIError, SopflowError):  # the plugin switched off, the database down: it runs out
        return


def stop_all() -> list[Listener]:
    """Stop every listener of this process: all asked first, then each waited for."""
    with _guard:
        stopping = list(running.values())
        running.clear()
    for listener in stopping:
        listener.request_stop()
    for listener in stopping:
        listener.stop()
    return stopping


def listening(account_id: int) -> bool:
    """Whether this process has a live listener on the account."""
    listener = running.get(account_id)
    return listener is not None and listener.alive
