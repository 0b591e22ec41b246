"""Apple Wallet, on the domain side: what a card's pass shows, and the devices that follow a card.

The PassKit web service (../shared/reference/apple_wallet.md §3) is built on these functions:
register and unregister a device for a card, list the serials changed since a device's tag, and the
``Last-Modified`` of a card's pass. The push side asks for the tokens of a card's devices and forgets
the tokens APNs says are gone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.channels.apple_pass import MAX_LOCATIONS, Location, PassContent
from app.models import AppleDevice, AppleRegistration, Card, Store
from app.wallet import images as design_images
from app.wallet.links import card_links
from app.wallet.stamps import with_stamps

PASSKIT_PATH = "/passkit"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

# Shown on the lock screen near a store; Wallet does not localise relevantText, so we pick the
# customer's language here.
_NEARBY = {
    "en": "{store} is nearby: show your card at the till",
    "ru": "{store} рядом: покажите карту на кассе",
    "ro": "{store} este aproape: arătați cardul la casă",
}


GEO_TEXT_LENGTH = 100  # a lock-screen line; the whole offer is on the pass's front


def card_by_serial(session: Session, serial: str) -> Card | None:
    return session.scalar(select(Card).where(Card.serial == serial))


# --------------------------------------------------------------------------------------------------
# What the pass shows


def _distance_km(a: Store, b: Store) -> float:
    """Great-circle distance (haversine); both stores have coordinates."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a.latitude, a.longitude, b.latitude, b.longitude))  # type: ignore[arg-type]
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 12742.0 * math.asin(math.sqrt(h))


def nearest_stores(stores: Sequence[Store], home: Store | None, limit: int = MAX_LOCATIONS) -> list[Store]:
    """The programme's stores with coordinates, the home store's nearest first (by id without one)."""
    placed = sorted((s for s in stores if s.latitude is not None and s.longitude is not None), key=lambda s: s.id)
    if home is not None and home.latitude is not None and home.longitude is not None:
        placed.sort(key=lambda s: (_distance_km(home, s), s.id))
    return placed[:limit]


def _geo_locations(card: Card) -> tuple[Location, ...]:
    """A geo campaign's stores, each with the offer as its lock-screen text, while the offer lasts."""
    text = card.offer_text[:GEO_TEXT_LENGTH]
    return tuple(Location(p["latitude"], p["longitude"], text or p["name"]) for p in card.geo_locations or ())


def pass_content(session: Session, card: Card, *, base_url: str) -> PassContent:
    program, customer = card.program, card.customer
    stores = list(session.scalars(select(Store).where(Store.program_id == program.id, Store.closed_at.is_(None))))
    home = next((s for s in stores if s.id == customer.home_store_id), None)
    nearby = nearest_stores(stores, home)
    template = _NEARBY.get(customer.locale, _NEARBY["en"])
    if program.kind == "stamps":
        balance: int | str = f"{card.stamps} / {program.stamps_required}" if program.stamps_required else card.stamps
    else:
        balance = card.balance
    return PassContent(
        serial=card.serial,
        version=card.version,
        authentication_token=card.apple_auth_token,
        web_service_url=base_url + PASSKIT_PATH,
        barcode=card.barcode,
        organization_name=program.name,
        description=f"{program.name} loyalty card",
        logo_text=program.logo_text or program.name,
        background_color=program.background_color,
        foreground_color=program.foreground_color,
        label_color=program.label_color,
        member_name=customer.name,
        balance=balance,
        stamps=program.kind == "stamps",
        tier=card.tier.name if card.tier else None,
        tier_perks=card.tier.perks if card.tier else "",
        offer=card.offer_text,
        terms=program.terms,
        card_page_url=card_links(card, base_url)["page"],
        stores="\n".join(f"{s.name}: {s.address}" if s.address else s.name for s in nearby),
        locations=_geo_locations(card) or tuple(
            Location(s.latitude, s.longitude, template.format(store=s.name))  # type: ignore[arg-type]
            for s in nearby),
        voided=card.status == "voided",
        images=_images(session, card),
    )


def _images(session: Session, card: Card) -> tuple[tuple[str, bytes], ...]:
    """The programme's own images; a stamp card's strip shows its stamps, drawn."""
    program = card.program
    files = design_images.pass_files(session, program.id)
    if program.kind != "stamps":
        return files
    return with_stamps(files, earned=card.stamps, required=program.stamps_required, ink=program.foreground_color,
                       background=program.background_color)


# --------------------------------------------------------------------------------------------------
# Tags and dates of the web service


