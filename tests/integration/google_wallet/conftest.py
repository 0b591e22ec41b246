"""Tests that run the service against the Google Wallet stand-in over real HTTP: the stand-in, its service account
and the settings that point the service at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from app.campaigns import lifecycle
from app.campaigns.channels import WalletChannel
from app.campaigns.lifecycle import VariantSpec
from app.channels.google_wallet import ServiceAccount
from app.channels.registry import EXTENSION as CHANNELS
from app.loyalty import enrollment
from app.models import Campaign, Card, Program
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


StartCampaign = Callable[..., tuple[Campaign, dict[str, WalletChannel]]]


@pytest.fixture
def start_wallet_campaign(db_session: Session, app: Flask) -> StartCampaign:
    """Starts a one-message campaign ("Double points") on the wallet channel to ``cards`` (each consenting);
    returns it and the channels a send batch takes."""
    def start(*, program: Program, cards: list[Card], now: datetime) -> tuple[Campaign, dict[str, WalletChannel]]:
        return _start(db_session, app, program=program, cards=cards, now=now)

    return start


def _start(db_session: Session, app: Flask, *, program: Program, cards: list[Card],
           now: datetime) -> tuple[Campaign, dict[str, WalletChannel]]:
    for card in cards:
        enrollment.set_consents(db_session, customer=card.customer, consents={"wallet": True}, source="test", now=now)
    with app.app_context():
        wallet = app.extensions[CHANNELS].google()
    channels = {"wallet": WalletChannel(google_setup=wallet.setup, google_client=wallet.client)}
    campaign = lifecycle.create(db_session, program=program, name="Weekend", channels=["wallet"],
                                variants=[VariantSpec("A", "Double points", title="Weekend")],
                                quiet_start_hour=0, quiet_end_hour=0, now=now)  # any hour of the day
    lifecycle.start(db_session, campaign=campaign, now=now)
    return campaign, channels
