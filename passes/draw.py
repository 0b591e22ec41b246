"""Draw the default store-card images in ``passes/store_card/`` with the standard library only.

Run from the project folder: ``.venv/bin/python passes/draw.py``

Each design is described once in points (the 1x size) and drawn at every scale at its own pixel size, so the
@2x and @3x files are sharp rather than upscaled. Edges are anti-aliased analytically: a pixel's coverage comes
from its signed distance to the shape. The pixel values use only +, -, *, / and sqrt, which IEEE arithmetic
rounds exactly, and the PNG encoder makes no arbitrary choices, so every run writes the same bytes (for the same
zlib build; see ``tests/unit/test_pass_design.py``).
"""

from __future__ import annotations

import struct
import sys
import zlib
from collections.abc import Callable
from math import sqrt
from pathlib import Path

STORE_CARD_DIR = Path(__file__).resolve().parent / "store_card"
SCALES = (1, 2, 3)

RGB = tuple[float, float, float]
RGBA = tuple[float, float, float, float]
# shade(x, y, pixel) -> straight-alpha colour, channels 0..1; x and y in points, pixel = one pixel in points.
Shader = Callable[[float, float, float], RGBA]

WHITE: RGB = (1.0, 1.0, 1.0)
BLACK: RGB = (0.0, 0.0, 0.0)


# ------------------------------------------------------------------------------------------ PNG writer

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def _filtered_rows(rgba: bytes, width: int, height: int) -> list[list[bytes]]:
    """Each row under PNG filters 0-3 (None, Sub, Up, Average), computed bytewise on big integers.

    Per-byte arithmetic modulo 256 without a loop: with H = 0x80 in every byte and L = 0x7f, the difference
    a - b is ``((a | H) - (b & L)) ^ ((a ^ ~b) & H)`` and floor((a + b) / 2) is ``(a & b) + (((a ^ b) >> 1) & L)``.
    """
    stride = width * 4
    high = int.from_bytes(b"\x80" * stride, "big")
    low = int.from_bytes(b"\x7f" * stride, "big")

    def minus(a: int, b: int) -> bytes:
        return (((a | high) - (b & low)) ^ ((a ^ ~b) & high)).to_bytes(stride, "big")

    rows = []
    prior = 0
    for y in range(height):
        raw = rgba[y * stride : (y + 1) * stride]
        value = int.from_bytes(raw, "big")
        left = value >> 32  # the pixel to the left (4 bytes per pixel), zero on the first pixel
        average = (left & prior) + (((left ^ prior) >> 1) & low)
        rows.append([raw, minus(value, left), minus(value, prior), minus(value, average)])
        prior = value
    return rows


def encode_png(width: int, height: int, rgba: bytes) -> bytes:
    """An 8-bit RGBA PNG (colour type 6, not interlaced), compressed with zlib level 9.

    Tries one filter type for the whole image (0-3) and a per-row choice (the filter leaving the most zero
    bytes), and keeps the smallest result; ties go to the earlier candidate, so the output is deterministic.
    """
    if len(rgba) != width * height * 4:
        raise ValueError(f"expected {width * height * 4} bytes of RGBA, got {len(rgba)}")
    rows = _filtered_rows(rgba, width, height)
    candidates = [b"".join(bytes([kind]) + row[kind] for row in rows) for kind in range(4)]
    adaptive = []
    for row in rows:
        kind = max(range(4), key=lambda k, row=row: (row[k].count(0), -k))
        adaptive.append(bytes([kind]) + row[kind])
    candidates.append(b"".join(adaptive))
    idat = min((zlib.compress(data, 9) for data in candidates), key=len)
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


# ------------------------------------------------------------------------------------------ geometry


def clamp(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return low if value < low else high if value > high else value


def coverage(distance: float, pixel: float) -> float:
    """The share of a pixel inside a shape, from the signed distance (in points) of the pixel's centre."""
    return clamp(0.5 - distance / pixel)


def smoothstep(edge0: float, edge1: float, value: float) -> float:
    t = clamp((value - edge0) / (edge1 - edge0))
    return t * t * (3.0 - 2.0 * t)


def mix(a: RGB, b: RGB, t: float) -> RGB:
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t)


def over(top: RGB, top_alpha: float, bottom: RGBA) -> RGBA:
    """Porter-Duff "over" in straight (not premultiplied) alpha."""
    if top_alpha <= 0.0:
        return bottom
    alpha = top_alpha + bottom[3] * (1.0 - top_alpha)
    keep = bottom[3] * (1.0 - top_alpha) / alpha
    colour = mix(top, bottom[:3], keep)
    return (colour[0], colour[1], colour[2], alpha)


