"""The strip of a stamp card's Apple pass with its stamps drawn on it, as merchants expect: one circle per stamp
the reward needs, the stamps earned filled, in the pass's own text colour over its strip (the programme's upload
or the default), at Apple's three scales.

Sizes per ../shared/reference/apple_wallet.md §1.5: the store card's strip is 375 × 123 pt. Up to 10 stamps sit in
one row, more in two (at most 30 are drawn; a programme needing more shows "n / N" in the header only). The
images depend only on (base strip, earned, required, colours), so each is drawn once per process.
"""

from __future__ import annotations

import io
import math
from functools import lru_cache

from PIL import Image, ImageDraw

from app.wallet.images import BOXES, SCALES, file_name

MAX_DRAWN = 30
PER_ROW = 10


def _rgb(hex_color: str) -> tuple[int, int, int]:
    value = hex_color.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def layout(required: int, width: float, height: float) -> list[tuple[float, float, float]]:
    """The centre and radius of each stamp, in pixels of a ``width`` × ``height`` strip: rows of at most 10,
    centred, with a margin of half a stamp's gap around them."""
    rows = 1 if required <= PER_ROW else math.ceil(required / PER_ROW)
    per_row = math.ceil(required / rows)
    cell = min(width / (per_row + 0.5), height / (rows + 0.3))
    radius = cell * 0.38
    top = (height - rows * cell) / 2
    spots = []
    for n in range(required):
        row, col = divmod(n, per_row)
        in_row = min(per_row, required - row * per_row)
        left = (width - in_row * cell) / 2
        spots.append((left + (col + 0.5) * cell, top + (row + 0.5) * cell, radius))
    return spots


@lru_cache(maxsize=512)
def _draw(base: bytes | None, scale: int, earned: int, required: int, ink: str, background: str) -> bytes:
    box = BOXES["strip"]
    size = (box.width * scale, box.height * scale)
    if base:
        strip = Image.open(io.BytesIO(base)).convert("RGBA")
        if strip.size != size:
            strip = strip.resize(size, Image.Resampling.LANCZOS)
    else:
        strip = Image.new("RGBA", size, (*_rgb(background), 255))
    # Drawn 4× larger and scaled down: smooth circle edges without an anti-aliasing dependency.
    big = 4
    layer = Image.new("RGBA", (size[0] * big, size[1] * big), (0, 0, 0, 0))
    pen = ImageDraw.Draw(layer)
    colour, paper = (*_rgb(ink), 255), (*_rgb(background), 255)
    for n, (x, y, r) in enumerate(layout(required, size[0] * big, size[1] * big)):
        outline = max(2.0, r * 0.14)
        bounds = (x - r, y - r, x + r, y + r)
        if n < earned:
            pen.ellipse(bounds, fill=colour)
            # a tick in the background colour, inside the disc
            pen.line([(x - r * 0.45, y + r * 0.02), (x - r * 0.12, y + r * 0.35), (x + r * 0.48, y - r * 0.33)],
                     fill=paper, width=round(outline * 1.2), joint="curve")
        else:
            pen.ellipse(bounds, outline=(*_rgb(ink), 200), width=round(outline))
    strip.alpha_composite(layer.resize(size, Image.Resampling.LANCZOS))
    out = io.BytesIO()
    strip.save(out, format="PNG", optimize=True)
    return out.getvalue()


def stamp_strips(*, earned: int, required: int, ink: str, background: str,
                 bases: dict[int, bytes | None]) -> tuple[tuple[str, bytes], ...]:
    """``strip.png``, ``strip@2x.png`` and ``strip@3x.png`` with ``required`` stamps, ``earned`` of them filled,
    drawn in ``ink`` over ``bases`` (the strip at each scale; None: a plain ``background``). Nothing for a card
    needing no stamps or more than can be drawn legibly."""
    if required < 1 or required > MAX_DRAWN:
        return ()
    earned = max(0, min(earned, required))
    return tuple((file_name("strip", scale), _draw(bases.get(scale), scale, earned, required, ink, background))
                 for scale in SCALES)


@lru_cache(maxsize=1)
def _default_strips() -> dict[int, bytes | None]:
    from app.channels.apple_pass import DESIGN_DIR

    found: dict[int, bytes | None] = {}
    for scale in SCALES:
        path = DESIGN_DIR / file_name("strip", scale)
        found[scale] = path.read_bytes() if path.is_file() else None
    return found


def with_stamps(files: tuple[tuple[str, bytes], ...], *, earned: int, required: int | None, ink: str,
                background: str) -> tuple[tuple[str, bytes], ...]:
    """A pass's programme files (``images.pass_files``) with the strip at each scale replaced by the same strip
    with the card's stamps drawn on it; unchanged when there is nothing to draw."""
    own = dict(files)
    defaults = _default_strips()
    bases = {scale: own.get(file_name("strip", scale)) or defaults[scale] for scale in SCALES}
    strips = stamp_strips(earned=earned, required=required or 0, ink=ink, background=background, bases=bases)
    if not strips:
        return files
    return tuple(sorted({**own, **dict(strips)}.items()))
