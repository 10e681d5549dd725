"""A long-lived listener on one account's gateway event stream, reconnecting when it drops.

The periodic intake (``intake.run``) opens the stream, reads until it is idle
and closes it, so events between two runs reach sopflow only if the provider
keeps them.  A ``Listener`` keeps the stream open in a thread instead: each
event is handled as it comes (``intake.handle``), an idle stream is simply
reopened, and a stream that drops (the gateway restarts, the network goes) is
reopened after a back-off that doubles from ``backoff`` up to
``max_backoff`` seconds and resets once events flow again.  Friend requests
the daily cap held back are retried at every reopening, and contacts a failed
send found to have deleted the account are reported then.

A logout ends the listener (a logged-out account's stream carries only the
QR scan and the re-login, which the periodic intake reads); ``listeners``
starts it again once the account is logged in.

Idempotency keys come from the gateway's ids, so an event offered again after
a reconnect is a duplicate, not a second customer or greeting.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sopflow_sdk import Host, SopflowError

from sopflow_personal_wechat import intake
from sopflow_personal_wechat.channel import PersonalWeChatChannel

log = logging.getLogger("sopflow_personal_wechat")


class Listener:
    """``Listener(host, account, channel).start()``; ``stop()`` ends it within ``idle_timeout``."""

    def __init__(
        self,
        host: Host | None,
        account: Any,
        channel: PersonalWeChatChannel,
        *,
        idle_timeout: float = 30.0,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
    ) -> None:
        self.host, self.account, self.channel = host, account, channel
        self.idle_timeout, self.backoff, self.max_backoff = idle_timeout, backoff, max_backoff
        self.events = 0  # events handled
        self.drops = 0  # times the stream failed and was reopened
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"pw-listener-{channel.key}", daemon=True)

    def __repr__(self) -> str:
        return f"<Listener {self.channel.key} events={self.events} drops={self.drops}>"

    def start(self) -> Listener:
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        self.request_stop()
        self._thread.join(self.idle_timeout + 5 if timeout is None else timeout)

    def request_stop(self) -> None:
        """Ask it to end (it does within ``idle_timeout``) without waiting: stopping many at once."""
        self._stop.set()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        delay = self.backoff
        while not self._stop.is_set():
            try:
                if self.host is not None:
                    intake.accept_waiting(self.host, self.account, self.channel)
                    intake.report_unfriended(self.host, self.account, self.channel)
                for event in self.channel.gateway.events(idle_timeout=self.idle_timeout):
                    intake.handle(self.host, self.account, self.channel, event)  # type: ignore[arg-type]
                    self.events += 1
                    delay = self.backoff  # it flows again: the next drop starts from the least wait
                    if self._stop.is_set() or event.kind == "logout":
                        return
            except SopflowError as exc:  # dropped or refused: wait, then reopen
                self.drops += 1
                log.warning(
                    "personal WeChat event stream of %s dropped, reopening in %.1f s: %s",
                    self.channel.key,
                    delay,
                    exc.user_message,
                )
                self._stop.wait(delay)
                delay = min(delay * 2, self.max_backoff)
