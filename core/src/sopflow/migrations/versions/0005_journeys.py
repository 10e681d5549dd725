"""journeys: stage rules, automation switch, reminders, sync progress

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 04:30:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import sopflow.models.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "journeys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("pipeline_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("automation", sa.Boolean(), nullable=False),
        sa.Column("allow_backward", sa.Boolean(), nullable=False),
        sa.Column("stage_reminders", sa.Boolean(), nullable=False),
        sa.Column("follow_up_reminders", sa.Boolean(), nullable=False),
        sa.Column("reminder_channel", sa.String(length=100), nullable=True),
        sa.Column("sync", JSON, nullable=False),
        sa.Column("created_at", sopflow.models.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sopflow.models.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["pipeline_id"], ["pipelines.id"]),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pipeline_id"),
    )
    op.create_index("ix_journeys_tenant_id", "journeys", ["tenant_id"])
    op.create_table(
        "journey_stages",
        sa.Column("stage_id", sa.Integer(), nullable=False),
        sa.Column("journey_id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("rules", JSON, nullable=False),
        sa.Column("entry_sop_id", sa.Integer(), nullable=True),
        sa.Column("reminders", JSON, nullable=False),
        sa.Column("reminder_sop_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["entry_sop_id"], ["sops.id"]),
        sa.ForeignKeyConstraint(["journey_id"], ["journeys.id"]),
        sa.ForeignKeyConstraint(["reminder_sop_id"], ["sops.id"]),
        sa.ForeignKeyConstraint(["stage_id"], ["stages.id"]),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("stage_id"),
    )
    op.create_index("ix_journey_stages_journey_id", "journey_stages", ["journey_id"])
    op.create_table(
        "journey_sync_targets",
        sa.Column("journey_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("stage_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"]),
        sa.ForeignKeyConstraint(["journey_id"], ["journeys.id"]),
        sa.ForeignKeyConstraint(["stage_id"], ["stages.id"]),
        sa.PrimaryKeyConstraint("journey_id", "customer_id"),
    )
    # the board and the stats read a stage's customers and history by stage
    op.create_index("ix_stage_history_stage", "stage_history", ["pipeline_id", "stage_id", "entered_at"])


def downgrade() -> None:
    op.drop_index("ix_stage_history_stage", table_name="stage_history")
    op.drop_table("journey_sync_targets")
    op.drop_index("ix_journey_stages_journey_id", table_name="journey_stages")
    op.drop_table("journey_stages")
    op.drop_index("ix_journeys_tenant_id", table_name="journeys")
    op.drop_table("journeys")
