"""customer relations: every staff member who follows a customer, per channel

Existing identities that name a staff member become relations (added when the
identity was first seen), so a customer's first adder is kept as a relation too.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 06:30:00
"""

import sqlalchemy as sa
from alembic import op

import sopflow.models.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customer_relations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("customer_id", sa.Integer(), sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("staff_id", sa.Integer(), sa.ForeignKey("staff.id"), nullable=False),
        sa.Column("channel", sa.String(length=50), nullable=False),
        sa.Column("added_at", sopflow.models.types.UTCDateTime(), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=True),
        sa.Column("remark", sa.String(length=200), nullable=True),
        sa.Column("ended_at", sopflow.models.types.UTCDateTime(), nullable=True),
        sa.Column("end_reason", sa.String(length=100), nullable=True),
        sa.UniqueConstraint("customer_id", "staff_id", "channel"),
    )
    op.create_index("ix_customer_relations_customer_id", "customer_relations", ["customer_id"])
    op.execute(
        "INSERT INTO customer_relations (tenant_id, customer_id, staff_id, channel, added_at) "
        "SELECT tenant_id, customer_id, staff_id, channel, MIN(created_at) FROM channel_identities "
        "WHERE staff_id IS NOT NULL GROUP BY tenant_id, customer_id, staff_id, channel"
    )


def downgrade() -> None:
    op.drop_index("ix_customer_relations_customer_id", table_name="customer_relations")
    op.drop_table("customer_relations")
