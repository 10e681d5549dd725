"""salesforce: record links and the write outbox

Revision ID: 0001
Revises:
Create Date: 2026-12-02 02:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = ("salesforce",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "salesforce_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.String(length=18), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("modstamp", sa.String(length=32), nullable=False),
        sa.Column("synced", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "record_id", name="uq_salesforce_links_record"),
    )
    op.create_index("ix_salesforce_links_customer", "salesforce_links", ["account_id", "customer_id"])
    op.create_table(
        "salesforce_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_salesforce_outbox_due", "salesforce_outbox", ["account_id", "state", "id"])


def downgrade() -> None:
    op.drop_index("ix_salesforce_outbox_due", table_name="salesforce_outbox")
    op.drop_table("salesforce_outbox")
    op.drop_index("ix_salesforce_links_customer", table_name="salesforce_links")
    op.drop_table("salesforce_links")
