"""Google Wallet, on the domain side: a loyalty class per programme, an object per card, the save
link, and keeping objects in step with the cards (../shared/reference/google_wallet.md).

Every service takes ``client``: the REST client, or None when this deployment cannot reach Google
(no credentials, or stand-ins). Without one, what would have been sent is recorded in the channel
outbox (``ChannelMessage``) and nothing is marked as existing at Google.

Google shows a balance change only if we PATCH the object. Notifications (``NOTIFY_ON_UPDATE``,
``TEXT_AND_NOTIFY`` messages) are limited to 3 per pass per 24 h, so each object keeps the times of
the ones it used, under a row lock, and anything beyond the budget goes out silently.

Every field sent is one the resource has in Google's discovery document (``walletobjects`` v1; a test checks
every body against it). A ``LoyaltyObject`` has no tier of its own (``rewardsTier`` is a class field, the same
for every holder), so a card's tier is its ``secondaryLoyaltyPoints`` labelled "Tier": Google's loyalty card
shows the secondary points on the card's face next to the balance, with no class template, where a text module
would only be seen on the details screen.

When Google refuses a body (``GoogleInvalid``: 400 and the like), the refusal is kept on the class or object row
(the content's digest and Google's answer) and written once to the channel outbox, where the dashboard shows
it: the same content is never sent again, the next different content is. Until Google has the class, its
objects wait instead of being sent to a certain 404; an object refused waits alone. 429/5xx stay retryable
(the client backs off; the resync job tries again later).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.channels.google_wallet import (
    MAX_SAVE_JWT,
    GoogleInvalid,
    GoogleNotFound,
    GoogleQuotaExceeded,
    GoogleWalletClient,
    GoogleWalletError,
    ServiceAccount,
    save_jwt,
    save_url,
)
from app.models import Card, ChannelMessage, GoogleClass, GoogleObject, Program, Store
from app.wallet.images import logo_path
from app.wallet.links import card_links

log = logging.getLogger(__name__)

CHANNEL = "google_wallet"
NOTIFY_LIMIT = 3  # notifications per pass per 24 h (reference §4)
NOTIFY_WINDOW = timedelta(hours=24)
MAX_MESSAGES = 10  # an object holds at most 10 messages (reference §4)
MAX_LOCATIONS = 10  # merchantLocations on a class (reference §1)
NOTIFY_REASONS = frozenset({"tier", "reward"})  # a silent PATCH for everything else
LOGO_PATH = "/media/program-logo.png"
_SHORT = 20  # Google recommends at most 20 characters for names shown on the card
TIER_LABEL = "Tier"
NO_TIER = "—"  # a tiered programme's card below the first tier (the field stays, so a PATCH replaces it)
_COMPACT_NAMES = (40, _SHORT)  # programme-name lengths tried for a save link, longest first


@dataclass(frozen=True)
class GoogleSetup:
    """What the services need to know about this deployment's Google Wallet."""

    issuer_id: str
    base_url: str
    origins: tuple[str, ...] = ()
    account: ServiceAccount | None = None  # None: no save links can be signed


def class_id(setup: GoogleSetup, program: Program) -> str:
    return f"{setup.issuer_id}.{program.google_class_suffix or program.slug}"


def object_id(setup: GoogleSetup, card: Card) -> str:
    return f"{setup.issuer_id}.{card.serial}"


# --------------------------------------------------------------------------------------------------
# Resources


def _localized(value: str, language: str = "en") -> dict[str, Any]:
    return {"defaultValue": {"language": language, "value": value}}


