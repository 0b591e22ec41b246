"""The one error vocabulary. Services raise these; the web layer renders them as RFC 9457
``application/problem+json`` (JSON endpoints) or an HTML page. No Flask import here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PROBLEM_BASE = "https://tallypass.dev/problems/"


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class AppError(Exception):
    status: int = 500
    code: str = "internal-error"
    title: str = "Internal error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        errors: list[FieldError] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        if code:
            self.code = code
        self.errors = errors or []
        self.extra = extra or {}

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.code

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = [e.as_dict() for e in self.errors]
        body.update(self.extra)
        return body


class BadRequest(AppError):
    status, code, title = 400, "bad-request", "Malformed request"


class Unauthorized(AppError):
    status, code, title = 401, "unauthorized", "Authentication failed"


class Forbidden(AppError):
    status, code, title = 403, "forbidden", "Not allowed"


class NotFound(AppError):
    status, code, title = 404, "not-found", "Not found"


class Conflict(AppError):
    status, code, title = 409, "conflict", "Conflict"


class PayloadTooLarge(AppError):
    status, code, title = 413, "payload-too-large", "Request body too large"


class InvalidInput(AppError):
    """Well-formed JSON whose fields fail validation."""

    status, code, title = 422, "validation-error", "Invalid input"


class RuleViolation(AppError):
    """A valid request the programme's rules do not allow (over the cap, more than the balance…)."""

    status, code, title = 422, "rule-violation", "Not allowed by the programme rules"


class RateLimited(AppError):
    status, code, title = 429, "rate-limited", "Too many requests"


class Unavailable(AppError):
    """A feature this deployment has not configured, or cannot reach right now."""

    status, code, title = 503, "unavailable", "Not available"
