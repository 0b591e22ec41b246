"""The shopper's language (Flask-Babel): ``?lang=`` from the switcher (remembered in a cookie), then
the cookie, then the browser's ``Accept-Language``; English, Russian and Romanian."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, Response, g, request
from flask_babel import Babel, get_locale

LANGUAGES = {"en": "English", "ru": "Русский", "ro": "Română"}
COOKIE = "lang"
TRANSLATIONS = Path(__file__).resolve().parents[2] / "translations"


def select_locale() -> str:
    asked = request.args.get("lang")
    if asked in LANGUAGES:
        g.set_language_cookie = asked
        return asked
    remembered = request.cookies.get(COOKIE)
    if remembered in LANGUAGES:
        return remembered
    return request.accept_languages.best_match(list(LANGUAGES), default="en")


def _remember(response: Response) -> Response:
    language = g.pop("set_language_cookie", None)
    if language:
        response.set_cookie(COOKIE, language, max_age=365 * 86400, samesite="Lax", secure=request.is_secure)
    return response


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    Babel(app, locale_selector=select_locale)
    app.after_request(_remember)
    app.jinja_env.globals["LANGUAGES"] = LANGUAGES
    app.context_processor(lambda: {"current_language": str(get_locale() or "en")})
