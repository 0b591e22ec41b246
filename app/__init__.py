"""Tallypass: loyalty cards in Apple Wallet and Google Wallet, kept live from the till."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.settings import Settings

if TYPE_CHECKING:
    from flask import Flask

MAX_BODY_BYTES = 64 * 1024


def create_app(settings: Settings | None = None) -> Flask:
    """Build the WSGI application. Importing modules has no side effects; this does the setup."""
    from flask import Flask  # here, not at import: domain code imports the package without Flask

    from app import cli, database, log, tasks, web
    from app.channels.registry import EXTENSION, Channels

    settings = settings or Settings()
    if settings.env != "testing":
        log.configure_logging(settings.log_level)
    app = Flask(__name__, template_folder="../templates", static_folder="static")
    app.config.update(
        SECRET_KEY=settings.resolved_secret_key(),
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        TESTING=settings.env == "testing",
        TALLYPASS=settings,
        JSON_SORT_KEYS=False,
    )
    if settings.proxy_hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = settings.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    app.extensions[EXTENSION] = Channels(settings)
    tasks.celery_init_app(app, settings)
    database.init_app(app, settings)
    web.init_app(app)
    cli.init_app(app)
    return app
