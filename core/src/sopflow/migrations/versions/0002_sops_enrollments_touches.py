"""sops enrollments touches

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 14:37:04.186637
"""
from alembic import op
import sqlalchemy as sa
import sopflow.models.types
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('sops',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('current_version', sa.Integer(), nullable=False),
    sa.Column('audience', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sopflow.models.types.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sopflow.models.types.UTCDateTime(), nullable=False),
    sa.Column('started_at', sopflow.models.types.UTCDateTime(), nullable=True),
    sa.Column('stopped_at', sopflow.models.types.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('sops', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sops_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('batch_windows',
    sa.Column('sop_id', sa.Integer(), nullable=False),
    sa.Column('window_start', sopflow.models.types.UTCDateTime(), nullable=False),
    sa.Column('used', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['sop_id'], ['sops.id'], ),
    sa.PrimaryKeyConstraint('sop_id', 'window_start')
    )
    op.create_table('sop_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('sop_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('definition', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sopflow.models.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['sop_id'], ['sops.id'], ),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('sop_id', 'version')
    )
    with op.batch_alter_table('sop_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sop_versions_sop_id'), ['sop_id'], unique=False)

    op.create_table('enrollments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('sop_id', sa.Integer(), nullable=False),
    sa.Column('sop_version_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('entry_seq', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('enrolled_at', sopflow.models.types.UTCDateTime(), nullable=False),
    sa.Column('ended_at', sopflow.models.types.UTCDateTime(), nullable=True),
    sa.Column('end_reason', sa.String(length=50), nullable=True),
    sa.Column('flowed_from_id', sa.Integer(), nullable=True),
    sa.Column('depth', sa.Integer(), nullable=False),
    sa.Column('rearmed', sa.Boolean(), nullable=False),
    sa.Column('converted_at', sopflow.models.types.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.ForeignKeyConstraint(['sop_id'], ['sops.id'], ),
    sa.ForeignKeyConstraint(['sop_version_id'], ['sop_versions.id'], ),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('sop_id', 'customer_id', 'entry_seq')
    )
    with op.batch_alter_table('enrollments', schema=None) as batch_op:
        batch_op.create_index('ix_enrollments_customer_status', ['customer_id', 'status'], unique=False)
        batch_op.create_index('ix_enrollments_sop_status', ['sop_id', 'status'], unique=False)

    op.create_table('send_quotas',
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('used', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
    sa.PrimaryKeyConstraint('customer_id', 'day')
    )
    op.create_table('touches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('sop_id', sa.Integer(), nullable=False),
    sa.Column('enrollment_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('step_index', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('planned_at', sopflow.models.types.UTCDateTime(), nullable=False),
    sa.Column('due_at', sopflow.models.types.UTCDateTime(), nullable=False),
    sa.Column('lease_until', sopflow.models.types.UTCDateTime(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('deferrals', sa.Integer(), nullable=False),
    sa.Column('defer_reason', sa.String(length=50), nullable=True),
    sa.Column('sent_at', sopflow.models.types.UTCDateTime(), nullable=True),
    sa.Column('replied_at', sopflow.models.types.UTCDateTime(), nullable=True),
    sa.Column('outcome', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.ForeignKeyConstraint(['enrollment_id'], ['enrollments.id'], ),
    sa.ForeignKeyConstraint(['sop_id'], ['sops.id'], ),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('enrollment_id', 'step_index')
    )
    with op.batch_alter_table('touches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_touches_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index('ix_touches_sop_step', ['sop_id', 'step_index', 'status'], unique=False)
        batch_op.create_index('ix_touches_status_due', ['status', 'due_at'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('touches', schema=None) as batch_op:
        batch_op.drop_index('ix_touches_status_due')
        batch_op.drop_index('ix_touches_sop_step')
        batch_op.drop_index(batch_op.f('ix_touches_customer_id'))

    op.drop_table('touches')
    op.drop_table('send_quotas')
    with op.batch_alter_table('enrollments', schema=None) as batch_op:
        batch_op.drop_index('ix_enrollments_sop_status')
        batch_op.drop_index('ix_enrollments_customer_status')

    op.drop_table('enrollments')
    with op.batch_alter_table('sop_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sop_versions_sop_id'))

    op.drop_table('sop_versions')
    op.drop_table('batch_windows')
    with op.batch_alter_table('sops', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sops_tenant_id'))

    op.drop_table('sops')