def class_resource(setup: GoogleSetup, program: Program, stores: Iterable[Store], *, compact: int = 0
                   ) -> dict[str, Any]:
    """The programme's loyalty class. ``compact`` (a name length) leaves out what a save link cannot
    afford: a link has room for a short programme name only, and Google shows about 20 characters."""
    resource: dict[str, Any] = {
        "id": class_id(setup, program),
        "issuerName": (program.logo_text or program.name)[:_SHORT],
        "programName": program.name[:compact] if compact else program.name,
        "programLogo": {"sourceUri": {"uri": setup.base_url + (logo_path(program) or LOGO_PATH)}},
        "hexBackgroundColor": program.background_color.lower(),
        "reviewStatus": "UNDER_REVIEW",  # Google approves it by itself; DRAFT classes cannot hold objects
    }
    if compact:
        return resource
    resource["programLogo"]["contentDescription"] = _localized(program.name)
    placed = [s for s in sorted(stores, key=lambda s: s.id) if s.latitude is not None and s.longitude is not None]
    if placed:
        resource["merchantLocations"] = [{"latitude": s.latitude, "longitude": s.longitude}
                                         for s in placed[:MAX_LOCATIONS]]
    resource.update(accountIdLabel="Card number", accountNameLabel="Member",
                    linksModuleData={"uris": [{"uri": f"{setup.base_url}/join/{program.slug}",
                                               "description": "Join", "id": "join"}]})
    if program.terms:
        resource["textModulesData"] = [{"id": "terms", "header": "Terms", "body": program.terms[:1000]}]
    return resource


def _points(card: Card) -> dict[str, Any]:
    program = card.program
    if program.kind == "stamps":
        shown = f"{card.stamps} / {program.stamps_required}" if program.stamps_required else str(card.stamps)
        return {"label": "Stamps", "balance": {"string": shown}}
    return {"label": "Points", "balance": {"int": card.balance}}


def _tier(card: Card) -> dict[str, Any] | None:
    """The card's tier as secondary points ("Tier: Gold"), in a programme that has tiers (see the module
    docstring for why not ``rewardsTier``, which objects do not have)."""
    if card.tier is not None:
        return {"label": TIER_LABEL, "balance": {"string": card.tier.name[:_SHORT]}}
    if card.program.tiers:
        return {"label": TIER_LABEL, "balance": {"string": NO_TIER}}
    return None


def changing_fields(card: Card) -> dict[str, Any]:
    """The object's fields that follow the card. A PATCH replaces top-level fields whole (reference §3),
    so each is sent complete."""
    fields: dict[str, Any] = {
        "state": "INACTIVE" if card.status == "voided" else "ACTIVE",
        "accountName": card.customer.name[:_SHORT] or card.barcode,
        "loyaltyPoints": _points(card),
    }
    tier = _tier(card)
    if tier is not None:
        fields["secondaryLoyaltyPoints"] = tier
    # A geo campaign's stores while its offer lasts; an empty list clears them afterwards (PATCH replaces it).
    fields["merchantLocations"] = [{"latitude": p["latitude"], "longitude": p["longitude"]}
                                   for p in (card.geo_locations or [])[:MAX_LOCATIONS]]
    return fields


def object_resource(setup: GoogleSetup, card: Card, *, compact: bool = False) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "id": object_id(setup, card),
        "classId": class_id(setup, card.program),
        "accountId": card.barcode[:_SHORT],
        **changing_fields(card),
        "barcode": {"type": "QR_CODE", "value": card.barcode, "alternateText": card.barcode},
    }
    if not compact:
        resource["linksModuleData"] = {"uris": [{"uri": card_links(card, setup.base_url)["page"],
                                                 "description": "Your card online", "id": "card"}]}
    return resource


def _digest(resource: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(resource, sort_keys=True).encode()).hexdigest()


def _record(session: Session, *, method: str, path: str, body: dict[str, Any], card_id: int | None,
            recipient: str, now: datetime) -> None:
    session.add(ChannelMessage(channel=CHANNEL, recipient=recipient, card_id=card_id, created_at=now,
                               payload={"method": method, "path": path, "body": body}))


