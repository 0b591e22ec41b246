"""API tokens over the API (admin): list, create (the token is in that answer only), revoke.

Named api_tokens, not tokens: a submodule `tokens` would replace `app.web.api.tokens` (the
``app.merchants.tokens`` service the package authenticates with) once imported."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from flask import g
from pydantic import Field

from app.database import get_session
from app.db import utcnow
from app.errors import Conflict
from app.field_types import line
from app.merchants import tokens
from app.web.api import api_actor, bp
from app.web.api._models import In, Out
from app.web.api.openapi import operation

TAG = "tokens"


class TokenIn(In):
    name: line(120) = Field(description="What will use the token, e.g. \"CRM sync\": one printable "  # type: ignore[valid-type]
                                        "line.")
    role: Literal["viewer", "marketer", "admin"] = "marketer"


class TokensQuery(In):
    include_revoked: bool = Field(default=True, description="false: only tokens that still work.")


class TokenOut(Out):
    """An API token (never the token itself)."""

    id: int
    name: str
    prefix: str = Field(description="The token's first characters, to tell tokens apart.")
    role: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenListOut(Out):
    """Every API token, live ones first, newest first."""

    items: list[TokenOut]


class IssuedTokenOut(TokenOut):
    """A new token: ``token`` is in this answer only (only its hash is stored)."""

    token: str


@bp.get("/tokens")
@operation(summary="API tokens", tag=TAG, query=TokensQuery, responses={200: TokenListOut}, role="admin")
def list_tokens(query: TokensQuery) -> TokenListOut:
    rows = [row for row in tokens.all_tokens(get_session()) if query.include_revoked or row.revoked_at is None]
    return TokenListOut(items=[TokenOut.model_validate(row) for row in rows])


@bp.post("/tokens")
@operation(summary="Create an API token; the token is in this answer only", tag=TAG, body=TokenIn,
           responses={201: IssuedTokenOut}, role="admin")
def create_token(body: TokenIn) -> tuple[IssuedTokenOut, int]:
    db = get_session()
    row, token = tokens.issue(db, name=body.name, role=body.role, now=utcnow(),
                              actor=api_actor())
    out = IssuedTokenOut(**TokenOut.model_validate(row).model_dump(), token=token)
    db.commit()
    return out, 201


@bp.post("/tokens/<int:token_id>/revoke")
@operation(summary="Revoke an API token", tag=TAG, responses={200: TokenOut}, role="admin",
           problems={409: "The token is the one making this request."})
def revoke_token(token_id: int) -> TokenOut:
    if token_id == g.api_token.id:
        raise Conflict("a token cannot revoke itself; use another admin token or the dashboard",
                       code="token-revokes-itself")
    db = get_session()
    row = tokens.revoke(db, token_id=token_id, actor=api_actor(), now=utcnow())
    out = TokenOut.model_validate(row)
    db.commit()
    return out
