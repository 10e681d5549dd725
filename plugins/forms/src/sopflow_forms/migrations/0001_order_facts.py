"""orders: messages seen, orders and refunds

Revision ID: 0001
Revises:
Create Date: 2026-12-02 02:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = ("orders",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orders_messages",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("msg_id", sa.String(length=128), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("seen_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "msg_id"),
    )
    op.create_table(
        "orders_orders",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("identity_channel", sa.String(length=64), nullable=True),
        sa.Column("identity_external_id", sa.String(length=200), nullable=True),
        sa.Column("identity_rank", sa.String(length=160), nullable=True),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column("paid_fen", sa.BigInteger(), nullable=True),
        sa.Column("paid_at", sa.BigInteger(), nullable=True),
        sa.Column("paid_rank", sa.String(length=160), nullable=True),
        sa.Column("status", sa.String(length=64), nullable=True),
        sa.Column("status_rank", sa.String(length=160), nullable=True),
        sa.PrimaryKeyConstraint("account_id", "order_id"),
    )
    op.create_index(
        "ix_orders_orders_buyer",
        "orders_orders",
        ["tenant_id", "identity_channel", "identity_external_id"],
    )
    op.create_table(
        "orders_refunds",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("refund_id", sa.String(length=128), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=True),
        sa.Column("amount_rank", sa.String(length=160), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("rank", sa.String(length=160), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "order_id", "refund_id"),
    )


def downgrade() -> None:
    op.drop_table("orders_refunds")
    op.drop_index("ix_orders_orders_buyer", table_name="orders_orders")
    op.drop_table("orders_orders")
    op.drop_table("orders_messages")
