"""The shared store-card design in ``passes/`` (no database): the PNGs, the ``pass.strings`` files and the script
that draws the PNGs.

Sizes: ../shared/reference/apple_wallet.md §1.5 (icon 29x29 mandatory at 1x/2x/3x; logo at most 160x50, ours 50x50;
strip 375x123).
Strings: ``"key" = "value";``, and a change message must contain ``%@`` (§1.4).
"""

from __future__ import annotations

import importlib.util
import re
import struct
import zlib
from pathlib import Path
from types import ModuleType

import pytest

PASSES_DIR = Path(__file__).resolve().parents[2] / "passes"
DESIGN_DIR = PASSES_DIR / "store_card"

BASE_SIZES = {"icon": (29, 29), "logo": (50, 50), "strip": (375, 123)}
EXPECTED_SIZES = {
    (f"{name}.png" if scale == 1 else f"{name}@{scale}x.png"): (width * scale, height * scale)
    for name, (width, height) in BASE_SIZES.items()
    for scale in (1, 2, 3)
}
MAX_PNG_BYTES = 60_000
REQUIRED_KEYS = {
    "balance_label", "stamps_label", "balance_change", "stamps_change", "tier_label", "member_label",
    "offer_label", "offer_none", "perks_label", "terms_label", "card_number_label", "card_page_label",
    "stores_label",
}  # fmt: skip
LANGUAGES = ["en", "ru", "ro"]


# ------------------------------------------------------------------------------------------ PNG reading


class PNGError(ValueError):
    pass


def read_png(data: bytes) -> tuple[int, int, bytes]:
    """Check a PNG's structure strictly; return width, height and the decompressed (still filtered) data.

    Checked: the signature; every chunk's length and CRC; IHDR first (8-bit RGBA, standard compression and
    filtering, not interlaced); at least one IDAT; IEND last and empty; the data is width x height rows of one
    filter byte (0-4) plus 4 bytes per pixel.
    """
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise PNGError("no PNG signature")
    chunks: list[tuple[bytes, bytes]] = []
    position = 8
    while position < len(data):
        if position + 12 > len(data):
            raise PNGError("truncated chunk header")
        (length,) = struct.unpack(">I", data[position : position + 4])
        tag = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        if len(body) != length or position + 12 + length > len(data):
            raise PNGError(f"truncated {tag!r} chunk")
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        if zlib.crc32(tag + body) & 0xFFFFFFFF != crc:
            raise PNGError(f"bad CRC on the {tag!r} chunk")
        chunks.append((tag, body))
        position += 12 + length
    if not chunks or chunks[0][0] != b"IHDR" or len(chunks[0][1]) != 13:
        raise PNGError("the first chunk is not a 13-byte IHDR")
    if chunks[-1] != (b"IEND", b""):
        raise PNGError("the last chunk is not an empty IEND")
    width, height, depth, colour_type, compression, filtering, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    if (depth, colour_type, compression, filtering, interlace) != (8, 6, 0, 0, 0):
        raise PNGError(f"not 8-bit non-interlaced RGBA: {(depth, colour_type, compression, filtering, interlace)}")
    idat = b"".join(body for tag, body in chunks if tag == b"IDAT")
    if not idat:
        raise PNGError("no IDAT chunk")
    decompressor = zlib.decompressobj()
    raw = decompressor.decompress(idat)
    if not decompressor.eof or decompressor.unused_data:
        raise PNGError("the IDAT data is not exactly one complete zlib stream")
    stride = 1 + 4 * width
    if width == 0 or height == 0 or len(raw) != height * stride:
        raise PNGError(f"{len(raw)} bytes of image data for {width}x{height}")
    if any(raw[row * stride] > 4 for row in range(height)):
        raise PNGError("unknown filter type")
    return width, height, raw


