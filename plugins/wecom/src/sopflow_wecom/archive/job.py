"""The periodic archive pull (job ``wecom.archive.pull``) and one account's pull.

Each tick looks at every WeCom account with ``archive_enabled``; an account whose
``archive_pull_seconds`` have passed since its last pull is pulled: up to
``MAX_BATCHES`` calls of ``GetChatData`` with 1,000 messages each, every batch's
events committed with the cursor past them (``pull.pull_archive``).

What an error does (``errors.CODES``): a retriable one ends this pull and the
next tick tries again from the same cursor; a fatal one (wrong secret, IP not on
the whitelist, a missing key version, a bad setting) marks the account's archive
unhealthy — logged as a warning, shown by ``GET …/archive``, staff told once.
An unhealthy account is not pulled but **probed** on a backoff (``probe_delay``:
5 minutes after it turned unhealthy, doubling to an hour): one ``GetChatData``
of one message from the cursor.  The probe that succeeds marks the account
healthy again (staff told once more) and the next pulls run on the interval; an
operator who fixed the cause need not wait: ``POST …/archive/pull`` pulls now.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import attrs
from sopflow_sdk import ConfigError, FatalError, Host, JobSpec, RetriableError, Secret

from sopflow_wecom.archive import alert, media
from sopflow_wecom.archive.errors import FinanceSdkError, to_sopflow_error
from sopflow_wecom.archive.keys import parse_keys
from sopflow_wecom.archive.native import FinanceSdk
from sopflow_wecom.archive.pull import ArchivePull, pull_archive
from sopflow_wecom.archive.settings import (
    DEFAULT_PULL_SECONDS,
    PROBE_FIRST_SECONDS,
    PROBE_MAX_SECONDS,
    TICK_SECONDS,
)
from sopflow_wecom.archive.source import FinanceArchiveSource
from sopflow_wecom.events import CHANNEL

log = logging.getLogger("sopflow_wecom.archive")

JOB = "wecom.archive.pull"
#: GetChatData calls per pull: 10,000 messages, then the next tick goes on.
MAX_BATCHES = 10


def probe_delay(failures: int) -> timedelta:
    """How long after its ``failures``-th failed attempt (0: the one that marked it
    unhealthy) an unhealthy account is probed: 5, 10, 20, 40 minutes, then hourly."""
    return timedelta(seconds=min(PROBE_FIRST_SECONDS * 2 ** min(failures, 16), PROBE_MAX_SECONDS))


def health_key(account_id: int) -> str:
    return f"archive.health.{account_id}"


def health(host: Host, tenant_id: int, account_id: int) -> dict[str, Any]:
    """The account's archive health: ``healthy``, the last ``error`` and its ``kind``,
    ``last_pull_at`` and what the last pull did (``last_pull``)."""
    return dict(host.state(tenant_id).get(health_key(account_id)) or {"healthy": True})


def _config_problems(account: Any) -> list[tuple[str, str]]:
    problems = []
    if not account.config.get("corp_id"):
        problems.append(("config.corp_id", "set it to the corp's CorpID"))
    if not account.secrets.get("archive_secret"):
        problems.append(("secrets.archive_secret", "set it to the Secret under 管理工具 → 会话内容存档"))
    return problems


def _open_sdk(corp_id: str, secret: Secret, subject: str) -> FinanceSdk:
    """``NewSdk`` + ``Init``, a failing code raised as its kind of the error tree."""
    try:
        return FinanceSdk(corp_id, secret)
    except FinanceSdkError as exc:
        raise to_sopflow_error(exc.code, exc.call, subject) from None


def pull_account(
    host: Host, account: Any, *, max_batches: int = MAX_BATCHES, limit: int = 1000
) -> ArchivePull:
    """One pull of ``account``'s archive now; its health is recorded either way.
    Raises what it records (``RetriableError``, ``FatalError``, ``ConfigError``)."""
    state = host.state(account.tenant_id)
    before = health(host, account.tenant_id, account.id)
    now = host.now().isoformat()
    try:
        problems = _config_problems(account)
        if problems:
            raise ConfigError(problems, subject=f"WeCom archive of account {account.id}")
        keys = parse_keys(account.secrets.get("archive_private_keys"))
        secret = Secret(account.secrets["archive_secret"])  # a Secret already, or its value
        subject = f"WeCom archive of account {account.id}"
        with _open_sdk(str(account.config["corp_id"]), secret, subject) as sdk:
            root = media.media_dir() if account.config.get("archive_fetch_media") else None
            corp = str(account.config["corp_id"])
            source = FinanceArchiveSource(sdk, keys, subject=subject, media_root=root, corp_id=corp)
            result = pull_archive(host, account.id, source, limit=limit, max_batches=max_batches)
    except RetriableError as exc:
        log.info("wecom archive pull of account %s will be retried: %s", account.id, exc.internal_message)
        if before.get("healthy") is False:  # a probe that could not tell: still unhealthy, probed later
            state.set(health_key(account.id), _failed_again(before, host.now(), now))
        else:
            state.set(
                health_key(account.id),
                {
                    **before,
                    "healthy": True,
                    "kind": "retriable",
                    "error": exc.user_message,
                    "last_pull_at": now,
                },
            )
        raise
    except (FatalError, ConfigError) as exc:
        log.warning("wecom archive of account %s is unhealthy: %s", account.id, exc.internal_message)
        if before.get("healthy") is False:
            state.set(
                health_key(account.id), {**_failed_again(before, host.now(), now), "error": exc.user_message}
            )
            raise
        told = _tell_once(state, account, "stopped", before.get("last_pull_at"), exc.user_message)
        state.set(
            health_key(account.id),
            {
                **before,
                "healthy": False,
                "kind": "fatal",
                "error": exc.user_message,
                "last_pull_at": now,
                "unhealthy_since": now,
                "failed_probes": 0,
                "next_probe_at": (host.now() + probe_delay(0)).isoformat(),
                "staff_told": told if told is not None else _stored(state, account.id).get("staff_told"),
            },
        )
        raise
    mark: dict[str, Any] = {
        "healthy": True,
        "kind": None,
        "error": None,
        "last_pull_at": now,
        "last_pull": attrs.asdict(result),
    }
    if before.get("healthy") is False:
        log.warning("wecom archive of account %s is healthy again", account.id)
        told = _tell_once(state, account, "recovered", before.get("unhealthy_since"))
        if told is None:  # the racing pull told them: keep what it recorded
            told = _stored(state, account.id).get("staff_told_recovered")
        mark |= {"recovered_at": now, "staff_told_recovered": told}
    elif before.get("recovered_at"):
        mark |= {k: before[k] for k in ("recovered_at", "staff_told_recovered") if k in before}
    state.set(health_key(account.id), mark)
    return result


def _tell_once(state: Any, account: Any, turn: str, since: str | None, error: str = "") -> bool | None:
    """Tell staff the account stopped (``turn`` "stopped", with ``error``) or works
    again ("recovered"): whether the notice went, or None when another pull of the
    account told them.  Two pulls racing (two processes) read the same health
    before; the first to add the turn's key (named by the state it leaves) tells,
    so staff hear of each stop and each recovery once.  A recovery drops the keys
    of the episode it closes."""
    prefix = f"archive.told.{account.id}."
    key = f"{prefix}{turn}.{since or 'never'}"
    if not state.add(key, True):
        return None
    if turn == "recovered":
        for old in state.items(prefix):
            if old != key:
                state.delete(old)
        return alert.tell_staff(account, alert.recovered_text(account))
    return alert.tell_staff(account, alert.alert_text(account, error))


def _stored(state: Any, account_id: int) -> dict[str, Any]:
    """The account's health as stored now (not as this pull read it before)."""
    return dict(state.get(health_key(account_id)) or {})


