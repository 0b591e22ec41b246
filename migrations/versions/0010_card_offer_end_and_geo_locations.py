"""card offer end and geo locations

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('card', schema=None) as batch_op:
        batch_op.add_column(sa.Column('offer_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('geo_locations', sa.JSON(), nullable=True))
        batch_op.create_index('ix_card_offer_until', ['offer_until'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('card', schema=None) as batch_op:
        batch_op.drop_index('ix_card_offer_until')
        batch_op.drop_column('geo_locations')
        batch_op.drop_column('offer_until')
