"""staff.left_at: a member who left holds their customers' touches until a transfer

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 14:10:00
"""

import sqlalchemy as sa
from alembic import op

from sopflow.models.types import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff") as batch:
        batch.add_column(sa.Column("left_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("staff") as batch:
        batch.drop_column("left_at")
