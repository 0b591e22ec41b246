"""segments and rfm settings

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 20:43:26.985096
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('segment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('definition', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('rules', 'rfm', 'static')", name=op.f('ck_segment_kind')),
    sa.ForeignKeyConstraint(['program_id'], ['program.id'], name=op.f('fk_segment_program_id_program'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_segment')),
    sa.UniqueConstraint('program_id', 'name', name=op.f('uq_segment_program_id_name'))
    )
    with op.batch_alter_table('segment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_segment_program_id'), ['program_id'], unique=False)

    op.create_table('segment_member',
    sa.Column('segment_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_segment_member_customer_id_customer'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['segment_id'], ['segment.id'], name=op.f('fk_segment_member_segment_id_segment'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('segment_id', 'customer_id', name=op.f('pk_segment_member'))
    )
    with op.batch_alter_table('segment_member', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_segment_member_customer_id'), ['customer_id'], unique=False)

    with op.batch_alter_table('program', schema=None) as batch_op:
        # server defaults fill the programmes that already exist
        batch_op.add_column(sa.Column('rfm_mode', sa.String(length=16), nullable=False, server_default='quintile'))
        batch_op.add_column(sa.Column('rfm_window_days', sa.Integer(), nullable=False, server_default='365'))
        batch_op.add_column(sa.Column('rfm_thresholds', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('program', schema=None) as batch_op:
        batch_op.drop_column('rfm_thresholds')
        batch_op.drop_column('rfm_window_days')
        batch_op.drop_column('rfm_mode')

    with op.batch_alter_table('segment_member', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_segment_member_customer_id'))

    op.drop_table('segment_member')
    with op.batch_alter_table('segment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_segment_program_id'))

    op.drop_table('segment')
