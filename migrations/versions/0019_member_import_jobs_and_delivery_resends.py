"""member imports as background jobs; the channel a delivery in doubt is resent on

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 21:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0019'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'member_import',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('program_id', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('mode', sa.String(length=8), nullable=False),
        sa.Column('filename', sa.String(length=200), nullable=False),
        sa.Column('csv', sa.Text(), nullable=False),
        sa.Column('actor', sa.String(length=254), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('ip', sa.String(length=45), nullable=True),
        sa.Column('rows', sa.Integer(), nullable=False),
        sa.Column('done', sa.Integer(), nullable=False),
        sa.Column('valid', sa.Integer(), nullable=False),
        sa.Column('invalid_lines', sa.Integer(), nullable=False),
        sa.Column('imported', sa.Integer(), nullable=False),
        sa.Column('existing_customers', sa.Integer(), nullable=False),
        sa.Column('points', sa.Integer(), nullable=False),
        sa.Column('file_errors', sa.JSON(), nullable=False),
        sa.Column('issues', sa.JSON(), nullable=False),
        sa.Column('valid_lines', sa.JSON(), nullable=True),
        sa.Column('next_line', sa.Integer(), nullable=False),
        sa.Column('runs', sa.Integer(), nullable=False),
        sa.Column('error', sa.String(length=500), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('checked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("state IN ('queued', 'checking', 'importing', 'done', 'refused', 'failed')",
                           name=op.f('ck_member_import_state')),
        sa.CheckConstraint("mode IN ('all', 'valid')", name=op.f('ck_member_import_mode')),
        sa.ForeignKeyConstraint(['program_id'], ['program.id'], name=op.f('fk_member_import_program_id_program'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_member_import_user_id_user_account'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_member_import')),
    )
    with op.batch_alter_table('member_import', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_member_import_program_id'), ['program_id'], unique=False)
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resend_channel', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_column('resend_channel')
    op.drop_table('member_import')
