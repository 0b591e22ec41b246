"""the cashier role, bound to the stores it works at

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-08 01:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0020'
down_revision: str | None = '0019'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'user_store',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('store_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['store_id'], ['store.id'], name=op.f('fk_user_store_store_id_store'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_user_store_user_id_user_account'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user_id', 'store_id', name=op.f('pk_user_store')),
    )
    op.create_index(op.f('ix_user_store_store_id'), 'user_store', ['store_id'], unique=False)
    with op.batch_alter_table('user_account') as batch:
        batch.drop_constraint(op.f('ck_user_account_role'), type_='check')
        batch.create_check_constraint(op.f('ck_user_account_role'), "role IN ('admin', 'marketer', 'viewer', 'cashier')")


def downgrade() -> None:
    op.execute("DELETE FROM user_account WHERE role = 'cashier'")
    with op.batch_alter_table('user_account') as batch:
        batch.drop_constraint(op.f('ck_user_account_role'), type_='check')
        batch.create_check_constraint(op.f('ck_user_account_role'), "role IN ('admin', 'marketer', 'viewer')")
    op.drop_index(op.f('ix_user_store_store_id'), table_name='user_store')
    op.drop_table('user_store')
