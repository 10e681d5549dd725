"""Telling an account's staff member that the platform restricted it.

The channel pauses the account when a send is refused by risk control (inside
the worker's send, where no host is at hand); the intake job, which runs for
every account every few seconds, then tells the member named by
``config.notify_staff`` once per restriction, through ``host.notify_staff``
on ``config.notify_channel`` (WeCom by default: an app message).  The key is
the account's restriction count, so a second restriction is a second notice
and a job that runs again tells nobody twice.
"""

from __future__ import annotations

from typing import Any

from sopflow_sdk import Host

from sopflow_personal_wechat.channel import PersonalWeChatChannel


def restriction_text(account: Any, row: Any, policy: Any) -> str:
    """The notice, in Chinese and English, with the pause's end in the account's time zone."""
    until = f"{policy.local(row['paused_until']):%Y-%m-%d %H:%M} (UTC{policy.utc_offset_hours:+d})"
    return (
        f"个人微信账号「{account.name}」被平台限制，已暂停发送至 {until}。"
        f"Personal WeChat account {account.name} was restricted by WeChat and is paused until "
        f"{until}: {row['paused_reason'] or 'no reason given'}. "
        "Its touches wait and resume in order; check the account before the pause ends."
    )


def tell_restriction(host: Host, account: Any, channel: PersonalWeChatChannel) -> bool:
    """Tell the account's staff member about a restriction not told yet; whether a notice went."""
    staff = account.config.get("notify_staff")
    row = channel.pacer.row(channel.key)
    if not staff or not row["restrictions"] or row["paused_until"] <= channel.pacer.clock():
        return False
    return host.notify_staff(
        account.tenant_id,
        str(account.config.get("notify_channel") or "wecom"),
        str(staff),
        restriction_text(account, row, channel.policy),
        key=f"restricted:{account.id}:{row['restrictions']}",
    )
