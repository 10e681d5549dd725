"""The plugin's own table (its Alembic branch is ``migrations/``).

``personal_wechat_pacing``: one row per gateway account holding everything
the pacing decides with, so every worker process reads and changes the same
numbers: when the account may send next, today's counts per kind, a pause
(restriction, logout) and its reason, when it was connected (warm-up), and
what the intake last saw (login state, QR URL, heartbeat).  Each change is a
compare-and-swap on ``version``: two workers can never both take the last
slot of a gap or a cap, on SQLite or Postgres alike.

``personal_wechat_unfriended``: the contacts who deleted an account, as a failed
send (in a worker, with no host at hand) or the intake found out; the intake
emits one ``customer.churned`` per row and marks it reported, a later send to
the contact fails at once, until the contact is a friend again (``friend_again_at``).
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sopflow_sdk import MigrationsSpec

metadata = sa.MetaData()

pacing = sa.Table(
    "personal_wechat_pacing",
    metadata,
    # "<adapter>:<endpoint>": one gateway endpoint serves one WeChat account
    sa.Column("account_key", sa.String(300), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False, default=0),
    sa.Column("connected_at", sa.Float, nullable=False),
    sa.Column("next_at", sa.Float, nullable=False, default=0.0),
    sa.Column("day", sa.String(10), nullable=False, default=""),
    sa.Column("counts", sa.JSON, nullable=False),
    sa.Column("paused_until", sa.Float, nullable=False, default=0.0),
    sa.Column("paused_reason", sa.String(200), nullable=False, default=""),
    sa.Column("restrictions", sa.Integer, nullable=False, default=0),
    sa.Column("deferred", sa.Integer, nullable=False, default=0),
    sa.Column("sent", sa.Integer, nullable=False, default=0),
    sa.Column("logged_in", sa.Boolean, nullable=False, default=True),
    sa.Column("qr_url", sa.Text, nullable=False, default=""),
    sa.Column("last_heartbeat", sa.Float, nullable=True),
)

unfriended = sa.Table(
    "personal_wechat_unfriended",
    metadata,
    sa.Column("account_key", sa.String(300), primary_key=True),
    sa.Column("contact_id", sa.String(200), primary_key=True),
    sa.Column("detected_at", sa.Float, nullable=False),
    sa.Column("reason", sa.String(300), nullable=False, default=""),
    sa.Column("reported", sa.Boolean, nullable=False, default=False),
    # when the contact became a friend again (the deletion is over), else NULL
    sa.Column("friend_again_at", sa.Float, nullable=True),
)


def migrations_spec() -> MigrationsSpec:
    """The plugin's branch, for ``register_migrations``."""
    return MigrationsSpec(
        Path(__file__).parent / "migrations",
        metadata=metadata,
        description="personal WeChat pacing: gaps, daily counts, pauses and health per account; "
        "contacts who deleted an account",
    )
