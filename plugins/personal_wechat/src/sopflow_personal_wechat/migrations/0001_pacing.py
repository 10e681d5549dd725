"""personal_wechat: the pacing and health row per gateway account

Revision ID: pw0001
Revises:
Create Date: 2026-12-02 03:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "pw0001"
down_revision = None
branch_labels = ("personal_wechat",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "personal_wechat_pacing",
        sa.Column("account_key", sa.String(length=300), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("connected_at", sa.Float(), nullable=False),
        sa.Column("next_at", sa.Float(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("paused_until", sa.Float(), nullable=False),
        sa.Column("paused_reason", sa.String(length=200), nullable=False),
        sa.Column("restrictions", sa.Integer(), nullable=False),
        sa.Column("deferred", sa.Integer(), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.Column("logged_in", sa.Boolean(), nullable=False),
        sa.Column("qr_url", sa.Text(), nullable=False),
        sa.Column("last_heartbeat", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("account_key"),
    )


def downgrade() -> None:
    op.drop_table("personal_wechat_pacing")
