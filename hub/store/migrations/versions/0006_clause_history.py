"""clause history: every contract clause-rule set used, by clause-set version

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('contract_clause_versions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('version', sa.String(length=40), nullable=False),
    sa.Column('rules_sha256', sa.String(length=64), nullable=False),
    sa.Column('rules', sa.JSON(), nullable=False),
    sa.Column('templates', sa.JSON(), nullable=False),
    sa.Column('masked', sa.JSON(), nullable=False),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.Column('previous_version', sa.String(length=40), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('version')
    )
    with op.batch_alter_table('contract_clause_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contract_clause_versions_first_seen_at'), ['first_seen_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('contract_clause_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contract_clause_versions_first_seen_at'))

    op.drop_table('contract_clause_versions')
