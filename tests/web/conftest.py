"""Fixtures of the web tests: API tokens of each role (the marketer API's bearer tokens)."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from tests.web.api_client import api_token


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
