"""Celery, wired as in Flask's own pattern (docs/patterns/celery.rst): every task runs inside an
app context. With no broker configured, tasks run inline (eager), so a bare machine needs no Redis.

Tasks take ids, open their own session and transaction, and call one service. Only call
``.delay()``/``.apply_async()`` on task objects (``send_task`` ignores eager mode).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import Celery, Task
from celery.schedules import crontab
from celery.signals import setup_logging, task_postrun, task_prerun
from flask import Flask

from app.settings import Settings


def celery_init_app(app: Flask, settings: Settings) -> Celery:
    class FlaskTask(Task):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

    eager = not settings.broker_url
    celery = Celery(app.name, task_cls=FlaskTask)
    celery.conf.update(
        broker_url=settings.broker_url or "memory://localhost/",
        task_always_eager=eager,
        task_eager_propagates=True,
        task_ignore_result=True,
        task_acks_late=True,  # a crashed worker's task is redelivered; our tasks are idempotent
        worker_prefetch_multiplier=4,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": 3600},
        # Publishing happens after the commit; a broker outage must not stall the request for long.
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2},
        beat_schedule=_beat_schedule(),
        beat_schedule_filename=settings.beat_schedule_file,
        timezone="UTC",
    )
    celery.set_default()
    app.extensions["celery"] = celery
    # Importing the task modules registers their @shared_task functions with this app.
    from app.tasks import (  # noqa: F401
        automations,
        campaigns,
        dashboard,
        design,
        imports,
        loyalty,
        outbox,
        passes,
        segments,
        sms,
    )

    return celery


def _beat_schedule() -> dict[str, dict[str, Any]]:
    return {
        "outbox-sweep": {"task": "app.tasks.outbox.sweep_outbox", "schedule": timedelta(seconds=30)},
        "expire-points": {"task": "app.tasks.loyalty.expire_points", "schedule": timedelta(hours=1)},
        "reevaluate-tiers": {"task": "app.tasks.loyalty.reevaluate_tiers", "schedule": timedelta(hours=24)},
        "purge-idempotency": {"task": "app.tasks.loyalty.purge_idempotency", "schedule": timedelta(hours=1)},
        "resync-google": {"task": "app.tasks.passes.resync_google", "schedule": timedelta(minutes=5)},
        "recompute-rfm": {"task": "app.tasks.segments.recompute_rfm", "schedule": crontab(hour=3, minute=0)},
        "automations": {"task": "app.tasks.automations.daily_automations", "schedule": timedelta(hours=1)},
        "end-offers": {"task": "app.tasks.campaigns.end_offers", "schedule": timedelta(minutes=5)},
        "tick-campaigns": {"task": "app.tasks.campaigns.tick_campaigns", "schedule": timedelta(minutes=1)},
        "resume-member-imports": {"task": "app.tasks.imports.resume_member_imports",
                                  "schedule": timedelta(minutes=1)},
        "purge-channel-messages": {"task": "app.tasks.outbox.purge_channel_messages",
                                   "schedule": timedelta(hours=24)},
        "early-sms-reports": {"task": "app.tasks.sms.apply_early_sms_reports", "schedule": timedelta(minutes=1)},
        "purge-dashboard-sessions": {"task": "app.tasks.dashboard.purge_dashboard_sessions",
                                     "schedule": crontab(hour=3, minute=30)},
    }


@setup_logging.connect
def _worker_logging(**_: Any) -> None:
    from app.log import configure_logging

    configure_logging(Settings().log_level)


@task_prerun.connect
def _tag_task(task_id: str | None = None, **_: Any) -> None:
    from app.log import correlation_id

    correlation_id.set(f"task:{task_id}")


@task_postrun.connect
def _untag_task(**_: Any) -> None:
    from app.log import correlation_id

    correlation_id.set("-")
