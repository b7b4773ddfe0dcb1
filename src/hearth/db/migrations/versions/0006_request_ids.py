"""operations.request_id and events.request_id: the API request an operation and its events serve

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 22:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ('operations', 'events'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('request_id', sa.String(length=64), nullable=True))


def downgrade() -> None:
    for table in ('operations', 'events'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('request_id')
