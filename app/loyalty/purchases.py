"""Recording a POS purchase: on PostgreSQL the everyday case in three SQL statements, otherwise
``ledger.record_purchase``.

``ledger.record_purchase`` is the reference implementation and handles every case on every database.
Through the ORM it costs a dozen round trips and most of the web worker's CPU (``bench/pos.py``
measured 6.8 ms per purchase, two thirds of it in SQLAlchemy's unit of work), which kept the POS
API well under its goal of 300 purchases/s on two cores. This module does the common case, a
points card earning and perhaps redeeming, with the same rules (``rules.plan_purchase``,
``rules.tier_for``, ``rules.consume_fifo``, ``rules.expiry_for``) in three statements:

1. lock the card row (``FOR UPDATE OF card``) and read its programme and tiers;
2. read, in a fresh snapshot taken after the lock, whether the receipt exists and the open lots
   (a concurrent purchase that held the lock has committed by now and is seen);
3. write everything in one statement: the purchase, its ledger entries, the lots it drew on, the
   card, and the ``card.changed`` outbox event.

Anything else is left, before anything is written, to the reference path in the same transaction:
stamp programmes, a receipt already recorded (replay or 409), a threshold reward to issue, a card
that is not found. ``tests/integration/test_purchase_paths.py`` runs the same
purchases through both paths and compares every row they write.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from app import outbox
from app.db import utcnow
from app.loyalty import ledger, rules
from app.merchants.stores import StoreLike
from app.models import Card

_CARD = """
SELECT c.id, c.barcode, c.balance, c.version, c.tier_id, c.window_spend,
       p.kind, p.point_value, p.redeem_cap_percent, p.tier_window_days, p.expiry_days, p.reward_threshold,
       p.max_purchase_amount,
       (SELECT coalesce(json_agg(json_build_object('id', t.id, 'name', t.name,
                                                   'spend', t.qualifying_spend::text,
                                                   'earn', t.earn_percent::text) ORDER BY t.id), '[]')
          FROM tier t WHERE t.program_id = p.id) AS tiers
  FROM card c JOIN program p ON p.id = c.program_id {join}
 WHERE c.program_id = :program_id AND c.status = 'active' AND {match}
   FOR UPDATE OF c
"""
_BY_BARCODE = text(_CARD.format(join="", match="c.barcode = :ref"))
_BY_PHONE = text(_CARD.format(join="JOIN customer cu ON cu.id = c.customer_id", match="cu.phone = :ref"))

_STATE = text("""
SELECT EXISTS (SELECT 1 FROM purchase WHERE store_id = :store_id AND receipt_id = :receipt_id) AS recorded,
       CASE WHEN :redeem > 0 THEN
         (SELECT coalesce(json_agg(json_build_object('id', id, 'remaining', remaining, 'expires_at', expires_at)),
                          '[]')
            FROM ledger_entry WHERE card_id = :card_id AND remaining > 0)
       END AS lots
