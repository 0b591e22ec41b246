"""The customer's own secret URLs (CONTRACTS.md §3 ``links``)."""

from __future__ import annotations

from app.models import Card


def card_links(card: Card, base_url: str) -> dict[str, str]:
    page = f"{base_url}/c/{card.page_token}"
    return {"page": page, "apple_pass": f"{page}/apple.pkpass", "google_save": f"{page}/google"}


def program_links(slug: str, base_url: str) -> dict[str, str]:
    """A programme's public URLs: the sign-up page and the counter poster with its QR code (CONTRACTS.md §5)."""
    join = f"{base_url.rstrip('/')}/join/{slug}"
    return {"join_url": join, "poster_url": f"{join}/poster"}