def hex_colour(code: str) -> RGB:
    return (int(code[1:3], 16) / 255.0, int(code[3:5], 16) / 255.0, int(code[5:7], 16) / 255.0)


# Sines and cosines of multiples of 36 degrees, exact up to one sqrt (no libm trigonometry, which may differ
# in the last bit between platforms).
_ROOT5 = sqrt(5.0)
_COS36, _COS72 = (1.0 + _ROOT5) / 4.0, (_ROOT5 - 1.0) / 4.0
_SIN36, _SIN72 = sqrt(10.0 - 2.0 * _ROOT5) / 4.0, sqrt(10.0 + 2.0 * _ROOT5) / 4.0
_STAR_DIRECTIONS = (  # (sin, cos) of k * 36 degrees, k = 0..9, clockwise from straight up
    (0.0, 1.0), (_SIN36, _COS36), (_SIN72, _COS72), (_SIN72, -_COS72), (_SIN36, -_COS36),
    (0.0, -1.0), (-_SIN36, -_COS36), (-_SIN72, -_COS72), (-_SIN72, _COS72), (-_SIN36, _COS36),
)  # fmt: skip


def star_points(cx: float, cy: float, outer: float, inner: float) -> list[tuple[float, float]]:
    """A five-pointed star, one point straight up (y grows downwards)."""
    points = []
    for k, (sin, cos) in enumerate(_STAR_DIRECTIONS):
        radius = outer if k % 2 == 0 else inner
        points.append((cx + radius * sin, cy - radius * cos))
    return points


def polygon_distance(x: float, y: float, points: list[tuple[float, float]]) -> float:
    """Signed distance to a simple polygon (negative inside), after Inigo Quilez's sdPolygon."""
    best = (x - points[0][0]) ** 2 + (y - points[0][1]) ** 2
    sign = 1.0
    j = len(points) - 1
    for i in range(len(points)):
        xi, yi = points[i]
        xj, yj = points[j]
        ex, ey = xj - xi, yj - yi
        wx, wy = x - xi, y - yi
        t = clamp((wx * ex + wy * ey) / (ex * ex + ey * ey))
        bx, by = wx - ex * t, wy - ey * t
        best = min(best, bx * bx + by * by)
        above, below, left = y >= yi, y < yj, ex * wy > ey * wx
        if (above and below and left) or not (above or below or left):
            sign = -sign
        j = i
    return sign * sqrt(best)


def rounded_box_distance(x: float, y: float, cx: float, cy: float, half: float, radius: float) -> float:
    """Signed distance to a square of half-size ``half`` centred on (cx, cy), corners rounded by ``radius``."""
    qx = abs(x - cx) - half + radius
    qy = abs(y - cy) - half + radius
    outside = sqrt(max(qx, 0.0) ** 2 + max(qy, 0.0) ** 2)
    return outside + min(max(qx, qy), 0.0) - radius


class Star:
    """A five-pointed star with softly rounded tips: a polygon grown by ``rounding``."""

    def __init__(self, cx: float, cy: float, outer: float, inner: float, rounding: float) -> None:
        self.cx, self.cy, self.rounding = cx, cy, rounding
        self.points = star_points(cx, cy, outer, inner)
        self.reach = outer + rounding

    def distance(self, x: float, y: float, pixel: float) -> float:
        far = sqrt((x - self.cx) ** 2 + (y - self.cy) ** 2) - self.reach
        if far > pixel:  # clearly outside: skip the polygon
            return far
        return polygon_distance(x, y, self.points) - self.rounding


# ------------------------------------------------------------------------------------------ designs

ICON_TOP = hex_colour("#3A4A66")  # slate, lighter at the top
ICON_BOTTOM = hex_colour("#1C2537")
STAR_GOLD = hex_colour("#F4C35A")
ICON_STAR = Star(14.5, 15.3, 9.6, 4.3, 0.9)


def icon(x: float, y: float, pixel: float) -> RGBA:
    """29x29: a gold star on a slate rounded square (what the lock screen shows next to a notification)."""
    tile = coverage(rounded_box_distance(x, y, 14.5, 14.5, 14.5, 6.4), pixel)
    if tile <= 0.0:
        return (*WHITE, 0.0)
    background = mix(ICON_TOP, ICON_BOTTOM, smoothstep(0.0, 29.0, y))
    star = coverage(ICON_STAR.distance(x, y, pixel), pixel)
    colour = mix(background, STAR_GOLD, star)
    return (colour[0], colour[1], colour[2], tile)


LOGO_CENTRE = (25.0, 25.0)
LOGO_STAR = Star(25.0, 25.9, 12.2, 5.6, 1.0)