def note_refusal(session: Session, *, exc: GoogleWalletError, card_id: int | None, recipient: str,
                 now: datetime) -> None:
    """Google's refusal of a request, in the channel outbox next to what outbox mode records: the request
    (method, path, body) and ``refused`` with Google's status, reason and message. Logged without the message,
    which may quote a field's value (a name)."""
    body = exc.body if isinstance(exc, GoogleInvalid) else None
    session.add(ChannelMessage(channel=CHANNEL, recipient=recipient, card_id=card_id, created_at=now, payload={
        "method": exc.method, "path": (exc.path or "").lstrip("/"), "body": body,
        "refused": {"status": exc.status, "reason": exc.reason, "message": exc.detail or str(exc)}}))
    log.warning("google wallet: Google refused %s %s (%s %s); the request and Google's answer are in the outbox",
                exc.method, recipient, exc.status, exc.reason)


def _refusal_text(exc: GoogleWalletError) -> str:
    return f"{exc.status} {exc.reason or ''}: {exc.detail or exc}"[:1000]


def _refused(session: Session, *, row: GoogleClass | GoogleObject, exc: GoogleInvalid, digest: str,
             card_id: int | None, recipient: str, now: datetime) -> None:
    """Google refused this content of the class or object: it is not sent again until it changes. The outbox
    gets the refusal once; the same answer to a later content of the same resource only updates the row."""
    text = _refusal_text(exc)
    if text != row.refusal:
        note_refusal(session, exc=exc, card_id=card_id, recipient=recipient, now=now)
    row.refused_digest, row.refused_at, row.refusal = digest, now, text


def _accepted(row: GoogleClass | GoogleObject) -> None:
    row.refused_digest = row.refused_at = row.refusal = None


# --------------------------------------------------------------------------------------------------
# Class and object lifecycle


def ensure_class(session: Session, *, setup: GoogleSetup, program: Program, client: GoogleWalletClient | None,
                 now: datetime) -> GoogleClass:
    """Create or update the programme's class when what we would send differs from what we sent. The row is
    read first without a lock: when nothing changed (nearly always) concurrent senders do not queue on it."""
    stores = list(session.scalars(select(Store).where(Store.program_id == program.id, Store.closed_at.is_(None))))
    resource = class_resource(setup, program, stores)
    digest = _digest(resource)
    this = select(GoogleClass).where(GoogleClass.program_id == program.id)
    row = session.scalar(this)
    if row is not None and _settled(row, digest, client):
        return row
    if row is None:  # two senders may get here at once: the loser's insert does nothing, then both lock the row
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        session.execute(insert(GoogleClass).values(program_id=program.id, class_id=resource["id"])
                        .on_conflict_do_nothing())
    row = session.scalar(this.with_for_update().execution_options(populate_existing=True))
    assert row is not None
    if _settled(row, digest, client):
        return row
    if client is None:
        _record(session, method="POST", path="loyaltyClass", body=resource, card_id=None, recipient=resource["id"],
                now=now)
    else:
        try:
            client.insert_or_patch("loyaltyClass", resource)
        except GoogleInvalid as exc:  # a class Google had keeps serving its objects; a new one stays out
            _refused(session, row=row, exc=exc, digest=digest, card_id=None, recipient=resource["id"], now=now)
            session.flush()
            return row
        row.inserted_at = row.inserted_at or now
        _accepted(row)
    row.class_id, row.content_digest, row.synced_at = resource["id"], digest, now
    session.flush()
    return row


def _settled(row: GoogleClass, digest: str, client: GoogleWalletClient | None) -> bool:
    """Nothing to send: Google (or the outbox) has this content, or Google refused exactly this content."""
    if client is None:
        return row.content_digest == digest
    return (row.content_digest == digest and row.inserted_at is not None) or row.refused_digest == digest


def _object_row(session: Session, card: Card, setup: GoogleSetup) -> GoogleObject:
    return object_rows(session, setup=setup, cards=[card])[card.id]


def object_rows(session: Session, *, setup: GoogleSetup, cards: Iterable[Card]) -> dict[int, GoogleObject]:
    """The cards' object rows, locked (their notification budgets change under the lock), the missing ones
    created: one query and one flush for a whole batch of cards."""
    cards = list(cards)
    rows = {row.card_id: row for row in session.scalars(
        select(GoogleObject).where(GoogleObject.card_id.in_([c.id for c in cards])).with_for_update())}
    missing = [GoogleObject(card_id=c.id, object_id=object_id(setup, c), notifications=[])
               for c in cards if c.id not in rows]
    if missing:
        session.add_all(missing)
        session.flush()
        rows.update((row.card_id, row) for row in missing)
    return rows


