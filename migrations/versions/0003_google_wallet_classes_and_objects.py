"""google wallet classes and objects

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 19:58:04.967611
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('google_class',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('class_id', sa.String(length=160), nullable=False),
    sa.Column('content_digest', sa.String(length=64), nullable=False),
    sa.Column('inserted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['program_id'], ['program.id'], name=op.f('fk_google_class_program_id_program'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_google_class')),
    sa.UniqueConstraint('class_id', name=op.f('uq_google_class_class_id')),
    sa.UniqueConstraint('program_id', name=op.f('uq_google_class_program_id'))
    )
    op.create_table('google_object',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('card_id', sa.Integer(), nullable=False),
    sa.Column('object_id', sa.String(length=160), nullable=False),
    sa.Column('synced_version', sa.Integer(), nullable=False),
    sa.Column('inserted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('notifications', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['card_id'], ['card.id'], name=op.f('fk_google_object_card_id_card'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_google_object')),
    sa.UniqueConstraint('card_id', name=op.f('uq_google_object_card_id')),
    sa.UniqueConstraint('object_id', name=op.f('uq_google_object_object_id'))
    )


def downgrade() -> None:
    op.drop_table('google_object')
    op.drop_table('google_class')