def unfilter(width: int, height: int, raw: bytes) -> bytes:
    """The RGBA pixels of a PNG's decompressed data (undoes filters 0-4)."""
    stride = 4 * width
    pixels = bytearray()
    prior = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        row = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = row[i - 4] if i >= 4 else 0
            up = prior[i]
            up_left = prior[i - 4] if i >= 4 else 0
            if kind == 1:
                predictor = left
            elif kind == 2:
                predictor = up
            elif kind == 3:
                predictor = (left + up) // 2
            elif kind == 4:
                estimate = left + up - up_left
                distances = abs(estimate - left), abs(estimate - up), abs(estimate - up_left)
                if distances[0] <= distances[1] and distances[0] <= distances[2]:
                    predictor = left
                elif distances[1] <= distances[2]:
                    predictor = up
                else:
                    predictor = up_left
            else:
                predictor = 0
            row[i] = (row[i] + predictor) & 0xFF
        pixels += row
        prior = row
    return bytes(pixels)


# ------------------------------------------------------------------------------------------ .strings parsing


class StringsError(ValueError):
    pass


_STRING = r'"((?:[^"\\\n]|\\["\\])*)"'
_ENTRY = re.compile(rf"[ \t]*{_STRING}[ \t]*=[ \t]*{_STRING}[ \t]*;[ \t]*")
_COMMENT = re.compile(r"/\*.*?\*/", re.S)


def parse_strings(text: str) -> dict[str, str]:
    """A strict reader for Apple ``.strings``: ``"key" = "value";`` one per line, ``/* */`` comments between them.

    Escapes allowed: ``\\"`` and ``\\\\`` only. Raises StringsError on anything else (a stray character, an
    unknown escape, an unterminated comment or string, two entries on a line, a key given twice).
    """
    if text.startswith("\ufeff"):
        raise StringsError("byte-order mark: the repository keeps these files as plain UTF-8")
    # Blank out comments but keep their newlines, so line numbers stay right.
    text = _COMMENT.sub(lambda match: "\n" * match.group().count("\n"), text)
    if "/*" in text or "*/" in text:
        raise StringsError("unterminated or unbalanced comment")
    entries: dict[str, str] = {}
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        match = _ENTRY.fullmatch(line)
        if match is None:
            raise StringsError(f'line {number} is not \'"key" = "value";\': {line!r}')
        key, value = (re.sub(r"\\(.)", r"\1", group) for group in match.groups())
        if key in entries:
            raise StringsError(f"line {number}: {key!r} is given twice")
        entries[key] = value
    return entries


# ------------------------------------------------------------------------------------------ fixtures


