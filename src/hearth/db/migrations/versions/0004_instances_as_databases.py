"""Instances as databases: nic, public address, addresses, sealed admin password, health, configuration
groups, and the purpose of each access rule (the user's, or Hearth's management access)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 18:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.add_column(sa.Column('subnet_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('fixed_ip', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('volume_type', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('is_public', sa.Boolean(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('addresses', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('admin_password', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('bootstrap', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('operating_status', sa.String(length=32), server_default='', nullable=False))
        batch_op.add_column(sa.Column('volume_used_bytes', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('service_status_updated', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('configuration_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('restart_required', sa.Boolean(), server_default='0', nullable=False))
        batch_op.create_index('ix_instances_configuration_id', ['configuration_id'], unique=False)
    with op.batch_alter_table('security_group_rules', schema=None) as batch_op:
        batch_op.add_column(sa.Column('purpose', sa.String(length=16), server_default='access', nullable=False))
    op.create_table(
        'configurations',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('project_id', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('datastore', sa.String(length=64), nullable=False),
        sa.Column('datastore_version', sa.String(length=64), nullable=False),
        sa.Column('values', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.Column('deleted_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_configurations_project_live', 'configurations',
                    ['project_id', 'deleted_at', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_configurations_project_live', table_name='configurations')
    op.drop_table('configurations')
    with op.batch_alter_table('security_group_rules', schema=None) as batch_op:
        batch_op.drop_column('purpose')
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.drop_index('ix_instances_configuration_id')
        for column in ('restart_required', 'configuration_id', 'service_status_updated', 'volume_used_bytes',
                       'operating_status',
                       'bootstrap', 'admin_password', 'addresses', 'is_public', 'volume_type', 'fixed_ip',
                       'subnet_id'):
            batch_op.drop_column(column)
