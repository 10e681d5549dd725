"""wecom: customer transfers (在职/离职继承)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 14:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wecom_transfers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("handover_userid", sa.String(length=64), nullable=False),
        sa.Column("takeover_userid", sa.String(length=64), nullable=False),
        sa.Column("external_userid", sa.String(length=64), nullable=False),
        sa.Column("success_msg", sa.String(length=200), nullable=True),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("errcode", sa.Integer(), nullable=True),
        sa.Column("requested_at", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=True),
        sa.Column("finished_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_wecom_transfers_open", "wecom_transfers", ["account_id", "state", "handover_userid"])
    op.create_index("ix_wecom_transfers_customer", "wecom_transfers", ["account_id", "external_userid"])


def downgrade() -> None:
    op.drop_index("ix_wecom_transfers_customer", table_name="wecom_transfers")
    op.drop_index("ix_wecom_transfers_open", table_name="wecom_transfers")
    op.drop_table("wecom_transfers")
