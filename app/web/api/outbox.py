"""The outbox over the API: what channels without credentials recorded instead of sending (outbox mode), and
the requests Google Wallet refused (``refusal`` set: Google's answer; the payload is the refused request)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field
from sqlalchemy import Select, select

from app.database import get_session
from app.db import count_rows
from app.models import ChannelMessage
from app.web.api import bp
from app.web.api._models import In, Out
from app.web.api.openapi import operation

TAG = "outbox"
CHANNELS = ("apns", "google_wallet", "web_push", "sms")


class OutboxQuery(In):
    channel: Literal["apns", "google_wallet", "web_push", "sms"] | None = None
    page: int = Field(default=1, ge=1, le=100_000)
    per_page: int = Field(default=50, ge=1, le=100)


class RefusalOut(Out):
    """Google's answer to a request it refused as invalid; Tallypass does not send the same content again."""

    status: int | None = Field(description="HTTP status of Google's answer (400 and the like).")
    reason: str | None = Field(description="Google's reason code, e.g. `invalid`.")
    message: str = Field(description="Google's own message, e.g. `Invalid JSON payload received. …`.")


class MessageOut(Out):
    id: int
    channel: str
    recipient: str
    card_id: int | None
    payload: dict[str, Any]
    created_at: datetime
    refusal: RefusalOut | None = Field(
        default=None, description="Set when the service refused the request in `payload` (Google Wallet).")

    @classmethod
    def of(cls, message: ChannelMessage) -> MessageOut:
        refused = message.payload.get("refused")
        return cls.model_validate(message).model_copy(
            update={"refusal": RefusalOut.model_validate(refused) if isinstance(refused, dict) else None})


class OutboxOut(Out):
    """A page of recorded messages, newest first."""

    items: list[MessageOut]
    page: int
    per_page: int
    total: int


def messages(channel: str | None = None) -> Select[tuple[ChannelMessage]]:
    query = select(ChannelMessage)
    if channel:
        query = query.where(ChannelMessage.channel == channel)
    return query.order_by(ChannelMessage.created_at.desc(), ChannelMessage.id.desc())


@bp.get("/outbox")
@operation(summary="Messages recorded instead of sent (channels without credentials) and requests Google Wallet "
                   "refused, newest first", tag=TAG,
           query=OutboxQuery, responses={200: OutboxOut}, role="marketer")
def list_outbox(query: OutboxQuery) -> OutboxOut:
    db = get_session()
    rows = messages(query.channel)
    total = count_rows(db, rows)
    page = db.scalars(rows.limit(query.per_page).offset((query.page - 1) * query.per_page))
    return OutboxOut(page=query.page, per_page=query.per_page, total=total,
                     items=[MessageOut.of(m) for m in page])
