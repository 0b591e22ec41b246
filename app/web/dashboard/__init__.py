"""The marketers' dashboard (``/dashboard``): HTML pages behind a session login, each with the least role
that may use it (``access.requires``). Forms carry a CSRF token; every page is sent with the strict Content
Security Policy of ``app.web.security_headers`` and is never cached."""

from __future__ import annotations

import importlib
import pkgutil
from datetime import timedelta
from typing import Any

from flask import Blueprint, Flask, Response, current_app

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")

# app.extensions key: what an operator must fix, shown on every page to signed-in users (e.g. SMS that cannot leave)
OPERATOR_WARNINGS = "tallypass.operator_warnings"

# The header's menu: (endpoint, label). An entry shows once its view exists and the user's role may open it.
NAV = (
    ("dashboard.overview", "Overview"),
    ("dashboard.programme", "Programme"),
    ("dashboard.stores", "Stores"),
    ("dashboard.customers", "Customers"),
    ("dashboard.segments", "Segments"),
    ("dashboard.campaigns", "Campaigns"),
    ("dashboard.outbox", "Outbox"),
    ("dashboard.tokens", "API tokens"),
    ("dashboard.users", "Users"),
    ("dashboard.audit_log", "Audit log"),
    ("dashboard.account", "Account"),
)


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.context_processor
def _nav() -> dict[str, Any]:
    """``dashboard_nav(user)`` for the header: called by the pages that show a signed-in user, never by the error
    page, which must render without looking anything up (the lookup may be what failed)."""
    return {"dashboard_nav": nav_for, "operator_warnings": current_app.extensions.get(OPERATOR_WARNINGS, [])}


def nav_for(user: Any) -> list[tuple[str, str]]:
    """The header's menu for ``user``: (endpoint, label) of each view that exists and their role may open."""
    from app.web.dashboard.access import may

    views = current_app.view_functions
    return [(endpoint, label) for endpoint, label in NAV
            if endpoint in views and may(user, getattr(views[endpoint], "required_role", "admin"))]


def init_app(app: Flask) -> None:
    # Every module of this package registers its views on ``bp`` when imported.
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")

    settings = app.config["TALLYPASS"]
    # The cookie holds a signed-in session's token (access.py): never readable by scripts, not sent on other
    # sites' form posts, only over https in production; the browser drops it when the session would end anyway.
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.env == "production" or settings.base_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.dashboard_session_hours),
    )
    app.register_blueprint(bp)
