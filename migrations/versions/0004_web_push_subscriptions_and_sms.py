"""web push subscriptions and sms

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 20:23:26.835144
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('sms_opt_out',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=False),
    sa.Column('sender', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_opt_out')),
    sa.UniqueConstraint('phone', 'sender', name=op.f('uq_sms_opt_out_phone_sender'))
    )
    with op.batch_alter_table('sms_opt_out', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sms_opt_out_phone'), ['phone'], unique=False)

    op.create_table('sms_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('to', sa.String(length=20), nullable=False),
    sa.Column('sender', sa.String(length=20), nullable=False),
    sa.Column('body', sa.String(length=1600), nullable=False),
    sa.Column('provider_sid', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('error_code', sa.String(length=20), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_sms_message_customer_id_customer'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_message')),
    sa.UniqueConstraint('provider_sid', name=op.f('uq_sms_message_provider_sid'))
    )
    with op.batch_alter_table('sms_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sms_message_customer_id'), ['customer_id'], unique=False)

    op.create_table('web_push_subscription',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('endpoint', sa.String(length=1000), nullable=False),
    sa.Column('p256dh', sa.String(length=200), nullable=False),
    sa.Column('auth', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_success_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_web_push_subscription_customer_id_customer'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_web_push_subscription')),
    sa.UniqueConstraint('endpoint', name=op.f('uq_web_push_subscription_endpoint'))
    )
    with op.batch_alter_table('web_push_subscription', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_web_push_subscription_customer_id'), ['customer_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('web_push_subscription', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_web_push_subscription_customer_id'))

    op.drop_table('web_push_subscription')
    with op.batch_alter_table('sms_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sms_message_customer_id'))

    op.drop_table('sms_message')
    with op.batch_alter_table('sms_opt_out', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sms_opt_out_phone'))

    op.drop_table('sms_opt_out')
