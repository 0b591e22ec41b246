"""Telling phones that a card changed: APNs pushes to every device following the card.

Runs as the outbox's batch handler for ``card.changed``: one query finds the devices of all the
cards in a batch, and their pushes go out together over the one HTTP/2 connection. The phone then
asks the PassKit web service what changed and downloads the new pass.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app
from sqlalchemy.orm import Session

from app.channels.apns import PushOutcome
from app.channels.registry import EXTENSION, Channels
from app.db import utcnow
from app.models import ChannelMessage
from app.wallet import apple

log = logging.getLogger(__name__)


class PushRejected(Exception):
    """APNs refused our credentials or topic: an operator has to act (the event keeps this error)."""


class PushDeferred(Exception):
    """APNs stayed unavailable through the retries; the outbox sweeper tries again later."""


def push_changed_cards(session: Session, payloads: list[dict[str, Any]]) -> None:
    tokens = apple.push_tokens(session, card_ids=[p["card_id"] for p in payloads if "card_id" in p])
    if not tokens:
        return
    channels: Channels = current_app.extensions[EXTENSION]
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
