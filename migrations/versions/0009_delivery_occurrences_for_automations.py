"""delivery occurrences for automations

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 21:00:25.870978
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.add_column(sa.Column('occurrence', sa.String(length=40), server_default='', nullable=False))
        batch_op.drop_constraint(batch_op.f('uq_delivery_campaign_id_customer_id'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_delivery_campaign_id_customer_id_occurrence'), ['campaign_id', 'customer_id', 'occurrence'])


def downgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_delivery_campaign_id_customer_id_occurrence'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_delivery_campaign_id_customer_id'), ['campaign_id', 'customer_id'])
        batch_op.drop_column('occurrence')

