"""``GET /``: a small page that says what this server is and leads each visitor on: shop staff to the dashboard's
sign-in, customers to their own card link or the poster in the shop. It lists no programme (a programme's join
page is reached from its poster, not from a public directory) and reads nothing from the database, so it also
answers while the database is down."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("home", __name__)


@bp.get("/")
def home() -> str:
    return render_template("home.html", program=None)
