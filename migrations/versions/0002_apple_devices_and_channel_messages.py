"""apple devices and channel messages

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 19:25:05.826466
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('apple_device',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('library_id', sa.String(length=64), nullable=False),
    sa.Column('push_token', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_apple_device')),
    sa.UniqueConstraint('library_id', name=op.f('uq_apple_device_library_id'))
    )
    op.create_table('apple_registration',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('card_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['card_id'], ['card.id'], name=op.f('fk_apple_registration_card_id_card'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['device_id'], ['apple_device.id'], name=op.f('fk_apple_registration_device_id_apple_device'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_apple_registration')),
    sa.UniqueConstraint('device_id', 'card_id', name=op.f('uq_apple_registration_device_id_card_id'))
    )
    with op.batch_alter_table('apple_registration', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_apple_registration_card_id'), ['card_id'], unique=False)

    op.create_table('channel_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('recipient', sa.String(length=255), nullable=False),
    sa.Column('card_id', sa.Integer(), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['card_id'], ['card.id'], name=op.f('fk_channel_message_card_id_card'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_channel_message'))
    )
    with op.batch_alter_table('channel_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_channel_message_card_id'), ['card_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_channel_message_created_at'), ['created_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('channel_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_channel_message_created_at'))
        batch_op.drop_index(batch_op.f('ix_channel_message_card_id'))

    op.drop_table('channel_message')
    with op.batch_alter_table('apple_registration', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_apple_registration_card_id'))

    op.drop_table('apple_registration')
    op.drop_table('apple_device')
