"""The customer's own secret URLs (CONTRACTS.md §3 ``links``)."""

from __future__ import annotations

from app.models import Card


def card_links(card: Card, base_url: str) -> dict[str, str]:
    page = f"{base_url}/c/{card.page_token}"
    return {"page": page, "apple_pass": f"{page}/apple.pkpass", "google_save": f"{page}/google"}
