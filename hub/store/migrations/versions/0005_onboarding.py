"""onboarding: cases (personal data sealed) and their tasks, an outbox with claims

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('onboarding_cases',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('source_ref', sa.String(length=200), nullable=False),
    sa.Column('source_digest', sa.String(length=32), nullable=True),
    sa.Column('data', sa.LargeBinary(length=16777216), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancel_reason', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source_digest')
    )
    with op.batch_alter_table('onboarding_cases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_onboarding_cases_status'), ['status'], unique=False)

    op.create_table('onboarding_tasks',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('case_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('action', sa.String(length=200), nullable=False),
    sa.Column('connector', sa.String(length=200), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('after', sa.JSON(), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('claim_token', sa.String(length=64), nullable=True),
    sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('idempotency_key', sa.String(length=64), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('result_ref', sa.String(length=200), nullable=True),
    sa.Column('result', sa.LargeBinary(length=16777216), nullable=True),
    sa.Column('correlation_digest', sa.String(length=32), nullable=True),
    sa.Column('waiting_for', sa.String(length=100), nullable=True),
    sa.Column('undo_status', sa.String(length=20), nullable=True),
    sa.Column('undo_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['onboarding_cases.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('case_id', 'name'),
    sa.UniqueConstraint('idempotency_key')
    )
    with op.batch_alter_table('onboarding_tasks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_onboarding_tasks_case_id'), ['case_id'], unique=False)
        batch_op.create_index('ix_onboarding_tasks_correlation', ['connector', 'correlation_digest'], unique=False)
        batch_op.create_index('ix_onboarding_tasks_status_next', ['status', 'next_attempt_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('onboarding_tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_onboarding_tasks_status_next')
        batch_op.drop_index('ix_onboarding_tasks_correlation')
        batch_op.drop_index(batch_op.f('ix_onboarding_tasks_case_id'))

    op.drop_table('onboarding_tasks')
    with op.batch_alter_table('onboarding_cases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_onboarding_cases_status'))

    op.drop_table('onboarding_cases')
