"""All models, imported here so Alembic and ``Base.metadata`` see every table."""

from app.models.campaigns import (
    CAMPAIGN_CHANNELS,
    CAMPAIGN_STATES,
    DELIVERY_STATES,
    Campaign,
    CampaignVariant,
    Delivery,
)
from app.models.customer import CONSENT_CHANNELS, Card, Consent, Customer
from app.models.design import IMAGE_KINDS, JOB_STATES, Job, ProgramImage
from app.models.devices import AppleDevice, AppleRegistration, WebPushSubscription
from app.models.google import GoogleClass, GoogleObject
from app.models.imports import IMPORT_MODES, IMPORT_STATES, MemberImport
from app.models.ledger import LEDGER_KINDS, BonusEvent, LedgerEntry, Purchase, Refund, Reward
from app.models.merchant import (
    PENDING_PASSWORD,
    TOKEN_ROLES,
    USER_ROLES,
    ApiToken,
    DashboardSession,
    PosCredential,
    Store,
    User,
)
from app.models.messaging import PhoneCheck, SmsMessage, SmsOptOut, SmsStatusReport
from app.models.ops import AuditEvent, ChannelMessage, IdempotencyRecord, OutboxEvent
from app.models.people import LINK_PURPOSES, RecoveryCode, UserLink
from app.models.program import BONUS_PERIODS, CARD_KINDS, BonusRule, Program, Tier
from app.models.segments import SEGMENT_KINDS, Segment, SegmentMember

__all__ = [
    "AuditEvent",
    "CAMPAIGN_CHANNELS",
    "CAMPAIGN_STATES",
    "DELIVERY_STATES",
    "Campaign",
    "CampaignVariant",
    "Delivery",
    "BONUS_PERIODS",
    "CARD_KINDS",
    "CONSENT_CHANNELS",
    "LEDGER_KINDS",
    "TOKEN_ROLES",
    "LINK_PURPOSES",
    "PENDING_PASSWORD",
    "RecoveryCode",
    "UserLink",
    "USER_ROLES",
    "ApiToken",
    "AppleDevice",
    "AppleRegistration",
    "BonusEvent",
    "BonusRule",
    "Card",
    "ChannelMessage",
    "Consent",
    "Customer",
    "DashboardSession",
    "GoogleClass",
    "GoogleObject",
    "IdempotencyRecord",
    "IMAGE_KINDS",
    "IMPORT_MODES",
    "IMPORT_STATES",
    "JOB_STATES",
    "Job",
    "LedgerEntry",
    "MemberImport",
    "OutboxEvent",
    "PhoneCheck",
    "PosCredential",
    "Program",
    "ProgramImage",
    "Purchase",
    "Refund",
    "Reward",
    "SEGMENT_KINDS",
    "Segment",
    "SegmentMember",
    "SmsMessage",
    "SmsOptOut",
    "SmsStatusReport",
    "Store",
    "Tier",
    "User",
    "WebPushSubscription",
]