def load_draw_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tallypass_pass_draw", PASSES_DIR / "draw.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def redrawn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The nine PNGs drawn afresh by passes/draw.py, in process, into a temporary folder."""
    directory = tmp_path_factory.mktemp("store_card")
    load_draw_module().draw_all(directory)
    return directory


def strings_of(language: str) -> dict[str, str]:
    return parse_strings((DESIGN_DIR / f"{language}.lproj" / "pass.strings").read_text("utf-8"))


# ------------------------------------------------------------------------------------------ images


@pytest.mark.parametrize("name", sorted(EXPECTED_SIZES))
def test_image_is_a_valid_png_of_the_expected_size(name: str) -> None:
    data = (DESIGN_DIR / name).read_bytes()
    width, height, _ = read_png(data)
    assert (width, height) == EXPECTED_SIZES[name]
    assert len(data) < MAX_PNG_BYTES


def test_the_icon_is_there_at_every_scale() -> None:
    """The only mandatory image; a missing resolution can break the pass on some devices (§1.5)."""
    for name in ("icon.png", "icon@2x.png", "icon@3x.png"):
        assert (DESIGN_DIR / name).is_file(), name


def test_no_unexpected_images() -> None:
    """The builder packs every PNG in the folder; anything else would end up in every pass."""
    assert {path.name for path in DESIGN_DIR.glob("*.png")} == set(EXPECTED_SIZES)


@pytest.mark.parametrize("name", ["logo.png", "strip.png"])
def test_logo_and_strip_let_the_programme_colour_show_through(name: str) -> None:
    width, height, raw = read_png((DESIGN_DIR / name).read_bytes())
    alphas = unfilter(width, height, raw)[3::4]
    assert alphas[0] == 0  # a transparent corner
    assert min(alphas) == 0
    if name == "strip.png":
        assert max(alphas) < 128  # a light overlay everywhere, never an opaque picture


def test_read_png_rejects_a_corrupted_crc() -> None:
    data = bytearray((DESIGN_DIR / "icon.png").read_bytes())
    data[-5] ^= 0x01  # inside IEND's CRC
    with pytest.raises(PNGError, match="CRC"):
        read_png(bytes(data))


# ------------------------------------------------------------------------------------------ draw.py


def test_draw_reproduces_the_committed_images(redrawn: Path) -> None:
    """Regenerating gives the same bytes, so the committed images are exactly what draw.py describes.

    zlib's output is fixed for a given zlib build; if only the bytes differ while the pixels match, the machine
    has another zlib (e.g. zlib-ng) and the committed files are still right.
    """
    assert sorted(path.name for path in redrawn.iterdir()) == sorted(EXPECTED_SIZES)
    for name in sorted(EXPECTED_SIZES):
        committed = (DESIGN_DIR / name).read_bytes()
        fresh = (redrawn / name).read_bytes()
        if fresh != committed:
            same_pixels = unfilter(*read_png(fresh)) == unfilter(*read_png(committed))
            pytest.fail(
                f"{name}: draw.py writes other bytes than the committed file "
                + (
                    f"but the same pixels (zlib {zlib.ZLIB_RUNTIME_VERSION} compresses differently?)"
                    if same_pixels
                    else "and other pixels: run `.venv/bin/python passes/draw.py` and commit the images"
                )
            )


# ------------------------------------------------------------------------------------------ pass.strings


@pytest.mark.parametrize("language", LANGUAGES)
def test_strings_file_parses(language: str) -> None:
    assert strings_of(language)


def test_english_has_every_key_the_builder_uses() -> None:
    assert set(strings_of("en")) == REQUIRED_KEYS


def test_every_language_folder_is_checked() -> None:
    assert sorted(path.parent.name.removesuffix(".lproj") for path in DESIGN_DIR.glob("*.lproj/pass.strings")) == (
        sorted(LANGUAGES)
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_language_has_exactly_the_english_keys(language: str) -> None:
    assert set(strings_of(language)) == set(strings_of("en"))


@pytest.mark.parametrize("language", LANGUAGES)
def test_change_messages_contain_the_value_exactly_once(language: str) -> None:
    strings = strings_of(language)
    changes = {key: value for key, value in strings.items() if key.endswith("_change")}
    assert changes
    for key, value in changes.items():
        assert value.count("%@") == 1, (key, value)
        assert "%" not in value.replace("%@", ""), (key, value)  # no other format directive


@pytest.mark.parametrize("language", LANGUAGES)
def test_values_are_filled_in(language: str) -> None:
    for key, value in strings_of(language).items():
        assert value.strip() == value and value, key


def test_translations_are_translated() -> None:
    english = strings_of("en")
    for language in ("ru", "ro"):
        for key, value in strings_of(language).items():
            assert value != english[key], (language, key)


def test_romanian_uses_comma_below_letters() -> None:
    """ș and ț (comma below), not the Turkish ş and ţ (cedilla) that old keyboards produce."""
    text = (DESIGN_DIR / "ro.lproj" / "pass.strings").read_text("utf-8")
    assert not set(text) & set("şţŞŢ")
    assert set(text) & set("șțăâî")


# ------------------------------------------------------------------------------------------ the parser itself


def test_parser_reads_escapes_and_comments() -> None:
    text = '/* header\n   two lines */\n"a" = "say \\"hi\\"";\n\n"b\\\\" = "x"; /* trailing */\n'
    assert parse_strings(text) == {"a": 'say "hi"', "b\\": "x"}


@pytest.mark.parametrize(
    "text",
    [
        '"a" = "x"',  # no semicolon
        '"a" = "x"; "b" = "y";',  # two entries on one line
        '"a" = "x";\n"a" = "y";',  # duplicate key
        '"a" = "\\n";',  # unknown escape
        '"a" = "x\n";',  # newline inside a string
        '"a" = "x";\n/* open comment',
        'a = "x";',  # unquoted key
        '"a" = "x";\njunk',
        '\ufeff"a" = "x";',
    ],
)
def test_parser_rejects_malformed_input(text: str) -> None:
    with pytest.raises(StringsError):
        parse_strings(text)
