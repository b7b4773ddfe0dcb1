"""fleet_migrations: durable fleet migrations between natives and Heat stacks

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 19:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'fleet_migrations',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('target', sa.String(length=32), nullable=False),
        sa.Column('project_id', sa.String(length=64), nullable=True),
        sa.Column('max_in_flight', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('plan', sa.JSON(), nullable=False),
        sa.Column('progress', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )


def downgrade() -> None:
    op.drop_table('fleet_migrations')