def update_tag(moment: datetime) -> str:
    """``lastUpdated``: opaque to the phone and echoed back, so exact microseconds, as a string."""
    return str((moment - _EPOCH) // _MICROSECOND)


def parse_update_tag(tag: str | None) -> datetime | None:
    if not tag or not tag.isdigit() or len(tag) > 20:
        return None
    return _EPOCH + int(tag) * _MICROSECOND


def last_modified(card: Card, now: datetime) -> datetime:
    """The pass's ``Last-Modified`` (whole seconds, as HTTP dates are).

    A card changed twice within one second must not look unchanged to a phone that fetched it in
    between, so while the change's second is still running we claim one second earlier: the phone's
    next ``If-Modified-Since`` then gets the full pass once more instead of a wrong 304."""
    changed = card.updated_at.replace(microsecond=0)
    return changed - timedelta(seconds=1) if changed == now.replace(microsecond=0) else changed


def modified_since(card: Card, since: datetime) -> bool:
    return card.updated_at.replace(microsecond=0) > since


# --------------------------------------------------------------------------------------------------
# Devices and registrations


def _insert(session: Session):  # noqa: ANN202 (the dialect's insert construct)
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def register(session: Session, *, card: Card, library_id: str, push_token: str, now: datetime) -> bool:
    """Follow ``card`` from this device; True if the registration is new. Idempotent, and two
    statements whatever the state: phones re-register often, some with a new library id each time."""
    insert = _insert(session)
    device = insert(AppleDevice).values(library_id=library_id, push_token=push_token, created_at=now, updated_at=now)
    device_id = session.execute(
        device.on_conflict_do_update(index_elements=[AppleDevice.library_id],
                                     set_={"push_token": push_token, "updated_at": now})
        .returning(AppleDevice.id)
    ).scalar_one()
    created = session.execute(
        insert(AppleRegistration).values(device_id=device_id, card_id=card.id, created_at=now)
        .on_conflict_do_nothing(index_elements=[AppleRegistration.device_id, AppleRegistration.card_id])
        .returning(AppleRegistration.id)
    ).scalar_one_or_none()
    return created is not None


def unregister(session: Session, *, card: Card, library_id: str) -> None:
    """Stop following ``card`` from this device; a device left with no cards is forgotten."""
    device_id = session.scalar(select(AppleDevice.id).where(AppleDevice.library_id == library_id))
    if device_id is None:
        return
    session.execute(delete(AppleRegistration).where(AppleRegistration.device_id == device_id,
                                                    AppleRegistration.card_id == card.id))
    remaining = session.scalar(select(func.count()).where(AppleRegistration.device_id == device_id))
    if not remaining:
        session.execute(delete(AppleDevice).where(AppleDevice.id == device_id))


def serials_since(session: Session, *, library_id: str, since: datetime | None) -> tuple[list[str], str] | None:
    """The serials this device follows that changed strictly after ``since`` (all of them without
    one), and the tag to send back; None when there are none (the web service answers 204)."""
    stmt = (
        select(Card.serial, Card.updated_at)
        .join(AppleRegistration, AppleRegistration.card_id == Card.id)
        .join(AppleDevice, AppleDevice.id == AppleRegistration.device_id)
        .where(AppleDevice.library_id == library_id)
        .order_by(Card.serial)
    )
    if since is not None:
        stmt = stmt.where(Card.updated_at > since)
    rows = session.execute(stmt).all()
    if not rows:
        return None
    return [serial for serial, _ in rows], update_tag(max(updated for _, updated in rows))


def push_tokens(session: Session, *, card_ids: Iterable[int]) -> dict[str, list[int]]:
    """The push tokens of the devices following these cards, each with the cards it follows."""
    ids = sorted(set(card_ids))
    if not ids:
        return {}
    rows = session.execute(
        select(AppleDevice.push_token, AppleRegistration.card_id)
        .join(AppleRegistration, AppleRegistration.device_id == AppleDevice.id)
        .where(AppleRegistration.card_id.in_(ids))
        .order_by(AppleDevice.push_token, AppleRegistration.card_id)
    ).all()
    tokens: dict[str, list[int]] = {}
    for token, card_id in rows:
        tokens.setdefault(token, []).append(card_id)
    return tokens


def forget_tokens(session: Session, *, tokens: Iterable[str]) -> int:
    """APNs says these tokens are no longer active: drop their devices and registrations."""
    gone = sorted(set(tokens))
    if not gone:
        return 0
    device_ids = list(session.scalars(select(AppleDevice.id).where(AppleDevice.push_token.in_(gone))))
    if device_ids:
        session.execute(delete(AppleRegistration).where(AppleRegistration.device_id.in_(device_ids)))
        session.execute(delete(AppleDevice).where(AppleDevice.id.in_(device_ids)))
    return len(device_ids)
