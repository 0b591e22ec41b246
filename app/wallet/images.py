"""A programme's own card images: checking an uploaded PNG, resizing it to Apple's sizes, storing it, and
picking the images a pass or a Google class shows (the programme's when uploaded, else the defaults in
``passes/store_card``).

Sizes in points, per ../shared/reference/apple_wallet.md §1.5: logo at most 160×50 (its proportions
kept), strip 375×123 for a store card, icon 29×29; each at @1x, @2x and @3x pixels. An upload is read
with Pillow only after its header says it is a PNG of sane dimensions, so a "decompression bomb" (a small
file that inflates to gigabytes) is refused before any pixel is decoded.
"""

from __future__ import annotations

import hashlib
import io
import struct
import warnings
from dataclasses import dataclass
from datetime import datetime

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from app.errors import FieldError, InvalidInput
from app.merchants import audit
from app.models import IMAGE_KINDS, Program, ProgramImage, User

MAX_BYTES = 2 * 1024 * 1024
MAX_SIDE = 4096  # pixels, either side
MAX_PIXELS = 4096 * 4096
MIN_SIDE = 16
SCALES = (1, 2, 3)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LOGO_URL = "/media/programs/{program_id}/logo-{digest}.png"
DIGEST_IN_URL = 16  # hex characters of the logo's SHA-256 in its public URL (short: save links are small)


@dataclass(frozen=True)
class Box:
    """An image kind's size at @1x, in points; ``fit``: keep proportions inside the box (logo), else fill
    the box exactly, cropping the overflow from the middle (strip, icon)."""

    width: int
    height: int
    fit: bool
    hint: str


BOXES = {
    "logo": Box(160, 50, True, "at most 160 × 50 pt; a wide logo on a transparent background looks best"),
    "strip": Box(375, 123, False, "375 × 123 pt, shown behind the balance; cropped from the middle to fit"),
    "icon": Box(29, 29, False, "29 × 29 pt, shown in notifications; cropped to a square"),
}


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(message, code="invalid-image", errors=[FieldError(field, message)])


def check_png(data: bytes, *, field: str = "image") -> Image.Image:
    """The decoded image. :raise InvalidInput: not a PNG, too large a file, absurd dimensions, or damaged."""
    if not data:
        raise _invalid(field, "Choose a PNG file to upload.")
    if len(data) > MAX_BYTES:
        raise _invalid(field, f"The file is {len(data) / 1024 / 1024:.1f} MB; the limit is 2 MB.")
    if not data.startswith(PNG_SIGNATURE):
        raise _invalid(field, "This is not a PNG file. Save the image as PNG and upload it again.")
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise _invalid(field, "The PNG file is damaged or unreadable. Export it again and retry.")
    width, height = struct.unpack(">II", data[16:24])  # from the header, before Pillow decodes anything
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise _invalid(field, f"The image is {width} × {height} pixels; at most {MAX_SIDE} × {MAX_SIDE} is accepted.")
    if width < MIN_SIDE or height < MIN_SIDE:
        raise _invalid(field, f"The image is {width} × {height} pixels; it needs at least {MIN_SIDE} pixels each way.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=["PNG"])
            if image.size != (width, height):
                raise ValueError("the header was read differently")
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError,
            Image.DecompressionBombWarning):
        raise _invalid(field, "The PNG file is damaged or unreadable. Export it again and retry.") from None
    return image


