"""The keyword scene through WeCom's conversation archive (会话内容存档).

Customers' replies to staff are not callbacks in WeCom: sopflow reads them from
the archive, through WeCom's Finance SDK.  Here that SDK is the plugin's C fake
(``sopflow_wecom.fake.archive``, compiled with ``cc`` on first use into
``~/.cache/sopflow``), loaded by the plugin's own binding exactly as Tencent's
library would be.  At set-up the demo generates the corp's archive key pair (the
private key goes into the channel account's encrypted secrets, the public one
seals the messages, as the admin console would; nothing is written to the
repository) and an archive Secret.

As the simulation goes on, ``DemoArchive`` records the chat WeCom would archive:
each customer's reply (``多少钱`` and the others), the staff member's answer to a
price question, and a note the staff member sends a colleague about it (staff to
staff: not a customer's, so it becomes nothing).  The world runs the plugin's
pull job (``wecom.archive.pull``) on the demo's clock whenever the chat grew;
the keyword rules tag the customers who asked the price 询价, and the journey
moves them to 决策.  ``archive_checks`` compares the chat with the database.
"""

from __future__ import annotations

import json
import os
import secrets
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sopflow.models import ChannelIdentity, CustomerStage, CustomerTag, Event, Stage
from sopflow_wecom.fake import archive as fake_sdk

#: The key version the demo corp's public key was uploaded under.
KEY_VERSION = 1
PRICE_TAG = "询价"


class DemoArchive:
    """The demo corp's archive: the C fake, its key pair and the chat it holds."""

    def __init__(self, directory: Path) -> None:
        library = fake_sdk.compiled_library()  # CompilerMissing says how to get cc
        self.secret = "demo-archive-" + secrets.token_urlsafe(24)
        self.fake = fake_sdk.FakeArchive(directory, library, self.secret)
        self.fake.serve([])
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._saved_env: dict[str, str | None] = {}
        #: what was archived, by kind: "customer", "staff", "colleague"
        self.counts: Counter[str] = Counter()
        #: each customer's archived texts, for the checks
        self.customer_texts: dict[str, list[str]] = {}
        self.pulled_seq = 0

    def __enter__(self) -> DemoArchive:
        # The binding and the C fake read these from the process environment.
        for name, value in self.fake.environment().items():
            self._saved_env[name] = os.environ.get(name)
            os.environ[name] = value
        return self

    def __exit__(self, *exc: Any) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def account_settings(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The WeCom account's archive ``config`` and ``secrets``."""
        pem = self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        config = {"archive_enabled": True, "archive_pull_seconds": 60}
        keys = json.dumps({str(KEY_VERSION): pem})
        return config, {"archive_secret": self.secret, "archive_private_keys": keys}

    @property
    def unpulled(self) -> bool:
        return self.fake.last_seq > self.pulled_seq

    def _archive(self, kind: str, sender: str, to: str, text: str, when: datetime) -> None:
        seq = self.fake.last_seq + 1
        record = {
            "msgid": f"demo-archive-{seq:06d}",
            "action": "send",
            "from": sender,
            "tolist": [to],
            "roomid": "",
            "msgtime": int(when.timestamp() * 1000),
            "msgtype": "text",
            "text": {"content": text},
        }
        self.fake.append(fake_sdk.seal(record, seq, self._key.public_key(), KEY_VERSION))
        self.counts[kind] += 1

    def customer_says(self, customer: str, staff: str, text: str, when: datetime) -> None:
        self._archive("customer", customer, staff, text, when)
        self.customer_texts.setdefault(customer, []).append(text)

    def staff_says(self, staff: str, customer: str, text: str, when: datetime) -> None:
        self._archive("staff", staff, customer, text, when)

    def colleague_says(self, staff: str, colleague: str, text: str, when: datetime) -> None:
        self._archive("colleague", staff, colleague, text, when)


def asked_price(texts: list[str], keywords: list[str]) -> bool:
    return any(k in t for t in texts for k in keywords)


def _check(name: str, expected: Any, actual: Any) -> dict[str, Any]:
    return {"check": name, "expected": expected, "actual": actual, "ok": expected == actual}


def archive_figures(world: Any, setup: Any) -> dict[str, Any]:
    """What was archived and what the pulls did (the account's archive status)."""
    archive = world.archive
    shown = setup.api.get(f"/plugins/wecom/accounts/{setup.account_id}/archive")
    return {
        "customer_messages": archive.counts["customer"],
        "staff_messages": archive.counts["staff"],
        "colleague_messages": archive.counts["colleague"],
        "last_seq": archive.fake.last_seq,
        "cursor": shown["seq"],
        "healthy": shown["healthy"],
        "get_chat_data_calls": len(archive.fake.calls()),
    }


def archive_checks(
    world: Any, setup: Any, figures: dict[str, Any], keywords: list[str]
) -> list[dict[str, Any]]:
    """The archived chat against the database: every customer message became one
    ``message.received`` through the archive, every staff answer one
    ``message.staff_sent``, nothing else; the price askers tagged and moved."""
    t, archive = setup.tenant_id, world.archive
    asked = {c for c, texts in archive.customer_texts.items() if asked_price(texts, keywords)}
    with world.app.tx() as s:
        payloads = s.execute(
            sa.select(Event.type, Event.payload).where(
                Event.tenant_id == t, Event.type.in_(("message.received", "message.staff_sent"))
            )
        ).all()
        tagged = set(
            s.scalars(
                sa.select(ChannelIdentity.external_id)
                .join(CustomerTag, CustomerTag.customer_id == ChannelIdentity.customer_id)
                .where(
                    CustomerTag.tenant_id == t,
                    CustomerTag.tag == PRICE_TAG,
                    ChannelIdentity.channel == "wecom",
                )
            )
        )
        staged = set(
            s.scalars(
                sa.select(ChannelIdentity.external_id)
                .join(CustomerStage, CustomerStage.customer_id == ChannelIdentity.customer_id)
                .join(Stage, Stage.id == CustomerStage.stage_id)
                .where(
                    CustomerStage.tenant_id == t,
                    Stage.name.in_(("决策", "签单")),
                    ChannelIdentity.channel == "wecom",
                )
            )
        )
    via = Counter(kind for kind, p in payloads if (p or {}).get("via") == "conversation_archive")
    return [
        _check("archive: the pull's cursor = the archive's last seq", figures["last_seq"], figures["cursor"]),
        _check(
            "archive: customer messages = message.received events from the archive pull",
            figures["customer_messages"],
            via["message.received"],
        ),
        _check(
            "archive: staff answers = message.staff_sent events (colleagues' chat left out)",
            figures["staff_messages"],
            sum(via.values()) - via["message.received"],
        ),
        _check(
            f"archive: customers who asked the price in the chat = customers tagged {PRICE_TAG}",
            len(asked),
            len(tagged) if tagged == asked else f"{len(tagged)}, not the same customers",
        ),
        _check(
            "archive: customers who asked the price stand in 决策 or 签单",
            len(asked),
            len(asked & staged),
        ),
    ]


def archive_markdown(figures: dict[str, Any]) -> list[str]:
    f = figures
    return [
        "## Conversation archive (会话存档, pulled through the Finance SDK's C fake)",
        "",
        f"{f['customer_messages']} customer messages, {f['staff_messages']} staff answers and "
        f"{f['colleague_messages']} messages between colleagues archived; "
        f"{f['get_chat_data_calls']} GetChatData calls; cursor at seq {f['cursor']} of {f['last_seq']}.",
        "",
    ]
