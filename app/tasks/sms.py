"""SMS upkeep for the beat: delivery-status reports that arrived before their text was committed."""

from __future__ import annotations

from celery import shared_task

from app.database import sessions
from app.db import utcnow
from app.messaging import sms


@shared_task
def apply_early_sms_reports() -> int:
    """Beat, every minute: the kept status reports whose text is now recorded reach it and its campaign
    delivery (``messaging.sms.apply_early_reports``). Returns how many were applied."""
    with sessions().begin() as session:
        return sms.apply_early_reports(session, now=utcnow())