def ensure_object(session: Session, *, setup: GoogleSetup, card: Card, client: GoogleWalletClient | None,
                  now: datetime, row: GoogleObject | None = None,
                  classes: dict[int, GoogleClass | None] | None = None) -> GoogleObject:
    """The card's object at Google (inserted at enrolment), and the class it needs first. A batch passes the
    card's ``row`` (``object_rows``) and a ``classes`` dict, so each programme's class is checked once (None
    for a programme whose class could not be checked just now). With a client, the row's ``inserted_at``
    stays None while the object waits: for its class (not at Google), or for a content Google takes."""
    row = row if row is not None else _object_row(session, card, setup)
    if row.inserted_at is not None or (client is None and row.synced_version > 0):
        return row  # at Google already, or its insert is in the outbox
    classes = {} if classes is None else classes
    if card.program_id not in classes:
        classes[card.program_id] = ensure_class(session, setup=setup, program=card.program, client=client, now=now)
    google_class = classes[card.program_id]
    resource = object_resource(setup, card)
    if client is None:
        _record(session, method="POST", path="loyaltyObject", body=resource, card_id=card.id,
                recipient=row.object_id, now=now)
    else:
        digest = _digest(resource)
        if google_class is None or google_class.inserted_at is None or row.refused_digest == digest:
            return row  # Google would answer 404 (no class) or refuse it again
        try:
            client.insert_or_patch("loyaltyObject", resource)
        except GoogleInvalid as exc:
            _refused(session, row=row, exc=exc, digest=digest, card_id=card.id, recipient=row.object_id, now=now)
            return row
        row.inserted_at = now
        _accepted(row)
    row.synced_version, row.synced_at = card.version, now
    return row


def _recent(row: GoogleObject, now: datetime) -> list[str]:
    since = now - NOTIFY_WINDOW
    return [t for t in row.notifications if datetime.fromisoformat(t) > since]


def may_notify(row: GoogleObject, now: datetime) -> bool:
    return len(_recent(row, now)) < NOTIFY_LIMIT


def _notified(row: GoogleObject, now: datetime) -> None:
    row.notifications = [*_recent(row, now), now.isoformat()]


def sync_card(session: Session, *, setup: GoogleSetup, card: Card, notify: bool,
              client: GoogleWalletClient | None, now: datetime, row: GoogleObject | None = None,
              classes: dict[int, GoogleClass] | None = None) -> bool:
    """Bring the card's object up to the card's version: a PATCH of the fields that follow the card,
    notifying only when asked and within the budget. Returns whether the phone was notified. ``row`` and
    ``classes``: see ``ensure_object``."""
    row = ensure_object(session, setup=setup, card=card, client=client, now=now, row=row, classes=classes)
    if row.synced_version >= card.version or (client is not None and row.inserted_at is None):
        return False  # up to date, or not at Google (waiting: see ensure_object)
    body = changing_fields(card)
    notify = notify and may_notify(row, now)
    if client is None:
        _record(session, method="PATCH", path=f"loyaltyObject/{row.object_id}",
                body={**body, **({"notifyPreference": "NOTIFY_ON_UPDATE"} if notify else {})},
                card_id=card.id, recipient=row.object_id, now=now)
    else:
        full = object_resource(setup, card)
        digest = _digest(full)
        if row.refused_digest == digest:
            return False  # Google refused exactly this: the card's next change is tried
        try:
            try:
                client.patch_or_insert("loyaltyObject", row.object_id,
                                       {**body, "notifyPreference": "NOTIFY_ON_UPDATE"} if notify else body,
                                       full=full)
            except GoogleQuotaExceeded:  # Google counted differently (another sender?): the update still goes
                notify = False
                client.patch_or_insert("loyaltyObject", row.object_id, body, full=full)
        except GoogleInvalid as exc:
            _refused(session, row=row, exc=exc, digest=digest, card_id=card.id, recipient=row.object_id, now=now)
            return False
        _accepted(row)
    if notify:
        _notified(row, now)
    row.synced_version, row.synced_at = card.version, now
    return notify


