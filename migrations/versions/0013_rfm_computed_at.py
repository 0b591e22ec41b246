"""when a programme's RFM scores were computed

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-24 01:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('program') as batch:
        batch.add_column(sa.Column('rfm_computed_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('program') as batch:
        batch.drop_column('rfm_computed_at')
