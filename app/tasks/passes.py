"""Keeping the wallets in step with the cards, as outbox handlers.

- Apple: ``card.changed`` → APNs pushes to every device following the card. One query finds the
  devices of all the cards in a batch, and their pushes go out together over the one HTTP/2
  connection; the phone then asks the PassKit web service what changed and downloads the new pass.
- Google: ``customer.enrolled`` inserts the card's object, ``program.changed`` the programme's class,
  and ``card.changed`` PATCHes the object. A Google failure is logged and left to the resync job
  (each object knows the card version Google has), so it never holds back the Apple pushes of
  the same events. The class is made sure of in a savepoint of its own before its objects, so an
  object Google cannot take (now or ever) does not undo the class's record and send the class
  again before every later object. A body Google refuses is recorded by ``app.wallet.google`` (on
  the row and once in the channel outbox) and not sent again until it changes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from celery import shared_task
from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload

from app.bulk import flush_changed
from app.channels.apns import PushOutcome
from app.channels.google_wallet import GoogleConfigError, GoogleWalletError
from app.channels.registry import EXTENSION, Channels, ChannelUnavailable, GoogleWallet
from app.database import sessions
from app.db import utcnow
from app.models import Card, ChannelMessage, GoogleClass, GoogleObject, Program
from app.wallet import apple, google

log = logging.getLogger(__name__)


class PushRejected(Exception):
    """APNs refused our credentials or topic: an operator has to act (the event keeps this error)."""


class PushDeferred(Exception):
    """APNs stayed unavailable through the retries; the outbox sweeper tries again later."""


def _channels() -> Channels:
    return current_app.extensions[EXTENSION]


def push_changed_cards(session: Session, payloads: list[dict[str, Any]]) -> None:
    tokens = apple.push_tokens(session, card_ids=[p["card_id"] for p in payloads if "card_id" in p])
    if not tokens:
        return
    channels = _channels()
    wallet = channels.apple()  # ChannelUnavailable propagates: misconfiguration is the operator's to see
    if wallet is None or wallet.pusher is None:
        topic = wallet.pass_type_id if wallet else channels.settings.apple_pass_type_id
        now = utcnow()
        session.add_all(
            ChannelMessage(channel="apns", recipient=token, card_id=card_ids[0], created_at=now,
                           payload={"topic": topic, "body": {}, "card_ids": card_ids})
            for token, card_ids in tokens.items()
        )
        return
    results = wallet.pusher.push(list(tokens))
    gone = [r.token for r in results if r.outcome is PushOutcome.UNREGISTERED]
    rejected = [r for r in results if r.outcome is PushOutcome.REJECTED]
    failed = [r for r in results if r.outcome is PushOutcome.FAILED]
    forgotten = apple.forget_tokens(session, tokens=gone)
    log.info("apns: %d pushed for %d card(s), %d device(s) forgotten, %d refused, %d failed",
             len(results) - len(gone) - len(rejected) - len(failed), len(payloads), forgotten,
             len(rejected), len(failed))
    if rejected:
        first = rejected[0]
        raise PushRejected(f"APNs refused {len(rejected)} push(es): {first.status} {first.reason}; check the "
                           "Pass Type ID certificate (or token key) and TALLYPASS_APPLE_PASS_TYPE_ID")
    if failed:
        first = failed[0]
        raise PushDeferred(f"APNs did not take {len(failed)} push(es) after {first.attempts} attempts: "
                           f"{first.status} {first.reason}")


# -------------------------------------------------------------------------------------------- Google


def _google() -> GoogleWallet | None:
    """The Google channel, or None when its configuration is broken (logged when it was built): a
    broken Google set-up must not fail the events that Apple's pushes ride on."""
    try:
        return _channels().google()
    except ChannelUnavailable:
        return None


def _google_failed(what: str, exc: GoogleWalletError) -> None:
    if isinstance(exc, GoogleConfigError):
        log.error("google wallet: %s refused, an operator must act: %s", what, exc)
    else:
        log.warning("google wallet: %s failed, the resync job will retry: %s", what, exc)


@contextmanager
def _at_google(session: Session, what: str) -> Iterator[None]:
    """One Google call in its own savepoint: a failure undoes only that call's writes, is logged, and is left
    to the resync job (each object records the card version Google has)."""
    try:
        with session.begin_nested():
            yield
    except GoogleWalletError as exc:
        _google_failed(what, exc)


def _google_classes(session: Session, wallet: GoogleWallet, programs: Iterable[Program]
                    ) -> dict[int, GoogleClass | None]:
    """Each programme's class made sure of at Google, each in its own savepoint: what happens to the objects
    afterwards cannot undo it. None for a class Google could not be asked about now (logged; the resync job
    tries again), whose objects then wait."""
    classes: dict[int, GoogleClass | None] = {}
    for program in programs:
        if program.id in classes:
            continue
        classes[program.id] = None
        with _at_google(session, f"syncing the class of programme {program.id}"):
            classes[program.id] = google.ensure_class(session, setup=wallet.setup, program=program,
                                                      client=wallet.client, now=utcnow())
    return classes


