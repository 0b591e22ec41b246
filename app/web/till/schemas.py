"""The bodies of the till's JSON calls, validated at the edge (pydantic v2)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from app.web.schemas import CardRef, Ident, Money, Points, PositiveMoney, _Body

StoreId = Annotated[int, Field(strict=True, ge=1, le=2**31 - 1)]
# One attempt at recording something, made by the browser when the cashier confirms and sent again on every
# retry of that attempt (a UUID; the receipt id is made from it).
Attempt = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]


class LookupIn(CardRef):
    store: StoreId
    amount: Money | None = None


class QuoteIn(CardRef):
    store: StoreId
    amount: Money
    redeem_points: Points = 0


class PurchaseIn(QuoteIn):
    attempt: Attempt


class RefundIn(_Body):
    store: StoreId
    receipt_id: Ident
    amount: PositiveMoney
    attempt: Attempt
