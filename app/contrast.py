"""Colour contrast as WCAG 2.x defines it (https://www.w3.org/TR/WCAG21/#dfn-contrast-ratio): the relative
luminance of an sRGB colour, the contrast ratio of two colours (1:1 to 21:1), and the thresholds of level AA.

Used where a programme's colours meet: the card designer warns when the pass's text or labels are hard to read
on its background (and refuses a text colour that is nearly the background: ``UNREADABLE``), and the customer
pages choose black or white text wherever the brand colour is a background (``text_on``). No Flask here.
"""

from __future__ import annotations

AA_TEXT = 4.5  # WCAG 2.x 1.4.3, level AA, normal text
AA_LARGE_TEXT = 3.0  # level AA for large text (18 pt, or 14 pt bold) and 1.4.11 for parts of the interface
UNREADABLE = 3.0  # below this even the pass's large balance cannot be read: the designer refuses to save
BLACK, WHITE = "#000000", "#FFFFFF"


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def relative_luminance(colour: str) -> float:
    """0 (black) to 1 (white), for ``#RRGGBB``."""
    value = colour.lstrip("#")
    if len(value) != 6:
        raise ValueError(f"not a #RRGGBB colour: {colour!r}")
    r, g, b = (_channel(int(value[i:i + 2], 16)) for i in (0, 2, 4))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(first: str, second: str) -> float:
    """(L1 + 0.05) / (L2 + 0.05) with L1 the lighter; the same whichever order the colours come in."""
    a, b = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def text_on(background: str) -> str:
    """Black or white, whichever reads better on ``background`` (at least 4.58:1 whatever the colour)."""
    return BLACK if contrast_ratio(background, BLACK) >= contrast_ratio(background, WHITE) else WHITE


def readable(colour: str, background: str, *, minimum: float = AA_TEXT) -> str:
    """``colour`` if it passes ``minimum`` on ``background``, else black or white (``text_on``)."""
    return colour if contrast_ratio(colour, background) >= minimum else text_on(background)


def ratio_text(ratio: float) -> str:
    """A ratio as people write it, rounded down so a failing ratio never shows as passing: "3.84:1"."""
    return f"{int(ratio * 100) / 100:.2f}:1"