""")

_WRITE = text("""
WITH p AS (
  INSERT INTO purchase (store_id, receipt_id, card_id, amount, redeemed_points, discount, amount_due,
                        earned_points, stamped, refunded_amount, items, occurred_at, created_at)
  VALUES (:store_id, :receipt_id, :card_id, :amount, :redeemed, :discount, :amount_due,
          :earned, false, 0, CAST(:items AS json), :occurred_at, :now)
  RETURNING id
), redeem AS (
  INSERT INTO ledger_entry (card_id, kind, points, remaining, expires_at, purchase_id, reason, actor, created_at)
  SELECT :card_id, 'redeem', -CAST(:redeemed AS integer), NULL, NULL, p.id, '', :actor, :now FROM p
   WHERE CAST(:redeemed AS integer) > 0
), earn AS (
  INSERT INTO ledger_entry (card_id, kind, points, remaining, expires_at, purchase_id, reason, actor, created_at)
  SELECT :card_id, 'earn', :earned, :earned, :expires_at, p.id, '', :actor, :now FROM p
   WHERE CAST(:earned AS integer) > 0
), lots AS (
  UPDATE ledger_entry l SET remaining = l.remaining - d.taken
    FROM json_to_recordset(CAST(:draws AS json)) AS d(id bigint, taken integer)
   WHERE l.id = d.id AND l.card_id = :card_id
), touched AS (
  UPDATE card SET balance = :balance, tier_id = :tier_id, window_spend = window_spend + :window_add,
                  lifetime_spend = lifetime_spend + :amount, version = :version, updated_at = :now
   WHERE id = :card_id
), event AS (
  INSERT INTO outbox_event (topic, payload, created_at, attempts)
  SELECT :topic, CAST(CAST(:payload AS jsonb) || jsonb_build_object('purchase_id', p.id) AS json), :now, 0 FROM p
  RETURNING id
)
SELECT p.id AS purchase_id, event.id AS event_id FROM p, event
""")


@dataclass(frozen=True)
class CardState:
    barcode: str
    balance: int
    tier: str | None
    stamps: int | None = None  # stamp programmes only
    stamps_required: int | None = None

    @classmethod
    def of(cls, card: Card) -> CardState:
        stamps = card.program.kind == "stamps"
        return cls(barcode=card.barcode, balance=card.balance, tier=card.tier.name if card.tier else None,
                   stamps=card.stamps if stamps else None,
                   stamps_required=card.program.stamps_required if stamps else None)


@dataclass(frozen=True)
class IssuedReward:
    kind: str
    name: str
    code: str
    value: Decimal | None  # of one
    quantity: int = 1


@dataclass(frozen=True)
class Recorded:
    """What the POS answer needs, without loading ORM objects back."""

    purchase_id: int
    earned: int
    redeemed: int
    discount: Decimal
    amount_due: Decimal
    card: CardState
    rewards: list[IssuedReward] = field(default_factory=list)
    replayed: bool = False


def record(
    session: Session, *, store: StoreLike, barcode: str | None, phone: str | None, receipt_id: str,
    amount: Decimal, redeem_points: int = 0, occurred_at: datetime | None = None,
    items: list[dict[str, Any]] | None = None, actor: str = "", now: datetime | None = None,
) -> Recorded:
    """Record a purchase on the card with this barcode (or its holder's phone): see
    ``ledger.record_purchase`` for the rules, the replays and the refusals.

    :raise NotFound: no such active card in the store's programme.
    """
    now = now or utcnow()
    fast = _record_sql(session, store_id=store.id, program_id=store.program_id, barcode=barcode, phone=phone,
                       receipt_id=receipt_id, amount=amount, redeem_points=redeem_points,
                       occurred_at=occurred_at, items=items, actor=actor, now=now)
    if fast is not None:
        return fast
    card = ledger.find_card(session, program_id=store.program_id, barcode=barcode, phone=phone, lock=True)
    result = ledger.record_purchase(session, store=store, card=card, receipt_id=receipt_id, amount=amount,
                                    redeem_points=redeem_points, occurred_at=occurred_at, items=items,
                                    actor=actor, now=now)
    p = result.purchase
    return Recorded(
        purchase_id=p.id, earned=p.earned_points, redeemed=p.redeemed_points, discount=p.discount,
        amount_due=p.amount_due, card=CardState.of(result.card), replayed=result.replayed,
        rewards=[IssuedReward(kind=r.kind, name=r.name, code=r.code, value=r.value, quantity=r.quantity)
                 for r in result.rewards],
    )


@dataclass(frozen=True)
class _Tier:
    id: int
    name: str
    spend: Decimal
    earn: Decimal


def _record_sql(
    session: Session, *, store_id: int, program_id: int, barcode: str | None, phone: str | None,
    receipt_id: str, amount: Decimal, redeem_points: int, occurred_at: datetime | None,
    items: list[dict[str, Any]] | None, actor: str, now: datetime,
) -> Recorded | None:
    """Record the purchase if it is the everyday case on PostgreSQL; None (having written nothing) otherwise.

    :raise RuleViolation: the same refusals as ``ledger.record_purchase`` (negative amount, not
        enough points, over the cap), before anything is written.
    """
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        return None
    stmt, ref = (_BY_BARCODE, barcode) if barcode is not None else (_BY_PHONE, phone)
    card = conn.execute(stmt, {"program_id": program_id, "ref": ref}).mappings().one_or_none()
    if card is None or card["kind"] != "points":
        return None
    state = conn.execute(_STATE, {"store_id": store_id, "receipt_id": receipt_id, "redeem": redeem_points,
                                  "card_id": card["id"]}).one()
    if state.recorded:
        return None
    rules.check_amount(amount, card["max_purchase_amount"])

    tiers = [_Tier(t["id"], t["name"], Decimal(t["spend"]), Decimal(t["earn"])) for t in card["tiers"]]
    current = next((t for t in tiers if t.id == card["tier_id"]), None)
    plan = rules.plan_purchase(
        amount=amount, redeem_points=redeem_points, balance=card["balance"],
        earn_percent=current.earn if current is not None else Decimal("0"),
        cap_percent=card["redeem_cap_percent"], point_value=card["point_value"],
    )
    balance = card["balance"] - plan.redeemed + plan.earned
    if rules.threshold_rewards(balance, card["reward_threshold"]):
        return None

    draws: list[dict[str, int]] = []
    if plan.redeemed:
        lots = [rules.Lot(id=lot["id"], remaining=lot["remaining"],
                          expires_at=datetime.fromisoformat(lot["expires_at"]) if lot["expires_at"] else None)
                for lot in state.lots]
        draws = [{"id": lot_id, "taken": taken} for lot_id, taken in rules.consume_fifo(lots, plan.redeemed)]

    occurred_at = occurred_at or now
    window_add = amount if occurred_at >= now - timedelta(days=card["tier_window_days"]) else Decimal("0")
    tier = rules.tier_for(card["window_spend"] + window_add, [(t, t.spend) for t in tiers])
    reasons = ["purchase"] if (tier.id if tier else None) == card["tier_id"] else ["purchase", "tier"]
    version = card["version"] + 1
    # purchase_id is added by the INSERT, which is the first to know it
    payload = ledger.card_changed(card_id=card["id"], version=version, balance=balance, reasons=reasons,
                                  earned=plan.earned, redeemed=plan.redeemed)
    row = conn.execute(_WRITE, {
        "store_id": store_id, "receipt_id": receipt_id, "card_id": card["id"], "amount": amount,
        "redeemed": plan.redeemed, "discount": plan.discount, "amount_due": plan.amount_due,
        "earned": plan.earned, "items": json.dumps(items),  # None → JSON null, as the ORM stores it
        "occurred_at": occurred_at, "now": now, "actor": actor,
        "expires_at": rules.expiry_for(now, card["expiry_days"]), "draws": json.dumps(draws),
        "balance": balance, "tier_id": tier.id if tier else None, "window_add": window_add,
        "version": version, "topic": ledger.CARD_CHANGED, "payload": json.dumps(payload),
    }).one()
    outbox.track(session, row.event_id)
    return Recorded(
        purchase_id=row.purchase_id, earned=plan.earned, redeemed=plan.redeemed, discount=plan.discount,
        amount_due=plan.amount_due, card=CardState(barcode=card["barcode"], balance=balance,
                                                   tier=tier.name if tier else None),
    )
