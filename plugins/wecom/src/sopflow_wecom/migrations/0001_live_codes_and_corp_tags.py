"""wecom: live codes and the corp tag names seen

Revision ID: 0001
Revises:
Create Date: 2026-12-05 09:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = ("wecom",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wecom_live_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("config_id", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=30), nullable=True),
        sa.Column("staff", sa.JSON(), nullable=False),
        sa.Column("remark", sa.String(length=100), nullable=False),
        sa.Column("qr_code", sa.Text(), nullable=True),
        sa.Column("multi_person", sa.Boolean(), nullable=False),
        sa.Column("created_from", sa.BigInteger(), nullable=False),
        sa.Column("created_to", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "config_id", name="uq_wecom_live_codes_account_config"),
    )
    op.create_index(
        "ix_wecom_live_codes_listing",
        "wecom_live_codes",
        ["tenant_id", "account_id", "created_to", "id"],
    )
    op.create_table(
        "wecom_corp_tags",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("corp_id", sa.String(length=64), nullable=False),
        sa.Column("tag_id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("seen_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "corp_id", "tag_id"),
    )


def downgrade() -> None:
    op.drop_table("wecom_corp_tags")
    op.drop_index("ix_wecom_live_codes_listing", table_name="wecom_live_codes")
    op.drop_table("wecom_live_codes")
