"""program design images and background jobs

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-24 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'program_image',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('program_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('scale', sa.Integer(), nullable=False),
        sa.Column('png', sa.LargeBinary(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('logo', 'strip', 'icon')", name=op.f('ck_program_image_kind')),
        sa.CheckConstraint('scale IN (1, 2, 3)', name=op.f('ck_program_image_scale')),
        sa.ForeignKeyConstraint(['program_id'], ['program.id'], name=op.f('fk_program_image_program_id_program'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_program_image')),
        sa.UniqueConstraint('program_id', 'kind', 'scale', name=op.f('uq_program_image_program_id_kind_scale')),
    )
    with op.batch_alter_table('program_image', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_program_image_program_id'), ['program_id'], unique=False)

    op.create_table(
        'job',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('program_id', sa.Integer(), nullable=True),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('done', sa.Integer(), nullable=False),
        sa.Column('error', sa.String(length=500), nullable=True),
        sa.Column('created_by', sa.String(length=254), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("state IN ('queued', 'running', 'done', 'failed')", name=op.f('ck_job_state')),
        sa.ForeignKeyConstraint(['program_id'], ['program.id'], name=op.f('fk_job_program_id_program'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_job')),
    )
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_job_program_id'), ['program_id'], unique=False)


def downgrade() -> None:
    op.drop_table('job')
    op.drop_table('program_image')