def logo(x: float, y: float, pixel: float) -> RGBA:
    """50x50 (Wallet sets the logo text right after the image, so no empty width): a seal (translucent
    dark disc, white ring, white star) on transparency.

    The dark disc keeps the white star readable on light programme colours; on dark ones the white shows.
    """
    distance = sqrt((x - LOGO_CENTRE[0]) ** 2 + (y - LOGO_CENTRE[1]) ** 2)
    disc = coverage(distance - 22.0, pixel)
    if disc <= 0.0:
        return (*WHITE, 0.0)
    colour: RGBA = (*BLACK, 0.22 * disc)
    colour = over(WHITE, 0.85 * coverage(abs(distance - 19.2) - 0.8, pixel), colour)
    return over(WHITE, coverage(LOGO_STAR.distance(x, y, pixel), pixel), colour)


STRIP_WIDTH, STRIP_HEIGHT = 375.0, 123.0
_SLANT = 0.6  # bands run along x + 0.6 y = constant: leaning right, like "/"
_SLANT_NORM = sqrt(1.0 + _SLANT * _SLANT)
# (start, end, alpha) of white translucent panes across the slanted axis, in points.
STRIP_PANES = ((196.0, 268.0, 0.055), (240.0, 318.0, 0.06), (300.0, 1000.0, 0.07))
DOT_SPACING = 9.0
DOT_ROW = DOT_SPACING * sqrt(3.0) / 2.0  # rows of a triangular (hexagonal) grid
DOTS_START = 150.0  # slanted position where the dots begin to grow


def strip(x: float, y: float, pixel: float) -> RGBA:
    """375x123: translucent white panes and a halftone of dots that grows towards the right.

    The left part, where Wallet prints the primary field (the balance), stays almost clear.
    """
    across = (x + _SLANT * y) / _SLANT_NORM
    colour: RGBA = (*WHITE, 0.0)
    for start, end, alpha in STRIP_PANES:
        inside = coverage(max(start - across, across - end), pixel)
        if inside > 0.0:
            colour = over(WHITE, alpha * inside, colour)
    if across < DOTS_START - 2.0 * DOT_SPACING:  # no dot centre this far left has a visible radius
        return colour
    # Halftone: dots on a triangular grid; the radius grows with the slanted position.
    row = int(y / DOT_ROW)
    best = 1e9
    dot_radius = 0.0
    for r in (row - 1, row, row + 1):
        cy = (r + 0.5) * DOT_ROW
        shift = DOT_SPACING / 2.0 if r % 2 else 0.0
        cx = int((x - shift) / DOT_SPACING + 0.5) * DOT_SPACING + shift  # the nearest dot of that row
        size = 1.9 * smoothstep(DOTS_START, 390.0, (cx + _SLANT * cy) / _SLANT_NORM)
        if size < 0.15:
            continue
        gap = sqrt((x - cx) ** 2 + (y - cy) ** 2) - size
        if gap < best:
            best, dot_radius = gap, size
    if dot_radius > 0.0:
        colour = over(WHITE, 0.16 * coverage(best, pixel), colour)
    return colour


DESIGNS: dict[str, tuple[int, int, Shader]] = {
    "icon": (29, 29, icon),
    "logo": (50, 50, logo),
    "strip": (375, 123, strip),
}


# ------------------------------------------------------------------------------------------ rendering


def _byte(value: float) -> int:
    return int(clamp(value) * 255.0 + 0.5)


def render(width: int, height: int, scale: int, shade: Shader) -> bytes:
    """RGBA bytes of ``shade`` sampled at each pixel centre of a (width * scale) x (height * scale) image."""
    pixel = 1.0 / scale
    out = bytearray()
    for py in range(height * scale):
        y = (py + 0.5) * pixel
        for px in range(width * scale):
            r, g, b, a = shade((px + 0.5) * pixel, y, pixel)
            alpha = _byte(a)
            if alpha == 0:
                out += b"\xff\xff\xff\x00"  # one colour for "nothing here" compresses best
            else:
                out += bytes((_byte(r), _byte(g), _byte(b), alpha))
    return bytes(out)


def file_name(design: str, scale: int) -> str:
    return f"{design}.png" if scale == 1 else f"{design}@{scale}x.png"


def draw_all(directory: Path) -> list[Path]:
    """Write the nine PNGs (icon, logo and strip at 1x, 2x and 3x) into ``directory``; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for design, (width, height, shade) in DESIGNS.items():
        for scale in SCALES:
            path = directory / file_name(design, scale)
            path.write_bytes(encode_png(width * scale, height * scale, render(width, height, scale, shade)))
            written.append(path)
    return written


def main() -> None:
    for path in draw_all(STORE_CARD_DIR):
        sys.stdout.write(f"{path.relative_to(STORE_CARD_DIR.parent.parent)}  {path.stat().st_size} bytes\n")


if __name__ == "__main__":
    main()
