"""Tests that run the service against the Google Wallet stand-in over real HTTP: the stand-in, its service account
and the settings that point the service at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.channels.google_wallet import ServiceAccount
from app.settings import Settings
from tests.fakes.google_wallet_api import FakeGoogleWallet

ISSUER = "3388000000000000000"


@pytest.fixture
def account(apple_certs: Path) -> ServiceAccount:
    """The dev-certs service account, whose key the stand-in trusts."""
    return ServiceAccount.from_file(apple_certs / "google-service-account.json")


@pytest.fixture
def fake(account: ServiceAccount) -> Iterator[FakeGoogleWallet]:
    with FakeGoogleWallet(account.private_key, account.client_email, ISSUER) as server:
        yield server


@pytest.fixture
def settings(settings: Settings, fake: FakeGoogleWallet) -> Settings:
    """The test settings, with the service's Google URLs on the stand-in."""
    return settings.model_copy(update={"google_api_url": fake.api_url, "google_token_url": fake.token_url})
