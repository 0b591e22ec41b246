"""dashboard sessions kept server-side, so signing out, a password change or disabling a user ends them

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 21:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('dashboard_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_reason', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_dashboard_session_user_id_user_account'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dashboard_session')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_dashboard_session_token_hash'))
    )
    op.create_index(op.f('ix_dashboard_session_user_id'), 'dashboard_session', ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_dashboard_session_user_id'), table_name='dashboard_session')
    op.drop_table('dashboard_session')
