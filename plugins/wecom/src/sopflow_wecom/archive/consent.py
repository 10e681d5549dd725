"""Customers' consent to the archive (``agree`` / ``disagree`` messages).

Where the corp asks customers first (会话存档 "需客户同意"), WeCom archives an
``agree`` or ``disagree`` message (the callback's ``msg_audit_approved``) for a
customer and the staff member who asked.  The pull keeps each customer's answers
in plugin state, in the same transaction as the batch, and nothing of a
customer who said no — text, media, staff messages to them — becomes an event.
With ``archive_require_consent`` a customer who has not said yes is left out too.

The ``msg_audit_approved`` callback may arrive before the pull reads the archived
answer: ``approve`` keeps it (one key per customer and member, added, so callbacks
racing never overwrite each other) and it counts as that member's ``agree`` until
the archive itself holds an answer for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sopflow_sdk import IngestEvent, PluginState

from sopflow_wecom.archive.mapping import ArchivedMessage, is_external, staff_of

CONSENT_TYPES = ("agree", "disagree")


def consent_key(account_id: int, external_userid: str) -> str:
    """State key of one customer's answers: ``{staff userid: "agree" | "disagree"}``."""
    return f"archive.consent.{account_id}.{external_userid}"


def approval_prefix(account_id: int, external_userid: str) -> str:
    """State key prefix of the members a customer approved by callback (the key ends with the userid)."""
    return f"archive.approved.{account_id}.{external_userid}."


def approve(state: PluginState, account_id: int, external_userid: str, staff_userid: str | None) -> bool:
    """Keep a ``msg_audit_approved`` callback: ``external_userid`` agreed to archiving
    with ``staff_userid`` ("*" when WeCom named no member); whether it was new."""
    return state.add(approval_prefix(account_id, external_userid) + (staff_userid or "*"), True)


class ConsentBook:
    """The answers of the customers one batch touches, read and written through ``state``."""

    def __init__(self, state: PluginState, account_id: int, *, require: bool) -> None:
        self.state, self.account_id, self.require = state, account_id, require
        self._answers: dict[str, dict[str, str]] = {}
        self._changed: set[str] = set()

    def _of(self, customer: str) -> dict[str, str]:
        if customer not in self._answers:
            saved = self.state.get(consent_key(self.account_id, customer))
            answers = dict(saved) if isinstance(saved, Mapping) else {}
            prefix = approval_prefix(self.account_id, customer)
            for key in self.state.items(prefix):  # the callback's, where the archive holds none
                answers.setdefault(key[len(prefix) :], "agree")
            self._answers[customer] = answers
        return self._answers[customer]

    def observe(self, message: ArchivedMessage) -> bool:
        """Record ``message`` when it is an answer (and say so)."""
        record = message.record
        msgtype = record.get("msgtype")
        if msgtype not in CONSENT_TYPES or message.skipped is not None:
            return False
        body: Any = record.get(msgtype)
        named = body.get("userid") if isinstance(body, Mapping) else None
        customer = str(named or record.get("from") or "")
        staff = staff_of(record.get("tolist")) or "*"
        if is_external(customer):
            self._of(customer)[staff] = str(msgtype)
            self._changed.add(customer)
        return True

    def allows(self, event: IngestEvent) -> bool:
        """Whether the customer of ``event`` may be archived."""
        answers = self._of(event.identity.external_id)
        staff = event.identity.staff_external_id
        said = {answers.get(staff), answers.get("*")} if staff else set(answers.values())
        if "disagree" in said:
            return False
        return "agree" in said or not self.require

    def save(self) -> None:
        for customer in sorted(self._changed):
            self.state.set(consent_key(self.account_id, customer), self._answers[customer])
        self._changed.clear()