def send_message(session: Session, *, setup: GoogleSetup, card: Card, header: str, body: str, message_id: str,
                 client: GoogleWalletClient | None, now: datetime) -> str:
    """A campaign message on the card: ``TEXT_AND_NOTIFY`` within the notification budget, else ``TEXT``
    (shown on the card's details only). Keeps at most 10 messages on the object; a message whose id the
    object already holds is not added again, so a repeated send shows once. Returns the type used."""
    row = ensure_object(session, setup=setup, card=card, client=client, now=now)
    if client is not None and row.inserted_at is None:
        raise GoogleNotFound(f"the object of card {card.id} is not at Google yet (its class, or a refused content, "
                             "holds it back)", method="POST", path=f"/loyaltyObject/{row.object_id}/addMessage")
    kind = "TEXT_AND_NOTIFY" if may_notify(row, now) else "TEXT"
    message = {"header": header[:200], "body": body[:1000], "id": message_id, "messageType": kind}
    path = f"loyaltyObject/{row.object_id}"
    if client is None:
        _record(session, method="POST", path=f"{path}/addMessage", body={"message": message}, card_id=card.id,
                recipient=row.object_id, now=now)
    else:
        try:
            existing = client.get("loyaltyObject", row.object_id).get("messages", [])
        except GoogleNotFound:
            client.insert("loyaltyObject", object_resource(setup, card))
            existing = []
        if any(m.get("id") == message_id for m in existing):  # sent before a crash: once is enough
            return next(m.get("messageType", "TEXT") for m in existing if m.get("id") == message_id)
        if len(existing) >= MAX_MESSAGES:  # make room: the oldest go
            client.patch("loyaltyObject", row.object_id, {"messages": existing[-(MAX_MESSAGES - 1):]})
        try:
            client.add_message("loyaltyObject", row.object_id, message)
        except GoogleQuotaExceeded:
            kind = message["messageType"] = "TEXT"
            client.add_message("loyaltyObject", row.object_id, message)
    if kind == "TEXT_AND_NOTIFY":
        _notified(row, now)
    return kind


# --------------------------------------------------------------------------------------------------
# The save link


class SaveLinkTooLong(ValueError):
    """Even the smallest payload is over Google's limit (it would be cut off by browsers)."""


def save_link(session: Session, *, setup: GoogleSetup, card: Card, now: datetime) -> str:
    """The "Save to Google Wallet" URL: the object's id alone when Google has it, else the class (when
    Google does not have it either) and the object themselves, compact; always under 1800 characters."""
    if setup.account is None:
        raise ValueError("no Google service account to sign the save link")
    row = session.scalar(select(GoogleObject).where(GoogleObject.card_id == card.id))
    google_class = session.scalar(select(GoogleClass).where(GoogleClass.program_id == card.program_id))
    payloads: list[dict[str, Any]]
    if row is not None and row.inserted_at is not None:
        payloads = [{"loyaltyObjects": [{"id": row.object_id, "classId": class_id(setup, card.program)}]}]
    elif google_class is not None and google_class.inserted_at is not None:
        payloads = [{"loyaltyObjects": [object_resource(setup, card, compact=True)]}]
    else:
        payloads = [{"loyaltyClasses": [class_resource(setup, card.program, [], compact=length)],
                     "loyaltyObjects": [object_resource(setup, card, compact=True)]} for length in _COMPACT_NAMES]
    for payload in payloads:
        token = save_jwt(setup.account, payload, origins=list(setup.origins), now=int(now.timestamp()))
        if len(token) <= MAX_SAVE_JWT:
            return save_url(token)
    raise SaveLinkTooLong(f"the save link's JWT has {len(token)} characters, over Google's {MAX_SAVE_JWT}")
