"""the largest purchase amount a programme accepts, and rewards that count several at once

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-25 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('program') as batch:
        batch.add_column(sa.Column('max_purchase_amount', sa.Numeric(precision=12, scale=2), nullable=False,
                                   server_default='100000.00'))
        batch.create_check_constraint(op.f('ck_program_max_purchase_amount_positive'), 'max_purchase_amount > 0')
    with op.batch_alter_table('reward') as batch:
        batch.add_column(sa.Column('quantity', sa.Integer(), nullable=False, server_default='1'))
        batch.create_check_constraint(op.f('ck_reward_quantity_positive'), 'quantity >= 1')


def downgrade() -> None:
    with op.batch_alter_table('reward') as batch:
        batch.drop_constraint(op.f('ck_reward_quantity_positive'), type_='check')
        batch.drop_column('quantity')
    with op.batch_alter_table('program') as batch:
        batch.drop_constraint(op.f('ck_program_max_purchase_amount_positive'), type_='check')
        batch.drop_column('max_purchase_amount')
