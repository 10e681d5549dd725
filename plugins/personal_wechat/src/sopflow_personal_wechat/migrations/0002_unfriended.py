"""personal_wechat: the contacts who deleted an account

Revision ID: pw0002
Revises: pw0001
Create Date: 2026-12-03 14:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "pw0002"
down_revision = "pw0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "personal_wechat_unfriended",
        sa.Column("account_key", sa.String(length=300), nullable=False),
        sa.Column("contact_id", sa.String(length=200), nullable=False),
        sa.Column("detected_at", sa.Float(), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("reported", sa.Boolean(), nullable=False),
        sa.Column("friend_again_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("account_key", "contact_id"),
    )


def downgrade() -> None:
    op.drop_table("personal_wechat_unfriended")
