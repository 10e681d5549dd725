"""The orders plugin's own tables (its Alembic branch is ``migrations/``, label ``orders``).

- ``orders_messages``: every message id seen per source account — the dedupe on
  ``msg_id`` (有赞) or ``id`` (the generic webhook);
- ``orders_orders``: one row per order, each column group (buyer, payment,
  status) taken from the highest ``(version, msg_id)`` message that carries it;
- ``orders_refunds``: one row per refund, its state from the highest
  ``(version, msg_id)`` message about it and its amount from the highest one
  that names an amount (a state change need not repeat it).

Because every value is the maximum over the messages seen, the rows after any
order of arrival (duplicates included) equal the rows after the in-order
sequence; the derived ``orders.*`` fields are sums over these rows.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sopflow_sdk import MigrationsSpec

metadata = sa.MetaData()

messages = sa.Table(
    "orders_messages",
    metadata,
    sa.Column("account_id", sa.Integer, primary_key=True),
    sa.Column("msg_id", sa.String(128), primary_key=True),
    sa.Column("tenant_id", sa.Integer, nullable=False),
    sa.Column("order_id", sa.String(128), nullable=False),
    sa.Column("seen_at", sa.BigInteger, nullable=False),
)

orders = sa.Table(
    "orders_orders",
    metadata,
    sa.Column("account_id", sa.Integer, primary_key=True),
    sa.Column("order_id", sa.String(128), primary_key=True),
    sa.Column("tenant_id", sa.Integer, nullable=False),
    sa.Column("identity_channel", sa.String(64), nullable=True),
    sa.Column("identity_external_id", sa.String(200), nullable=True),
    sa.Column("identity_rank", sa.String(160), nullable=True),
    sa.Column("display_name", sa.String(200), nullable=True),
    sa.Column("paid_fen", sa.BigInteger, nullable=True),
    sa.Column("paid_at", sa.BigInteger, nullable=True),
    sa.Column("paid_rank", sa.String(160), nullable=True),
    sa.Column("status", sa.String(64), nullable=True),
    sa.Column("status_rank", sa.String(160), nullable=True),
    sa.Index("ix_orders_orders_buyer", "tenant_id", "identity_channel", "identity_external_id"),
)

refunds = sa.Table(
    "orders_refunds",
    metadata,
    sa.Column("account_id", sa.Integer, primary_key=True),
    sa.Column("order_id", sa.String(128), primary_key=True),
    sa.Column("refund_id", sa.String(128), primary_key=True),
    sa.Column("tenant_id", sa.Integer, nullable=False),
    sa.Column("amount_fen", sa.BigInteger, nullable=True),
    sa.Column("amount_rank", sa.String(160), nullable=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("rank", sa.String(160), nullable=False),
)


def migrations_spec() -> MigrationsSpec:
    """The plugin's branch, for ``register_migrations``."""
    return MigrationsSpec(
        Path(__file__).parent / "migrations",
        metadata=metadata,
        description="Order facts: messages seen, orders and refunds, for the derived orders.* fields",
    )
