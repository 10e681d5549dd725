"""tenants.config_version: the counter the per-process configuration cache is keyed by

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 06:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # existing tenants start at 0; new ones at a random value (models.tenancy)
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("config_version", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("config_version")
