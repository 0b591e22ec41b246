"""indexes of the deliveries left to send and of the outbox events waiting, in claiming order

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-24 03:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = "status IN ('queued', 'sending')"


WAITING = "processed_at IS NULL"


def upgrade() -> None:
    op.create_index('ix_delivery_pending', 'delivery', ['campaign_id', 'attempts', 'id'], unique=False,
                    postgresql_where=sa.text(PENDING), sqlite_where=sa.text(PENDING))
    op.drop_index('ix_outbox_event_pending', table_name='outbox_event')
    op.create_index('ix_outbox_event_pending', 'outbox_event', ['id'], unique=False,
                    postgresql_where=sa.text(WAITING), sqlite_where=sa.text(WAITING))


def downgrade() -> None:
    op.drop_index('ix_outbox_event_pending', table_name='outbox_event')
    op.create_index('ix_outbox_event_pending', 'outbox_event', ['created_at'], unique=False,
                    postgresql_where=sa.text(WAITING), sqlite_where=sa.text(WAITING))
    op.drop_index('ix_delivery_pending', table_name='delivery')
