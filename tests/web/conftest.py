"""Fixtures of the web tests: API tokens of each role (the marketer API's bearer tokens) and dashboard users."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session

from app.merchants.users import create_user
from app.models import User
from tests.web.api_client import api_token
from tests.web.dashboard_client import PASSWORD


@pytest.fixture
def token(db_session: Session) -> str:
    """A marketer's token."""
    return api_token(db_session, "marketer")


@pytest.fixture
def viewer(db_session: Session) -> str:
    return api_token(db_session, "viewer")


@pytest.fixture
def admin(db_session: Session) -> str:
    return api_token(db_session, "admin")


@pytest.fixture
def make_user(db_session: Session) -> Callable[..., User]:
    """Makes a committed dashboard user of a role (password ``dashboard_client.PASSWORD``)."""

    def make(role: str = "marketer", email: str | None = None) -> User:
        user = create_user(db_session, email=email or f"{role}@shop.test", password=PASSWORD, role=role)
        db_session.commit()
        return user

    return make
