"""outage safety: events waiting for evaluation, claims a worker started, runtime state

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08 09:00:00
"""

import sqlalchemy as sa
from alembic import op

import sopflow.models.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("evaluated_at", sopflow.models.types.UTCDateTime(), nullable=True))
    # history was evaluated by the code that stored it: only new events wait for the sweep
    op.execute("UPDATE events SET evaluated_at = received_at")
    op.create_index(
        "ix_events_unevaluated",
        "events",
        ["received_at"],
        postgresql_where=sa.text("evaluated_at IS NULL"),
        sqlite_where=sa.text("evaluated_at IS NULL"),
    )
    with op.batch_alter_table("touches") as batch:
        batch.add_column(sa.Column("started_at", sopflow.models.types.UTCDateTime(), nullable=True))
    # claims and sends under way were handed over by the old code: count them as started
    op.execute("UPDATE touches SET started_at = lease_until WHERE status IN ('claimed', 'sending')")
    op.create_table(
        "runtime_state",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sopflow.models.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("runtime_state")
    with op.batch_alter_table("touches") as batch:
        batch.drop_column("started_at")
    op.drop_index("ix_events_unevaluated", table_name="events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("evaluated_at")