def sync_google_cards(session: Session, payloads: list[dict[str, Any]]) -> None:
    """``card.changed`` batch: PATCH each changed card's object; tier changes and rewards notify."""
    changes: dict[int, set[str]] = {}
    for payload in payloads:
        if "card_id" in payload:
            changes.setdefault(payload["card_id"], set()).update(payload.get("reasons", []))
    wallet = _google()
    if not changes or wallet is None:
        return
    now = utcnow()
    cards = list(session.scalars(select(Card).where(Card.id.in_(sorted(changes))).order_by(Card.id).options(
        joinedload(Card.program), joinedload(Card.customer), joinedload(Card.tier))))
    rows = google.object_rows(session, setup=wallet.setup, cards=cards)
    # Without a client (outbox mode) nothing can fail half-way: no savepoint per card, and each programme's
    # class is checked once. With one, the classes go first, each in its own savepoint, then each card's calls
    # in theirs, undone alone when Google fails.
    classes: dict[int, GoogleClass | None] = (
        {} if wallet.client is None else _google_classes(session, wallet, (card.program for card in cards)))
    for card in cards:
        with _at_google(session, f"syncing card {card.id}") if wallet.client is not None else nullcontext():
            google.sync_card(session, setup=wallet.setup, card=card, client=wallet.client, now=now,
                             notify=bool(changes[card.id] & google.NOTIFY_REASONS), row=rows[card.id],
                             classes=classes)
    if wallet.client is None:  # the rows' new versions in one statement (no savepoint flushed them one by one)
        flush_changed(session, rows.values())


def create_google_object(session: Session, payload: dict[str, Any]) -> None:
    """``customer.enrolled``: the new card's object (and the programme's class) at Google."""
    card = session.get(Card, payload.get("card_id"))
    wallet = _google()
    if card is None or wallet is None:
        return
    classes = _google_classes(session, wallet, [card.program])
    # The object's row outside the savepoint: when Google fails, the row stays behind the card for the resync job.
    row = google.object_rows(session, setup=wallet.setup, cards=[card])[card.id]
    with _at_google(session, f"creating the object of card {card.id}"):
        google.ensure_object(session, setup=wallet.setup, card=card, client=wallet.client, now=utcnow(), row=row,
                             classes=classes)


def sync_google_class(session: Session, payload: dict[str, Any]) -> None:
    """``program.changed``: create or update the programme's class."""
    program = session.get(Program, payload.get("program_id"))
    wallet = _google()
    if program is None or wallet is None:
        return
    _google_classes(session, wallet, [program])


RESYNC_BATCH = 500


@shared_task
def resync_google() -> int:
    """Beat, every 5 minutes: first every programme's class (one Google has not got, or whose content changed
    without an event, e.g. after an upgrade), then the objects behind their card (a failed PATCH, an outage),
    oldest first, those whose last content Google refused last. Content Google refused is not sent again:
    checking it costs no request. Returns how many objects were brought up to date."""
    wallet = _google()
    if wallet is None or wallet.client is None:
        return 0
    done = 0
    with sessions().begin() as session:
        programs = session.scalars(select(Program).join(GoogleClass, GoogleClass.program_id == Program.id)
                                   .order_by(Program.id)).all()
        classes = _google_classes(session, wallet, programs)
        lagging = session.scalars(
            select(Card).join(GoogleObject, GoogleObject.card_id == Card.id)
            .join(GoogleClass, GoogleClass.program_id == Card.program_id)
            .where((GoogleObject.synced_version < Card.version) | GoogleObject.inserted_at.is_(None),
                   GoogleClass.inserted_at.is_not(None))  # the others wait for their class
            .order_by(GoogleObject.refused_digest.is_not(None), GoogleObject.synced_at).limit(RESYNC_BATCH)
        ).all()
        rows = google.object_rows(session, setup=wallet.setup, cards=lagging)
        for card in lagging:
            row = rows[card.id]
            try:
                with session.begin_nested():
                    google.sync_card(session, setup=wallet.setup, card=card, client=wallet.client, now=utcnow(),
                                     notify=False, row=row, classes=classes)
                done += row.inserted_at is not None and row.synced_version >= card.version
            except GoogleWalletError as exc:
                _google_failed(f"resyncing card {card.id}", exc)
                if isinstance(exc, GoogleConfigError):
                    break  # every other card would be refused the same way
    return done


# -------------------------------------------------------------------------------------------- Web push


def push_purchases_to_browsers(session: Session, payloads: list[dict[str, Any]]) -> None:
    """``card.changed`` batch: "+N points, balance M" to the browsers of customers who opted in."""
    from app.messaging import webpush

    earned = [p for p in payloads if "purchase" in p.get("reasons", []) and p.get("earned", 0) > 0]
    if not earned:
        return
    cards = {c.id: c for c in session.scalars(select(Card).where(Card.id.in_({p["card_id"] for p in earned}))
                                              .options(selectinload(Card.customer)))}
    pusher = _channels().web_push()
    now = utcnow()
    for payload in earned:
        card = cards.get(payload["card_id"])
        if card is None or not _consents(card.customer).get("push"):
            continue
        message = webpush.purchase_message(earned=payload["earned"], balance=payload["balance"],
                                           locale=card.customer.locale)
        webpush.notify_customer(session, customer_id=card.customer_id, payload=message, pusher=pusher, now=now,
                                urgency="normal", topic="balance", card_id=card.id)


def _consents(customer: Any) -> dict[str, bool]:
    return {c.channel: c.granted for c in customer.consents}
