"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 17:37:11.389818
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('outbox_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('topic', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_event'))
    )
    op.create_index('ix_outbox_event_pending', 'outbox_event', ['created_at'], unique=False, postgresql_where=sa.text('processed_at IS NULL'), sqlite_where=sa.text('processed_at IS NULL'))
    op.create_table('program',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('point_value', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('redeem_cap_percent', sa.Numeric(precision=5, scale=2), nullable=False),
    sa.Column('tier_window_days', sa.Integer(), nullable=False),
    sa.Column('expiry_days', sa.Integer(), nullable=True),
    sa.Column('welcome_bonus', sa.Integer(), nullable=False),
    sa.Column('birthday_bonus', sa.Integer(), nullable=False),
    sa.Column('referrer_bonus', sa.Integer(), nullable=False),
    sa.Column('referred_bonus', sa.Integer(), nullable=False),
    sa.Column('stamps_required', sa.Integer(), nullable=True),
    sa.Column('stamp_min_amount', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('stamp_reward', sa.String(length=120), nullable=True),
    sa.Column('reward_threshold', sa.Integer(), nullable=True),
    sa.Column('reward_name', sa.String(length=120), nullable=True),
    sa.Column('reward_value', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('terms', sa.Text(), nullable=False),
    sa.Column('background_color', sa.String(length=7), nullable=False),
    sa.Column('foreground_color', sa.String(length=7), nullable=False),
    sa.Column('label_color', sa.String(length=7), nullable=False),
    sa.Column('logo_text', sa.String(length=60), nullable=True),
    sa.Column('apple_pass_type_id', sa.String(length=120), nullable=True),
    sa.Column('google_class_suffix', sa.String(length=120), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('points', 'stamps')", name=op.f('ck_program_kind')),
    sa.CheckConstraint('point_value > 0', name=op.f('ck_program_point_value_positive')),
    sa.CheckConstraint('redeem_cap_percent >= 0 AND redeem_cap_percent <= 100', name=op.f('ck_program_cap_range')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_program')),
    sa.UniqueConstraint('slug', name=op.f('uq_program_slug'))
    )
    op.create_table('user_account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("role IN ('admin', 'marketer', 'viewer')", name=op.f('ck_user_account_role')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_account')),
    sa.UniqueConstraint('email', name=op.f('uq_user_account_email'))
    )
    op.create_table('bonus_rule',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('event_name', sa.String(length=64), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('limit_per_period', sa.Integer(), nullable=True),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.CheckConstraint("period IN ('day', 'week', 'month', 'year', 'lifetime')", name=op.f('ck_bonus_rule_period')),
    sa.CheckConstraint('points >= 0', name=op.f('ck_bonus_rule_points_nonnegative')),
    sa.ForeignKeyConstraint(['program_id'], ['program.id'], name=op.f('fk_bonus_rule_program_id_program'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bonus_rule')),
    sa.UniqueConstraint('program_id', 'event_name', name=op.f('uq_bonus_rule_program_id_event_name'))
    )
    op.create_index(op.f('ix_bonus_rule_program_id'), 'bonus_rule', ['program_id'], unique=False)
    op.create_table('store',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('address', sa.String(length=255), nullable=False),
    sa.Column('latitude', sa.Float(), nullable=True),
    sa.Column('longitude', sa.Float(), nullable=True),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['program_id'], ['program.id'], name=op.f('fk_store_program_id_program')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_store'))
    )
    op.create_index(op.f('ix_store_program_id'), 'store', ['program_id'], unique=False)
    op.create_table('tier',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('qualifying_spend', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('earn_percent', sa.Numeric(precision=5, scale=2), nullable=False),
    sa.Column('perks', sa.Text(), nullable=False),
    sa.CheckConstraint('earn_percent >= 0 AND earn_percent <= 100', name=op.f('ck_tier_earn_range')),
    sa.CheckConstraint('qualifying_spend >= 0', name=op.f('ck_tier_spend_nonnegative')),
    sa.ForeignKeyConstraint(['program_id'], ['program.id'], name=op.f('fk_tier_program_id_program'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tier')),
    sa.UniqueConstraint('program_id', 'name', name=op.f('uq_tier_program_id_name'))
    )
    op.create_index(op.f('ix_tier_program_id'), 'tier', ['program_id'], unique=False)
    op.create_table('customer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('birthday', sa.Date(), nullable=True),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('locale', sa.String(length=8), nullable=False),
    sa.Column('referral_code', sa.String(length=16), nullable=False),
    sa.Column('referred_by_id', sa.Integer(), nullable=True),
    sa.Column('home_store_id', sa.Integer(), nullable=True),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('rfm_recency', sa.Integer(), nullable=True),
    sa.Column('rfm_frequency', sa.Integer(), nullable=True),
    sa.Column('rfm_monetary', sa.Integer(), nullable=True),
    sa.Column('rfm_segment', sa.String(length=40), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('anonymized_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['home_store_id'], ['store.id'], name=op.f('fk_customer_home_store_id_store')),
    sa.ForeignKeyConstraint(['referred_by_id'], ['customer.id'], name=op.f('fk_customer_referred_by_id_customer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer')),
    sa.UniqueConstraint('phone', name=op.f('uq_customer_phone')),
    sa.UniqueConstraint('referral_code', name=op.f('uq_customer_referral_code'))
    )
    op.create_index(op.f('ix_customer_email'), 'customer', ['email'], unique=False)
    op.create_index(op.f('ix_customer_rfm_segment'), 'customer', ['rfm_segment'], unique=False)
    op.create_table('idempotency_record',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('response_status', sa.Integer(), nullable=False),
    sa.Column('response_body', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['store_id'], ['store.id'], name=op.f('fk_idempotency_record_store_id_store')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_record')),
    sa.UniqueConstraint('store_id', 'key', name=op.f('uq_idempotency_record_store_id_key'))
    )
    op.create_index(op.f('ix_idempotency_record_created_at'), 'idempotency_record', ['created_at'], unique=False)
    op.create_table('pos_credential',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('key_id', sa.String(length=40), nullable=False),
    sa.Column('secret_encrypted', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['store_id'], ['store.id'], name=op.f('fk_pos_credential_store_id_store')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pos_credential')),
    sa.UniqueConstraint('key_id', name=op.f('uq_pos_credential_key_id'))
    )
    op.create_index(op.f('ix_pos_credential_store_id'), 'pos_credential', ['store_id'], unique=False)
    op.create_table('card',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('serial', sa.String(length=36), nullable=False),
    sa.Column('barcode', sa.String(length=32), nullable=False),
    sa.Column('apple_auth_token', sa.String(length=64), nullable=False),
    sa.Column('page_token', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('balance', sa.Integer(), nullable=False),
    sa.Column('stamps', sa.Integer(), nullable=False),
    sa.Column('tier_id', sa.Integer(), nullable=True),
    sa.Column('lifetime_spend', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('window_spend', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('offer_text', sa.String(length=255), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('balance >= 0', name=op.f('ck_card_balance_nonnegative')),
    sa.CheckConstraint('stamps >= 0', name=op.f('ck_card_stamps_nonnegative')),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_card_customer_id_customer')),
    sa.ForeignKeyConstraint(['program_id'], ['program.id'], name=op.f('fk_card_program_id_program')),
    sa.ForeignKeyConstraint(['tier_id'], ['tier.id'], name=op.f('fk_card_tier_id_tier')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_card')),
    sa.UniqueConstraint('barcode', name=op.f('uq_card_barcode')),
    sa.UniqueConstraint('page_token', name=op.f('uq_card_page_token')),
    sa.UniqueConstraint('program_id', 'customer_id', name=op.f('uq_card_program_id_customer_id')),
    sa.UniqueConstraint('serial', name=op.f('uq_card_serial'))
    )
    op.create_index(op.f('ix_card_customer_id'), 'card', ['customer_id'], unique=False)
    op.create_index('ix_card_program_updated', 'card', ['program_id', 'updated_at'], unique=False)
    op.create_table('consent',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('granted', sa.Boolean(), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_consent_customer_id_customer'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent')),
    sa.UniqueConstraint('customer_id', 'channel', name=op.f('uq_consent_customer_id_channel'))
    )
    op.create_table('bonus_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.String(length=128), nullable=False),
    sa.Column('card_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('bonus', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['card_id'], ['card.id'], name=op.f('fk_bonus_event_card_id_card')),
    sa.ForeignKeyConstraint(['store_id'], ['store.id'], name=op.f('fk_bonus_event_store_id_store')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bonus_event')),
    sa.UniqueConstraint('store_id', 'event_id', name=op.f('uq_bonus_event_store_id_event_id'))
    )
    op.create_index('ix_bonus_event_card_name', 'bonus_event', ['card_id', 'name', 'created_at'], unique=False)
    op.create_table('purchase',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('receipt_id', sa.String(length=128), nullable=False),
    sa.Column('card_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('redeemed_points', sa.Integer(), nullable=False),
    sa.Column('discount', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('amount_due', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('earned_points', sa.Integer(), nullable=False),
    sa.Column('stamped', sa.Boolean(), nullable=False),
    sa.Column('refunded_amount', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('items', sa.JSON(), nullable=True),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount >= 0', name=op.f('ck_purchase_amount_nonnegative')),
    sa.CheckConstraint('refunded_amount <= amount', name=op.f('ck_purchase_refund_within_amount')),
    sa.ForeignKeyConstraint(['card_id'], ['card.id'], name=op.f('fk_purchase_card_id_card')),
    sa.ForeignKeyConstraint(['store_id'], ['store.id'], name=op.f('fk_purchase_store_id_store')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_purchase')),
    sa.UniqueConstraint('store_id', 'receipt_id', name=op.f('uq_purchase_store_id_receipt_id'))
    )
    op.create_index('ix_purchase_card_occurred', 'purchase', ['card_id', 'occurred_at'], unique=False)
    op.create_table('refund',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('refund_id', sa.String(length=128), nullable=False),
    sa.Column('purchase_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('points_reversed', sa.Integer(), nullable=False),
    sa.Column('points_returned', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_refund_amount_positive')),
    sa.ForeignKeyConstraint(['purchase_id'], ['purchase.id'], name=op.f('fk_refund_purchase_id_purchase')),
    sa.ForeignKeyConstraint(['store_id'], ['store.id'], name=op.f('fk_refund_store_id_store')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refund')),
    sa.UniqueConstraint('store_id', 'refund_id', name=op.f('uq_refund_store_id_refund_id'))
    )
    op.create_index(op.f('ix_refund_purchase_id'), 'refund', ['purchase_id'], unique=False)
    op.create_table('ledger_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('card_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('remaining', sa.Integer(), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('purchase_id', sa.Integer(), nullable=True),
    sa.Column('refund_id', sa.Integer(), nullable=True),
    sa.Column('reverses_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=255), nullable=False),
    sa.Column('actor', sa.String(length=120), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('earn', 'redeem', 'bonus', 'expire', 'adjust', 'refund_reversal', 'refund_return', 'reward')", name=op.f('ck_ledger_entry_kind')),
    sa.CheckConstraint('remaining IS NULL OR (remaining >= 0 AND remaining <= points)', name=op.f('ck_ledger_entry_remaining')),
    sa.ForeignKeyConstraint(['card_id'], ['card.id'], name=op.f('fk_ledger_entry_card_id_card')),
    sa.ForeignKeyConstraint(['purchase_id'], ['purchase.id'], name=op.f('fk_ledger_entry_purchase_id_purchase')),
    sa.ForeignKeyConstraint(['refund_id'], ['refund.id'], name=op.f('fk_ledger_entry_refund_id_refund')),
    sa.ForeignKeyConstraint(['reverses_id'], ['ledger_entry.id'], name=op.f('fk_ledger_entry_reverses_id_ledger_entry')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_entry'))
    )
    op.create_index('ix_ledger_entry_card_created', 'ledger_entry', ['card_id', 'created_at'], unique=False)
    op.create_index('ix_ledger_entry_open_lots', 'ledger_entry', ['card_id', 'expires_at'], unique=False, postgresql_where=sa.text('remaining > 0'), sqlite_where=sa.text('remaining > 0'))
    op.create_index(op.f('ix_ledger_entry_purchase_id'), 'ledger_entry', ['purchase_id'], unique=False)
    op.create_table('reward',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('card_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('value', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('purchase_id', sa.Integer(), nullable=True),
    sa.Column('ledger_entry_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('redeemed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind IN ('stamps', 'threshold')", name=op.f('ck_reward_kind')),
    sa.ForeignKeyConstraint(['card_id'], ['card.id'], name=op.f('fk_reward_card_id_card')),
    sa.ForeignKeyConstraint(['ledger_entry_id'], ['ledger_entry.id'], name=op.f('fk_reward_ledger_entry_id_ledger_entry')),
    sa.ForeignKeyConstraint(['purchase_id'], ['purchase.id'], name=op.f('fk_reward_purchase_id_purchase')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reward')),
    sa.UniqueConstraint('code', name=op.f('uq_reward_code'))
    )
    op.create_index(op.f('ix_reward_card_id'), 'reward', ['card_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_reward_card_id'), table_name='reward')
    op.drop_table('reward')
    op.drop_index(op.f('ix_ledger_entry_purchase_id'), table_name='ledger_entry')
    op.drop_index('ix_ledger_entry_open_lots', table_name='ledger_entry', postgresql_where=sa.text('remaining > 0'), sqlite_where=sa.text('remaining > 0'))
    op.drop_index('ix_ledger_entry_card_created', table_name='ledger_entry')
    op.drop_table('ledger_entry')
    op.drop_index(op.f('ix_refund_purchase_id'), table_name='refund')
    op.drop_table('refund')
    op.drop_index('ix_purchase_card_occurred', table_name='purchase')
    op.drop_table('purchase')
    op.drop_index('ix_bonus_event_card_name', table_name='bonus_event')
    op.drop_table('bonus_event')
    op.drop_table('consent')
    op.drop_index('ix_card_program_updated', table_name='card')
    op.drop_index(op.f('ix_card_customer_id'), table_name='card')
    op.drop_table('card')
    op.drop_index(op.f('ix_pos_credential_store_id'), table_name='pos_credential')
    op.drop_table('pos_credential')
    op.drop_index(op.f('ix_idempotency_record_created_at'), table_name='idempotency_record')
    op.drop_table('idempotency_record')
    op.drop_index(op.f('ix_customer_rfm_segment'), table_name='customer')
    op.drop_index(op.f('ix_customer_email'), table_name='customer')
    op.drop_table('customer')
    op.drop_index(op.f('ix_tier_program_id'), table_name='tier')
    op.drop_table('tier')
    op.drop_index(op.f('ix_store_program_id'), table_name='store')
    op.drop_table('store')
    op.drop_index(op.f('ix_bonus_rule_program_id'), table_name='bonus_rule')
    op.drop_table('bonus_rule')
    op.drop_table('user_account')
    op.drop_table('program')
    op.drop_index('ix_outbox_event_pending', table_name='outbox_event', postgresql_where=sa.text('processed_at IS NULL'), sqlite_where=sa.text('processed_at IS NULL'))
    op.drop_table('outbox_event')
