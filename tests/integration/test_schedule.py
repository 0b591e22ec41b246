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


def test_beat_keeps_its_schedule_under_instance_not_in_the_checkout(tmp_path):
    """``make beat`` (``celery -A app.celery_app beat``) run from a fresh checkout writes its schedule file under
    instance/ (created if missing), and nothing named celerybeat-schedule* in the folder it runs from; the root
    pattern is ignored by git as well, for a path set elsewhere."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TALLYPASS_")}
    env["PYTHONPATH"] = str(root)
    celery = Path(sys.executable).with_name("celery")
    log = tmp_path / "beat.log"
    with log.open("wb") as stderr:
        beat = subprocess.Popen([str(celery), "-A", "app.celery_app", "beat", "--loglevel", "WARNING"],
                                cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            deadline = time.monotonic() + 30
            while not list((tmp_path / "instance").glob("celerybeat-schedule*")) and time.monotonic() < deadline:
                assert beat.poll() is None, log.read_text()
                time.sleep(0.2)
        finally:
            beat.terminate()
            beat.wait(timeout=10)
    assert list((tmp_path / "instance").glob("celerybeat-schedule*"))
    assert not list(tmp_path.glob("celerybeat-schedule*"))
    ignored = subprocess.run(["git", "check-ignore", "-q", "celerybeat-schedule.db"],
                             cwd=root, check=False)
    assert ignored.returncode == 0
