"""A campaign's offer on the card ends with the campaign (``Campaign.ends_at``).

The wallet channel writes the offer, its end and a geo campaign's stores on the card; when the end has
passed, ``end_due`` clears them and bumps the card, so the pass goes back to its nearest stores and no offer,
and Google's object loses the campaign's ``merchantLocations`` (both through the usual ``card.changed``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.loyalty import ledger
from app.models import Card


def end_due(session: Session, *, now: datetime, limit: int = 500) -> int:
    """Clear up to ``limit`` offers whose end has passed; returns how many (call again while it is ``limit``)."""
    cards = list(session.scalars(select(Card).where(Card.offer_until <= now).order_by(Card.id).limit(limit)
                                 .with_for_update(skip_locked=True)))
    ledger.touch_many(session, [(card, {"offer_text": "", "offer_until": None, "geo_locations": None})
                                for card in cards], now=now, reasons=["offer-ended"])
    return len(cards)
