"""a programme's phone region (local numbers on its pages), and closed stores

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-08 01:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0021'
down_revision: str | None = '0020'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('program') as batch:
        batch.add_column(sa.Column('phone_region', sa.String(length=2), nullable=True))
    with op.batch_alter_table('store') as batch:
        batch.add_column(sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('store') as batch:
        batch.drop_column('closed_at')
    with op.batch_alter_table('program') as batch:
        batch.drop_column('phone_region')
