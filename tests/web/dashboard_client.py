"""Helpers for tests of dashboard pages: an account per role, signing in, and the page's CSRF token."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.merchants.users import create_user
from app.models import User

PASSWORD = "correct horse battery"  # noqa: S105 (a test account)


def csrf(client: FlaskClient, url: str = "/dashboard/login") -> str:
    """The CSRF token of the page at ``url`` (from its hidden field or its meta tag)."""
    page = client.get(url)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text) or re.search(
        r'name="csrf-token" content="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


def sign_in_as(client: FlaskClient, db_session: Session, role: str = "marketer",
               email: str | None = None) -> tuple[User, str]:
    """A new account with ``role``, signed in on ``client``; returns it and a CSRF token for forms."""
    user = create_user(db_session, email=email or f"{role}@shop.test", password=PASSWORD, role=role)
    db_session.commit()
    response = client.post("/dashboard/login", data={"csrf_token": csrf(client), "email": user.email,
                                                     "password": PASSWORD})
    assert response.status_code == 303, response.text
    return user, csrf(client, "/dashboard/")
