"""Entry point for Celery processes: ``celery -A app.celery_app worker`` / ``beat``."""

from pathlib import Path

from app import create_app

flask_app = create_app()
celery = flask_app.extensions["celery"]
# Beat opens its schedule file (TALLYPASS_BEAT_SCHEDULE_FILE, under instance/ by default) before any signal
# fires: make sure its folder exists on a fresh checkout.
Path(celery.conf.beat_schedule_filename).parent.mkdir(parents=True, exist_ok=True)
