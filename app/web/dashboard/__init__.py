"""The marketers' dashboard (``/dashboard``): HTML pages behind a session login, each with the least role
that may use it (``access.requires``). Forms carry a CSRF token; every page is sent with the strict Content
Security Policy of ``app.web.security_headers`` and is never cached."""

from __future__ import annotations

import importlib
import pkgutil
from datetime import timedelta
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")

SESSION_HOURS = 12

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
    ("dashboard.audit_log", "Audit log"),
)


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.context_processor
def _nav() -> dict[str, Any]:
    from app.web.dashboard.access import current_user, may

    user = current_user() if request.blueprint == "dashboard" else None
    views = current_app.view_functions
    items = [(endpoint, label) for endpoint, label in NAV
             if endpoint in views and may(user, getattr(views[endpoint], "required_role", "admin"))]
    return {"dashboard_nav": items}


def init_app(app: Flask) -> None:
    # Every module of this package registers its views on ``bp`` when imported.
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")

    settings = app.config["TALLYPASS"]
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.base_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
    )
    app.register_blueprint(bp)
