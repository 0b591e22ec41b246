"""Geo campaigns: while the campaign lasts, the cards it reached carry its stores as the pass's
``locations`` (with the offer as the lock-screen text) and as Google's ``merchantLocations``; when it
ends, the beat takes the offer and the stores off again and the cards go back to their nearest stores."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.campaigns import lifecycle, offers, send
from app.campaigns.channels import PushChannel, SmsChannel, WalletChannel
from app.campaigns.lifecycle import VariantSpec
from app.channels.apple_pass import PassDesign
from app.errors import InvalidInput
from app.loyalty import enrollment
from app.models import AppleDevice, AppleRegistration, Delivery, OutboxEvent
from app.wallet import google
from app.wallet.apple import pass_content

NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
ENDS = NOON + timedelta(days=3)
CENTRE, BOTANICA, AIRPORT = (47.0245, 28.8323), (46.9870, 28.8570), (46.9277, 28.9310)


def channels() -> dict[str, Any]:
    return {"wallet": WalletChannel(google_setup=None, google_client=None), "push": PushChannel(pusher=None),
            "sms": SmsChannel(client=None, sender="Tallypass")}


@pytest.fixture
def shop(db_session: Session, make_program: Callable[..., Any], make_store: Callable[..., Any],
         make_card: Callable[..., Any]) -> dict[str, Any]:
    program = make_program(name="Cafea")
    stores = {name: make_store(program, name.title(), latitude=lat, longitude=lon).store
              for name, (lat, lon) in (("centre", CENTRE), ("botanica", BOTANICA), ("airport", AIRPORT))}
    cards = []
    for n in range(2):
        card = make_card(program, name=f"Ana{n} Popescu", home_store=stores["centre"])
        enrollment.set_consents(db_session, customer=card.customer, consents={"wallet": True}, source="test", now=NOON)
        device = AppleDevice(library_id=f"geo{n}", push_token=f"{n:064x}")
        db_session.add(device)
        db_session.flush()
        db_session.add(AppleRegistration(device_id=device.id, card_id=card.id))
        cards.append(card)
    db_session.flush()
    return {"program": program, "stores": stores, "cards": cards}


def locations(db_session: Session, card: Any) -> list[tuple[float, float, str]]:
    content = pass_content(db_session, card, base_url="https://tallypass.test")
    document = PassDesign.load().pass_json(content, pass_type_id="pass.test", team_id="TEAM")
    return [(loc["latitude"], loc["longitude"], loc["relevantText"]) for loc in document.get("locations", [])]


def test_a_geo_campaign_puts_its_stores_on_the_cards_until_it_ends(db_session: Session, shop: dict[str, Any]) -> None:
    reached, other = shop["cards"]
    airport = shop["stores"]["airport"]
    nearest_before = locations(db_session, reached)
    assert [loc[:2] for loc in nearest_before] == [CENTRE, BOTANICA, AIRPORT]  # the home store first
    campaign = lifecycle.create(db_session, program=shop["program"], name="Airport", channels=["wallet"],
                                geo_store_ids=[airport.id], ends_at=ENDS, now=NOON,
                                variants=[VariantSpec("A", "{{ first_name }}, a free coffee at the airport")])
    lifecycle.start(db_session, campaign=campaign, now=NOON)
    # Only the first customer is in the campaign's audience: the other's delivery is taken out.
    other_row = db_session.scalars(select(Delivery).where(Delivery.card_id == other.id)).one()
    other_row.status = "skipped"
    db_session.flush()
    result = send.send_batch(db_session, campaign_id=campaign.id, channels=channels(), base_url="https://t", now=NOON)
    assert result.outcomes["sent"] == 1

    assert locations(db_session, reached) == [(*AIRPORT, "Ana0, a free coffee at the airport")]
    assert locations(db_session, other) == nearest_before
    assert google.changing_fields(reached)["merchantLocations"] == [{"latitude": AIRPORT[0], "longitude": AIRPORT[1]}]
    assert google.changing_fields(other)["merchantLocations"] == []
    assert reached.offer_until == ENDS

    version = reached.version
    assert offers.end_due(db_session, now=ENDS - timedelta(minutes=1)) == 0  # not yet
    assert offers.end_due(db_session, now=ENDS) == 1
    assert (reached.offer_text, reached.offer_until, reached.geo_locations) == ("", None, None)
    assert reached.version == version + 1  # the phone is told: a pass update and a Google PATCH
    assert [loc[:2] for loc in locations(db_session, reached)] == [CENTRE, BOTANICA, AIRPORT]
    assert google.changing_fields(reached)["merchantLocations"] == []
    event = db_session.scalars(select(OutboxEvent).where(OutboxEvent.topic == "card.changed")
                              .order_by(OutboxEvent.id.desc())).first()
    assert event is not None and event.payload["card_id"] == reached.id and "offer-ended" in event.payload["reasons"]


def test_a_geo_campaign_is_checked_when_created(db_session: Session, shop: dict[str, Any],
                                                make_program: Callable[..., Any],
                                                make_store: Callable[..., Any]) -> None:
    stores = shop["stores"]
    unplaced = make_store(shop["program"], "Market").store
    foreign = make_store(make_program(), "Elsewhere", latitude=1.0, longitude=2.0).store

    def errors(**fields: Any) -> dict[str, str]:
        values = {"geo_store_ids": [stores["centre"].id], "ends_at": ENDS, **fields}
        with pytest.raises(InvalidInput) as caught:
            lifecycle.create(db_session, program=shop["program"], name="Geo", channels=["wallet"], now=NOON,
                             variants=[VariantSpec("A", "Hi")], **values)
        found: dict[str, str] = {}
        for error in caught.value.errors:
            found[error.field] = f"{found.get(error.field, '')}{error.message}; "
        return found

    assert "needs an end" in errors(ends_at=None)["ends_at"]
    assert "future" in errors(ends_at=NOON - timedelta(hours=1))["ends_at"]
    assert "Market" in errors(geo_store_ids=[unplaced.id])["geo_store_ids"]
    assert str(foreign.id) in errors(geo_store_ids=[foreign.id])["geo_store_ids"]
    assert "up to 10" in errors(geo_store_ids=list(range(1, 12)))["geo_store_ids"]
    created = lifecycle.create(db_session, program=shop["program"], name="Geo", channels=["wallet"], now=NOON,
                               variants=[VariantSpec("A", "Hi")], geo_store_ids=[stores["centre"].id], ends_at=ENDS)
    assert created.geo_store_ids == [stores["centre"].id]
