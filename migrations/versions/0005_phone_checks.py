"""phone checks

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 20:25:01.916833
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('phone_check',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['program_id'], ['program.id'], name=op.f('fk_phone_check_program_id_program'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_phone_check'))
    )
    with op.batch_alter_table('phone_check', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_phone_check_phone'), ['phone'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('phone_check', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_phone_check_phone'))

    op.drop_table('phone_check')