def resize(image: Image.Image, kind: str) -> dict[int, bytes]:
    """PNG bytes of ``image`` at @1x, @2x and @3x for ``kind``."""
    box = BOXES[kind]
    source = image.convert("RGBA")
    out: dict[int, bytes] = {}
    for scale in SCALES:
        width, height = box.width * scale, box.height * scale
        if box.fit:
            ratio = min(width / source.width, height / source.height)
            size = (max(1, round(source.width * ratio)), max(1, round(source.height * ratio)))
            scaled = source.resize(size, Image.Resampling.LANCZOS)
        else:
            scaled = ImageOps.fit(source, (width, height), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        scaled.save(buffer, format="PNG", optimize=True)
        out[scale] = buffer.getvalue()
    return out


def file_name(kind: str, scale: int) -> str:
    return f"{kind}.png" if scale == 1 else f"{kind}@{scale}x.png"


def save_image(session: Session, *, program: Program, kind: str, data: bytes, actor: User | str, now: datetime,
               field: str | None = None) -> list[ProgramImage]:
    """Check ``data``, resize it and store it as the programme's ``kind`` at every scale (replacing the
    previous one); audited. :raise InvalidInput: an unknown kind or an unusable file."""
    if kind not in IMAGE_KINDS:
        raise _invalid(field or "kind", f"Unknown image kind {kind!r}; use one of {', '.join(IMAGE_KINDS)}.")
    image = check_png(data, field=field or kind)
    existing = {row.scale: row for row in session.scalars(
        select(ProgramImage).where(ProgramImage.program_id == program.id, ProgramImage.kind == kind))}
    rows = []
    for scale, png in resize(image, kind).items():
        row = existing.get(scale) or ProgramImage(program_id=program.id, kind=kind, scale=scale)
        row.png, row.sha256, row.updated_at = png, hashlib.sha256(png).hexdigest(), now
        session.add(row)
        rows.append(row)
    session.flush()
    audit.record(session, actor=actor, action="program.image_uploaded", now=now, target=f"program:{program.id}",
                 details={"kind": kind, "source_size": list(image.size), "bytes": len(data)})
    return rows


def remove_image(session: Session, *, program: Program, kind: str, actor: User | str, now: datetime) -> bool:
    """Back to the default ``kind`` image; False if the programme had none of its own."""
    rows = list(session.scalars(select(ProgramImage).where(ProgramImage.program_id == program.id,
                                                           ProgramImage.kind == kind)))
    for row in rows:
        session.delete(row)
    if rows:
        session.flush()
        audit.record(session, actor=actor, action="program.image_removed", now=now, target=f"program:{program.id}",
                     details={"kind": kind})
    return bool(rows)


def uploaded(session: Session, program_id: int) -> dict[str, dict[int, ProgramImage]]:
    """The programme's own images: ``{kind: {scale: row}}``."""
    found: dict[str, dict[int, ProgramImage]] = {}
    for row in session.scalars(select(ProgramImage).where(ProgramImage.program_id == program_id)):
        found.setdefault(row.kind, {})[row.scale] = row
    return found


_BYTES_BY_DIGEST: dict[str, bytes] = {}  # uploaded images never change under a digest; a few dozen at most
_CACHE_LIMIT = 256


def pass_files(session: Session, program_id: int) -> tuple[tuple[str, bytes], ...]:
    """The files of a pass package that the programme replaces (``logo.png``, ``logo@2x.png``…), sorted.

    Every pass build asks, so only the digests are read each time; the bytes come from a per-process cache
    keyed by digest, and are read from the database once per process."""
    rows = session.execute(select(ProgramImage.kind, ProgramImage.scale, ProgramImage.sha256)
                           .where(ProgramImage.program_id == program_id)
                           .order_by(ProgramImage.kind, ProgramImage.scale)).all()
    missing = [digest for _, _, digest in rows if digest not in _BYTES_BY_DIGEST]
    if missing:
        if len(_BYTES_BY_DIGEST) + len(missing) > _CACHE_LIMIT:
            _BYTES_BY_DIGEST.clear()
        _BYTES_BY_DIGEST.update(session.execute(select(ProgramImage.sha256, ProgramImage.png).where(
            ProgramImage.program_id == program_id, ProgramImage.sha256.in_(missing))).all())
    return tuple((file_name(kind, scale), _BYTES_BY_DIGEST[digest]) for kind, scale, digest in rows)


def logo_path(program: Program) -> str | None:
    """The public path of the programme's uploaded logo (its largest scale), or None to use the default.
    The name holds the image's hash, so it may be cached forever and changes when the logo does."""
    session = object_session(program)
    if session is None or program.id is None:
        return None
    digest = session.scalar(select(ProgramImage.sha256).where(
        ProgramImage.program_id == program.id, ProgramImage.kind == "logo", ProgramImage.scale == SCALES[-1]))
    return LOGO_URL.format(program_id=program.id, digest=digest[:DIGEST_IN_URL]) if digest else None


def public_logo(session: Session, *, program_id: int, digest: str) -> bytes | None:
    """The logo served at :func:`logo_path`, if ``digest`` still names the current one."""
    row = session.scalar(select(ProgramImage).where(
        ProgramImage.program_id == program_id, ProgramImage.kind == "logo", ProgramImage.scale == SCALES[-1]))
    if row is None or len(digest) != DIGEST_IN_URL or not row.sha256.startswith(digest.lower()):
        return None
    return row.png
