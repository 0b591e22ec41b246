"""Request bodies, validated at the edge with pydantic v2. Nothing reaches a service unvalidated."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from app.models import CONSENT_CHANNELS
from app.numbers import ascii_digits
from app.phones import normalise_phone

MAX_AMOUNT = Decimal("9999999999.99")


def _decimal_string(value: Any) -> Any:
    if isinstance(value, bool | float):
        raise ValueError('send amounts as decimal strings, e.g. "12.50"')
    if isinstance(value, str):
        value = ascii_digits(value).strip()
        if not re.fullmatch(r"-?[0-9]{1,10}(\.[0-9]{1,2})?", value):
            raise ValueError('must be a decimal string with at most 2 decimals, e.g. "12.50"')
    return value


Money = Annotated[Decimal, BeforeValidator(_decimal_string), Field(ge=0, le=MAX_AMOUNT)]
PositiveMoney = Annotated[Decimal, BeforeValidator(_decimal_string), Field(gt=0, le=MAX_AMOUNT)]
Ident = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
Barcode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
Points = Annotated[int, Field(strict=True, ge=0, le=10_000_000)]




class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=2000)


class _PhoneMixin(_Body):
    @field_validator("phone", mode="after", check_fields=False)
    @classmethod
    def _phone(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        region = (info.context or {}).get("phone_region")
        return normalise_phone(value, region)


class CardRef(_PhoneMixin):
    """Identifies a card by its barcode or its holder's phone (exactly one)."""

    card: Barcode | None = None
    phone: Annotated[str, StringConstraints(max_length=32)] | None = None

    @model_validator(mode="after")
    def _one_ref(self) -> CardRef:
        if (self.card is None) == (self.phone is None):
            raise ValueError('give exactly one of "card" (the barcode) or "phone"')
        return self


class EnrolIn(_PhoneMixin):
    phone: Annotated[str, StringConstraints(min_length=3, max_length=32)]
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=120)] = ""
    email: Annotated[str, StringConstraints(strip_whitespace=True, max_length=254)] | None = None
    birthday: date | None = None
    consents: dict[str, bool] = Field(default_factory=dict)
    referral_code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=16)] | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
            raise ValueError("is not an e-mail address")
        return value.lower()

    @field_validator("birthday")
    @classmethod
    def _birthday(cls, value: date | None) -> date | None:
        if value is not None and not (date(1900, 1, 1) <= value <= date.today()):
            raise ValueError("must be a date between 1900-01-01 and today")
        return value

    @field_validator("consents")
    @classmethod
    def _channels(cls, value: dict[str, bool]) -> dict[str, bool]:
        unknown = sorted(set(value) - set(CONSENT_CHANNELS))
        if unknown:
            raise ValueError(f"unknown channel(s) {', '.join(unknown)}; use {', '.join(CONSENT_CHANNELS)}")
        return value


class PurchaseIn(CardRef):
    receipt_id: Ident
    amount: Money
    redeem_points: Points = 0
    occurred_at: datetime | None = None
    items: list[dict[str, Any]] | None = Field(default=None, max_length=500)

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must include a time zone offset, e.g. 2026-11-23T10:15:00+02:00")
        return value


class AmountQuery(_Body):
    """``GET /cards/<barcode>?amount=…``: how many points may pay for this amount."""

    amount: Money


class RefundIn(_Body):
    refund_id: Ident
    receipt_id: Ident
    amount: PositiveMoney


class EventIn(CardRef):
    event_id: Ident
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
