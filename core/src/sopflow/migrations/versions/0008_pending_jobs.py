"""pending plugin jobs: the durable record behind each plugin job's broker message

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 00:30:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import sopflow.models.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "pending_jobs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kwargs", JSON, nullable=False),
        sa.Column("handed_off", sa.Boolean(), nullable=False),
        sa.Column("created_at", sopflow.models.types.UTCDateTime(), nullable=False),
    )
    op.create_index("ix_pending_jobs_created", "pending_jobs", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_pending_jobs_created", table_name="pending_jobs")
    op.drop_table("pending_jobs")