def _failed_again(before: dict[str, Any], at: datetime, now: str) -> dict[str, Any]:
    """The health of an unhealthy account after one more failed attempt: the next
    probe further off (``probe_delay``)."""
    failures = int(before.get("failed_probes") or 0) + 1
    return {
        **before,
        "last_pull_at": now,
        "failed_probes": failures,
        "next_probe_at": (at + probe_delay(failures)).isoformat(),
    }


def _due(host: Host, account: Any) -> str | None:
    """``"pull"``, ``"probe"`` (an unhealthy account whose next probe is due) or None."""
    mark = health(host, account.tenant_id, account.id)
    last = mark.get("last_pull_at")
    if mark.get("healthy") is False:
        # Not every tick: retrying a wrong secret only fills the log and WeCom's counters.
        planned = mark.get("next_probe_at")
        if planned:
            at = datetime.fromisoformat(planned)
        else:  # marked before probes existed
            at = datetime.fromisoformat(last) + probe_delay(0) if last else host.now()
        return "probe" if host.now() >= at else None
    interval = float(account.config.get("archive_pull_seconds") or DEFAULT_PULL_SECONDS)
    if not last or (host.now() - datetime.fromisoformat(last)).total_seconds() >= interval:
        return "pull"
    return None


def pull_all(host: Host) -> None:
    """Job ``wecom.archive.pull``: every due account with the archive enabled, each on its own."""
    for account in host.channel_accounts(CHANNEL):
        due = _due(host, account) if account.config.get("archive_enabled") else None
        if due is None:
            continue
        try:
            if due == "probe":  # one cheap call: one message from the cursor, kept if it comes
                result = pull_account(host, account, max_batches=1, limit=1)
            else:
                result = pull_account(host, account)
            log.info("wecom archive pull of account %s: %s", account.id, attrs.asdict(result))
        except (RetriableError, FatalError, ConfigError):
            continue  # recorded and logged by pull_account; the other accounts go on
        except Exception:  # a batch core refused, a bug: its cursor stayed; the others go on
            log.exception("wecom archive pull of account %s failed", account.id)


def job_spec() -> JobSpec:
    return JobSpec(
        name=JOB,
        fn=pull_all,
        every_seconds=TICK_SECONDS,
        description="pull the WeCom conversation archive of every account that enables it",
    )
