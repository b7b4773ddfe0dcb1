"""instances.extra_resource_ids: the cloud ids of resource kinds without a column of their own

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 13:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.add_column(sa.Column('extra_resource_ids', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.drop_column('extra_resource_ids')
