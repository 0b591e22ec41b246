"""The beat schedule names tasks that exist: a typo would silently stop expiry or the outbox sweep."""


def test_every_scheduled_job_is_a_registered_task(app):
    celery = app.extensions["celery"]
    scheduled = {entry["task"] for entry in celery.conf.beat_schedule.values()}
    assert scheduled == {
        "app.tasks.outbox.sweep_outbox",
        "app.tasks.loyalty.expire_points",
        "app.tasks.loyalty.reevaluate_tiers",
        "app.tasks.loyalty.purge_idempotency",
        "app.tasks.passes.resync_google",
        "app.tasks.outbox.purge_channel_messages",
        "app.tasks.campaigns.tick_campaigns",
        "app.tasks.campaigns.end_offers",
        "app.tasks.automations.daily_automations",
        "app.tasks.segments.recompute_rfm",
        "app.tasks.dashboard.purge_dashboard_sessions",
        "app.tasks.sms.apply_early_sms_reports",
        "app.tasks.imports.resume_member_imports",
    }
    assert scheduled <= set(celery.tasks)
