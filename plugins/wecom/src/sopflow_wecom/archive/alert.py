"""Telling staff that an account's archive stopped, and that it works again: one
WeCom app message to the members in ``config.archive_alert_staff`` when the
account turns unhealthy, one when it recovers (never on every later tick),
through the account's own app (``agent_id`` and ``secret``)."""

from __future__ import annotations

import logging
from typing import Any

from sopflow_sdk import Secret, SopflowError

from sopflow_wecom.client import BASE_URL, WeComClient

log = logging.getLogger("sopflow_wecom.archive")


def alert_text(account: Any, error: str) -> str:
    name = account.name or account.id
    return f"sopflow: the conversation archive (会话存档) of WeCom account {name} stopped: {error}"


def recovered_text(account: Any) -> str:
    name = account.name or account.id
    return (
        f"sopflow: the conversation archive (会话存档) of WeCom account {name} works again; pulling resumed"
    )


def tell_staff(account: Any, text: str) -> bool:
    """Send ``text`` (``alert_text`` or ``recovered_text``); whether it went.  A failure
    is logged, never raised: the account's health is recorded either way."""
    staff = str(account.config.get("archive_alert_staff") or "")
    if not staff:
        return False
    agent_id, secret = account.config.get("agent_id"), account.secrets.get("secret")
    if not agent_id or not secret:
        log.warning("wecom archive alert of account %s not sent: it needs config.agent_id", account.id)
        return False
    client = WeComClient(
        str(account.config["corp_id"]), Secret(secret), account.config.get("base_url", BASE_URL)
    )
    try:
        client.send_app_message(agent_id, staff, text)
        return True
    except SopflowError as exc:
        log.warning("wecom archive alert of account %s not sent: %s", account.id, exc.internal_message)
        return False
    finally:
        client.close()
