"""keyword rules and their per-tenant revision counter

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 04:00:00
"""

import sopflow.models.types
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "keyword_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("keywords", JSON, nullable=False),
        sa.Column("actions", JSON, nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("case_sensitive", sa.Boolean(), nullable=False),
        sa.Column("created_at", sopflow.models.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sopflow.models.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "name"),
    )
    with op.batch_alter_table("keyword_rules", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_keyword_rules_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "keyword_rule_revisions",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("tenant_id"),
    )


def downgrade() -> None:
    op.drop_table("keyword_rule_revisions")
    with op.batch_alter_table("keyword_rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_keyword_rules_tenant_id"))
    op.drop_table("keyword_rules")
