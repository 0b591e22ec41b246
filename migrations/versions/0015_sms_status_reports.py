"""delivery-status reports that arrive before their SMS is committed; campaign deliveries found by provider id

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('sms_status_report',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider_sid', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('error_code', sa.String(length=20), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_status_report'))
    )
    with op.batch_alter_table('sms_status_report', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sms_status_report_provider_sid'), ['provider_sid'], unique=False)
    # Every SMS delivery report updates its campaign delivery by provider id: without an index, one report
    # reads the whole delivery table (a 100,000-text campaign gets two reports per text).
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_delivery_provider_id'), ['provider_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delivery_provider_id'))
    with op.batch_alter_table('sms_status_report', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sms_status_report_provider_sid'))
    op.drop_table('sms_status_report')
