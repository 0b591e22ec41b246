"""Removing a programme and everything it made (``flask --app app demo --remove`` uses it for the demo): its
customers (those with no card in another programme), cards, ledger, purchases and refunds, stores and their POS
keys, campaigns and their deliveries, segments, wallet registrations and devices left with no pass, messages,
outbox rows, jobs, imports and the audit rows that point at any of them. Another programme is untouched, and so
are customers who also hold one of its cards (only their card here goes).

Set-based statements in foreign-key order rather than ORM cascades: the demo has hundreds of customers and
thousands of ledger rows, and SQLite only cascades when asked to. Flushes; the caller commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, delete, literal, or_, select, update
from sqlalchemy.orm import Session

from app.db import utcnow
from app.merchants import audit
from app.models import (
    AppleDevice,
    AppleRegistration,
    AuditEvent,
    BonusEvent,
    BonusRule,
    Campaign,
    CampaignVariant,
    Card,
    ChannelMessage,
    Consent,
    Customer,
    Delivery,
    GoogleClass,
    GoogleObject,
    IdempotencyRecord,
    Job,
    LedgerEntry,
    MemberImport,
    OutboxEvent,
    PhoneCheck,
    PosCredential,
    Program,
    ProgramImage,
    Purchase,
    Refund,
    Reward,
    Segment,
    SegmentMember,
    SmsMessage,
    SmsOptOut,
    SmsStatusReport,
    Store,
    Tier,
    User,
    WebPushSubscription,
)
from app.models.merchant import user_store


def _targets(kind: str, column: Any, *where: Any) -> Any:
    """``"<kind>:<id>"`` for every row's id, as an audit event's target names it."""
    return select(literal(f"{kind}:") + cast(column, String)).where(*where)


def remove_program(session: Session, *, program: Program, actor: User | str | None = None,
                   now: datetime | None = None) -> dict[str, int]:
    """Delete ``program`` and what it made; how many rows went, per table. Audited (without pointing at the
    programme, which is gone) when an actor is given."""
    pid, slug = program.id, program.slug
    session.flush()
    cards = select(Card.id).where(Card.program_id == pid).scalar_subquery()
    stores = select(Store.id).where(Store.program_id == pid).scalar_subquery()
    campaigns = select(Campaign.id).where(Campaign.program_id == pid).scalar_subquery()
    segments = select(Segment.id).where(Segment.program_id == pid).scalar_subquery()
    purchases = select(Purchase.id).where(or_(Purchase.card_id.in_(cards), Purchase.store_id.in_(stores)))
    # Customers of this programme only: a customer holding a card elsewhere stays (only the card here goes).
    elsewhere = select(Card.customer_id).where(Card.program_id != pid)
    customer_ids = list(session.scalars(select(Card.customer_id).where(Card.program_id == pid,
                                                                          Card.customer_id.not_in(elsewhere))))
    phones = [p for p in session.scalars(select(Customer.phone).where(Customer.id.in_(customer_ids))) if p]
    devices = list(session.scalars(select(AppleRegistration.device_id).where(AppleRegistration.card_id.in_(cards))
                                   .distinct()))
    texts = select(SmsMessage.provider_sid).where(SmsMessage.customer_id.in_(customer_ids),
                                                  SmsMessage.provider_sid.is_not(None))
    counts: dict[str, int] = {}

    def gone(table: str, statement: Any) -> None:
        counts[table] = counts.get(table, 0) + (session.execute(statement).rowcount or 0)

    def payload_in(key: str, ids: Any) -> Any:
        return OutboxEvent.payload[key].as_integer().in_(ids)

    gone("outbox_event", delete(OutboxEvent).where(or_(
        payload_in("program_id", [pid]), payload_in("card_id", cards), payload_in("customer_id", customer_ids),
        payload_in("campaign_id", campaigns))).execution_options(synchronize_session=False))
    gone("audit_event", delete(AuditEvent).where(or_(
        AuditEvent.target.in_([f"program:{pid}", f"program:{slug}"]),  # (exports name the programme by slug)
        AuditEvent.target.in_(_targets("card", Card.id, Card.program_id == pid)),
        AuditEvent.target.in_(_targets("store", Store.id, Store.program_id == pid)),
        AuditEvent.target.in_(_targets("campaign", Campaign.id, Campaign.program_id == pid)),
        AuditEvent.target.in_(_targets("segment", Segment.id, Segment.program_id == pid)),
        AuditEvent.target.in_(_targets("tier", Tier.id, Tier.program_id == pid)),
        AuditEvent.target.in_(_targets("bonus_rule", BonusRule.id, BonusRule.program_id == pid)),
        AuditEvent.target.in_([f"customer:{c}" for c in customer_ids]),
    )).execution_options(synchronize_session=False))
    gone("reward", delete(Reward).where(Reward.card_id.in_(cards)))
    gone("ledger_entry", delete(LedgerEntry).where(LedgerEntry.card_id.in_(cards)))
    gone("bonus_event", delete(BonusEvent).where(or_(BonusEvent.card_id.in_(cards), BonusEvent.store_id.in_(stores))))
    gone("refund", delete(Refund).where(or_(Refund.store_id.in_(stores), Refund.purchase_id.in_(purchases))))
    gone("purchase", delete(Purchase).where(or_(Purchase.card_id.in_(cards), Purchase.store_id.in_(stores))))
    gone("idempotency_record", delete(IdempotencyRecord).where(IdempotencyRecord.store_id.in_(stores)))
    gone("channel_message", delete(ChannelMessage).where(ChannelMessage.card_id.in_(cards)))
    gone("delivery", delete(Delivery).where(or_(Delivery.card_id.in_(cards), Delivery.campaign_id.in_(campaigns))))
    gone("campaign_variant", delete(CampaignVariant).where(CampaignVariant.campaign_id.in_(campaigns)))
    gone("campaign", delete(Campaign).where(Campaign.program_id == pid))
    gone("segment_member", delete(SegmentMember).where(or_(SegmentMember.segment_id.in_(segments),
                                                           SegmentMember.customer_id.in_(customer_ids))))
    gone("segment", delete(Segment).where(Segment.program_id == pid))
    gone("apple_registration", delete(AppleRegistration).where(AppleRegistration.card_id.in_(cards)))
    gone("apple_device", delete(AppleDevice).where(
        AppleDevice.id.in_(devices), AppleDevice.id.not_in(select(AppleRegistration.device_id))))
    gone("google_object", delete(GoogleObject).where(GoogleObject.card_id.in_(cards)))
    gone("google_class", delete(GoogleClass).where(GoogleClass.program_id == pid))
    gone("card", delete(Card).where(Card.program_id == pid))
    gone("sms_status_report", delete(SmsStatusReport).where(SmsStatusReport.provider_sid.in_(texts)))
    gone("sms_message", delete(SmsMessage).where(SmsMessage.customer_id.in_(customer_ids)))
    gone("sms_opt_out", delete(SmsOptOut).where(SmsOptOut.phone.in_(phones)))
    gone("phone_check", delete(PhoneCheck).where(PhoneCheck.program_id == pid))
    gone("consent", delete(Consent).where(Consent.customer_id.in_(customer_ids)))
    gone("web_push_subscription", delete(WebPushSubscription).where(WebPushSubscription.customer_id.in_(customer_ids)))
    session.execute(update(Customer).where(Customer.referred_by_id.in_(customer_ids)).values(referred_by_id=None))
    session.execute(update(Customer).where(Customer.home_store_id.in_(stores)).values(home_store_id=None))
    gone("customer", delete(Customer).where(Customer.id.in_(customer_ids)))
    gone("user_store", delete(user_store).where(user_store.c.store_id.in_(stores)))
    gone("pos_credential", delete(PosCredential).where(PosCredential.store_id.in_(stores)))
    gone("store", delete(Store).where(Store.program_id == pid))
    for model in (Job, MemberImport, ProgramImage, Tier, BonusRule):
        gone(model.__tablename__, delete(model).where(model.program_id == pid))
    gone("program", delete(Program).where(Program.id == pid))
    session.expire_all()  # ORM objects of the rows above are stale now
    counts = {table: n for table, n in counts.items() if n}
    if actor is not None:
        audit.record(session, actor=actor, action="program.removed", now=now or utcnow(), target=None,
                     details={"slug": slug, "removed": counts})
    return counts
