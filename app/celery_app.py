"""Entry point for Celery processes: ``celery -A app.celery_app worker`` / ``beat``."""

from app import create_app

flask_app = create_app()
celery = flask_app.extensions["celery"]
