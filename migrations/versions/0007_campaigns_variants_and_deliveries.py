"""campaigns, variants and deliveries

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 20:44:28.102724
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('campaign',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('segment_id', sa.Integer(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('channels', sa.JSON(), nullable=False),
    sa.Column('holdout_percent', sa.Numeric(precision=5, scale=2), nullable=False),
    sa.Column('scheduled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('geo_store_ids', sa.JSON(), nullable=True),
    sa.Column('quiet_start_hour', sa.Integer(), nullable=False),
    sa.Column('quiet_end_hour', sa.Integer(), nullable=False),
    sa.Column('max_per_week', sa.Integer(), nullable=True),
    sa.Column('conversion_days', sa.Integer(), nullable=False),
    sa.Column('error_threshold_percent', sa.Integer(), nullable=False),
    sa.Column('automation', sa.String(length=32), nullable=True),
    sa.Column('pause_reason', sa.String(length=255), nullable=True),
    sa.Column('audience_size', sa.Integer(), nullable=True),
    sa.Column('materialised_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("state IN ('draft', 'scheduled', 'running', 'paused', 'finished', 'cancelled')", name=op.f('ck_campaign_state')),
    sa.CheckConstraint('holdout_percent >= 0 AND holdout_percent <= 50', name=op.f('ck_campaign_holdout_range')),
    sa.ForeignKeyConstraint(['program_id'], ['program.id'], name=op.f('fk_campaign_program_id_program'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['segment_id'], ['segment.id'], name=op.f('fk_campaign_segment_id_segment'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign'))
    )
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaign_automation'), ['automation'], unique=False)
        batch_op.create_index(batch_op.f('ix_campaign_program_id'), ['program_id'], unique=False)

    op.create_table('campaign_variant',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('weight', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.CheckConstraint('weight > 0', name=op.f('ck_campaign_variant_weight_positive')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], name=op.f('fk_campaign_variant_campaign_id_campaign'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_variant')),
    sa.UniqueConstraint('campaign_id', 'name', name=op.f('uq_campaign_variant_campaign_id_name'))
    )
    with op.batch_alter_table('campaign_variant', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaign_variant_campaign_id'), ['campaign_id'], unique=False)

    op.create_table('delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('card_id', sa.Integer(), nullable=False),
    sa.Column('variant_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('provider_id', sa.String(length=120), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('not_before', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], name=op.f('fk_delivery_campaign_id_campaign'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['card_id'], ['card.id'], name=op.f('fk_delivery_card_id_card'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_delivery_customer_id_customer'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['variant_id'], ['campaign_variant.id'], name=op.f('fk_delivery_variant_id_campaign_variant'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery')),
    sa.UniqueConstraint('campaign_id', 'customer_id', name=op.f('uq_delivery_campaign_id_customer_id'))
    )
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.create_index('ix_delivery_campaign_status', ['campaign_id', 'status'], unique=False)
        batch_op.create_index('ix_delivery_customer_sent', ['customer_id', 'sent_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_customer_sent')
        batch_op.drop_index('ix_delivery_campaign_status')

    op.drop_table('delivery')
    with op.batch_alter_table('campaign_variant', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaign_variant_campaign_id'))

    op.drop_table('campaign_variant')
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaign_program_id'))
        batch_op.drop_index(batch_op.f('ix_campaign_automation'))

    op.drop_table('campaign')
