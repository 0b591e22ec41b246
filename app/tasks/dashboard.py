"""Scheduled dashboard housekeeping (Celery beat): deleting the sessions that can no longer sign anybody in."""

from __future__ import annotations

import logging

from celery import shared_task
from flask import current_app

from app.database import sessions
from app.db import utcnow
from app.merchants import dashboard_sessions

log = logging.getLogger(__name__)


@shared_task
def purge_dashboard_sessions() -> int:
    """Delete revoked, expired and idle-too-long sessions (nightly); how many."""
    lifetime = dashboard_sessions.Lifetime.configured(current_app.config["TALLYPASS"])
    with sessions().begin() as session:
        purged = dashboard_sessions.purge(session, now=utcnow(), lifetime=lifetime)
    log.info("purged %d ended dashboard sessions", purged)
    return purged
