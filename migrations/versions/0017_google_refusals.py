"""what Google Wallet last refused of each class and object: the content's digest and Google's answer

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-25 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ('google_class', 'google_object')


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('refused_digest', sa.String(length=64), nullable=True))
            batch.add_column(sa.Column('refused_at', sa.DateTime(timezone=True), nullable=True))
            batch.add_column(sa.Column('refusal', sa.String(length=1000), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column('refusal')
            batch.drop_column('refused_at')
            batch.drop_column('refused_digest')
