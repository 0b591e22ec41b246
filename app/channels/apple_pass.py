"""Apple Wallet store cards: ``pass.json`` from a card's content, and the signed ``.pkpass`` package.

Format facts and their sources: ../shared/reference/apple_wallet.md §1. In short:

- a zip with ``pass.json``, the images, ``xx.lproj/pass.strings``, ``manifest.json`` (SHA-1 of every
  other file, keyed by its path) and ``signature`` (detached PKCS#7 over the manifest bytes) at its root;
- the bytes that are hashed are the bytes that ship: ``pass.json`` is serialised once;
- labels and change messages are keys into ``pass.strings``, so Wallet shows them in the phone's language.

The design (template, images, strings) lives in ``passes/store_card/`` and is read once per process.
Signing is the expensive step (an RSA signature), so a finished package is kept per
``(serial, version, content digest)``: a phone asking again for the same version gets the same bytes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import struct
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.channels.apple_signer import PassSigner

MIME_TYPE = "application/vnd.apple.pkpass"
DESIGN_DIR = Path(__file__).resolve().parents[2] / "passes" / "store_card"
MAX_LOCATIONS = 10  # Apple: "An array of up to 10 objects"
_ZIP_DATE = (2001, 1, 1, 0, 0, 0)  # fixed, so identical content gives identical bytes
_STRINGS_LINE = re.compile(r'^\s*"((?:[^"\\]|\\.)*)"\s*=\s*"((?:[^"\\]|\\.)*)"\s*;\s*$')


@dataclass(frozen=True)
class Location:
    latitude: float
    longitude: float
    relevant_text: str


@dataclass(frozen=True)
class PassContent:
    """Everything a card's pass shows; built by the wallet service from the database."""

    serial: str
    version: int
    authentication_token: str
    web_service_url: str
    barcode: str
    organization_name: str
    description: str
    logo_text: str
    background_color: str  # "#RRGGBB"
    foreground_color: str
    label_color: str
    member_name: str
    balance: int | str  # points, or "3 / 10" stamps
    stamps: bool = False
    tier: str | None = None
    tier_perks: str = ""
    offer: str = ""
    terms: str = ""
    card_page_url: str = ""
    stores: str = ""
    locations: tuple[Location, ...] = ()
    voided: bool = False
    # The programme's own images, replacing the design's files of the same name ("logo@2x.png"…).
    images: tuple[tuple[str, bytes], ...] = ()


@functools.lru_cache(maxsize=256)
def rgb(hex_color: str) -> str:
    """``#1F2937`` → ``rgb(31, 41, 55)``, the only colour syntax pass.json accepts."""
    value = hex_color.lstrip("#")
    if not re.fullmatch(r"[0-9A-Fa-f]{6}", value):
        raise ValueError(f"not a #RRGGBB colour: {hex_color!r}")
    r, g, b = (int(value[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgb({r}, {g}, {b})"


_UNESCAPE = {"n": "\n", "t": "\t"}


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def parse_strings(text: str) -> dict[str, str]:
    """Read an Apple ``.strings`` file (``"key" = "value";`` lines, comments, blank lines)."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    result: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        match = _STRINGS_LINE.match(line)
        if not match:
            raise ValueError(f"pass.strings line {number} is not '\"key\" = \"value\";': {line!r}")
        key, value = (re.sub(r"\\(.)", lambda m: _UNESCAPE.get(m[1], m[1]), group) for group in match.groups())
        result[key] = value
    return result


@dataclass(frozen=True)
class PassDesign:
    """The template and the static files of one pass style, loaded once."""

    template: dict[str, Any]  # labels and change messages already in English
    files: dict[str, bytes]  # path in the package → bytes (images, pass.strings as UTF-16)
    english: dict[str, str] = field(default_factory=dict)  # symbolic key → English, from en.lproj
    hashes: dict[str, str] = field(default_factory=dict)  # path → SHA-1, computed once
    static: StaticEntries = field(default=None)  # type: ignore[assignment]  # their zip entries, built once

    def __post_init__(self) -> None:
        object.__setattr__(self, "hashes", self.hashes or {
            name: hashlib.sha1(data).hexdigest() for name, data in self.files.items()})  # noqa: S324 (Apple's format)
        if self.static is None:
            object.__setattr__(self, "static", StaticEntries.of(self.files))

    @classmethod
    def load(cls, directory: Path = DESIGN_DIR) -> PassDesign:
        """Read a design folder. Its strings files are keyed by symbols (``balance_change``); the package
        is keyed by the English text instead, and pass.json carries that English text: Wallet shows
        pass.json's own text when the phone's language has no ``.lproj``, so it must be readable (and a
        change message must hold its ``%@``) as it stands."""
        template = json.loads((directory / "pass.json").read_text("utf-8"))
        files: dict[str, bytes] = {}
        for path in sorted(directory.glob("*.png")):
            files[path.name] = path.read_bytes()
        for required in ("icon.png", "icon@2x.png", "icon@3x.png"):
            if required not in files:
                raise ValueError(f"{directory} has no {required}: every pass needs an icon at 1x, 2x and 3x")
        # A broken or incomplete file fails here, at start-up, not on a phone.
        languages = {path.parent.name: parse_strings(path.read_text("utf-8"))
                     for path in sorted(directory.glob("*.lproj/pass.strings"))}
        english = languages.get("en.lproj")
        if not english:
            raise ValueError(f"{directory} has no en.lproj/pass.strings")
        for folder, strings in languages.items():
            if missing := sorted(set(english) - set(strings)):
                raise ValueError(f"{directory / folder}/pass.strings lacks {', '.join(missing)}")
            lines = [f'"{_escape(english[key])}" = "{_escape(text)}";' for key, text in strings.items()
                     if key in english]
            # UTF-16 with a byte-order mark: what Apple's tools write; UTF-8 is only tolerated.
            files[f"{folder}/pass.strings"] = b"\xff\xfe" + ("\n".join(lines) + "\n").encode("utf-16-le")
        for items in template["storeCard"].values():
            for item in items:
                for attribute in ("label", "changeMessage"):
                    if item.get(attribute) in english:
                        item[attribute] = english[item[attribute]]
        return cls(template=template, files=files, english=english)

    def pass_json(self, content: PassContent, *, pass_type_id: str, team_id: str) -> dict[str, Any]:
        document = dict(self.template)
        document.update(
            passTypeIdentifier=pass_type_id,
            teamIdentifier=team_id,
            serialNumber=content.serial,
            organizationName=content.organization_name,
            description=content.description,
            logoText=content.logo_text,
            backgroundColor=rgb(content.background_color),
            foregroundColor=rgb(content.foreground_color),
            labelColor=rgb(content.label_color),
            webServiceURL=content.web_service_url,
            authenticationToken=content.authentication_token,
            barcodes=[{"format": "PKBarcodeFormatQR", "message": content.barcode,
                       "messageEncoding": "iso-8859-1", "altText": content.barcode}],
        )
        if content.locations:
            document["locations"] = [
                {"latitude": loc.latitude, "longitude": loc.longitude, "relevantText": loc.relevant_text}
                for loc in content.locations[:MAX_LOCATIONS]
            ]
        if content.voided:
            document["voided"] = True
        values: dict[str, Any] = {
            "balance": content.balance,
            # large on the strip; a stamp card's strip shows its stamps, drawn (app/wallet/stamps.py)
            "points": None if content.stamps else content.balance,
            "member": content.member_name or None,
            "tier": content.tier,
            # always present, so that a new offer fires its changeMessage
            "offer": content.offer or self.english.get("offer_none", "—"),
            "perks": content.tier_perks or None,
            "card_number": content.barcode,
            "card_page": content.card_page_url or None,
            "stores": content.stores or None,
            "terms": content.terms or None,
        }
        style: dict[str, list[dict[str, Any]]] = {}
        for group, items in self.template["storeCard"].items():  # new dicts: the template stays as loaded
            style[group] = [{**item, "value": values[item["key"]]} for item in items
                            if values.get(item["key"]) is not None]
        if content.stamps:
            for item in style.get("headerFields", []):
                if item["key"] == "balance":
                    item.update(label=self.english["stamps_label"], changeMessage=self.english["stamps_change"])
        document["storeCard"] = style
        return document


def _json_bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")


# A stored (uncompressed) zip, written by hand rather than with ``zipfile``: nine in ten bytes of a pass
# are the same design files every time, so their local entries and directory records are built once
# (``StaticEntries``) and only pass.json, the manifest and the signature are added per pass. ``zipfile``
# would re-checksum and re-frame every file on every pass, which cost as much as the signature itself.
# Layout: APPNOTE.TXT 4.3 (local file header, central directory header, end of central directory).
_DOS_DATE = ((_ZIP_DATE[0] - 1980) << 9) | (_ZIP_DATE[1] << 5) | _ZIP_DATE[2]
_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
_VERSION = 20  # 2.0: the version "needed to extract" a stored file, and ours "made by" on Unix (3 << 8)
_MODE = 0o100644 << 16  # a regular file, rw-r--r--


def _entry(name: str, data: bytes, offset: int) -> tuple[bytes, bytes]:
    """The local entry (header + data) and the central directory record of one stored file."""
    encoded, crc = name.encode("ascii"), zlib.crc32(data)
    local = _LOCAL.pack(0x04034B50, _VERSION, 0, 0, 0, _DOS_DATE, crc, len(data), len(data), len(encoded), 0)
    central = _CENTRAL.pack(0x02014B50, (3 << 8) | _VERSION, _VERSION, 0, 0, 0, _DOS_DATE, crc, len(data),
                            len(data), len(encoded), 0, 0, 0, 0, _MODE, offset)
    return local + encoded + data, central + encoded


@dataclass(frozen=True)
class StaticEntries:
    """The design's files as the start of every package: their entries and directory records."""

    body: bytes
    directory: bytes
    count: int

    @classmethod
    def of(cls, files: dict[str, bytes]) -> StaticEntries:
        body, directory = bytearray(), bytearray()
        for name, data in files.items():
            local, central = _entry(name, data, len(body))
            body += local
            directory += central
        return cls(bytes(body), bytes(directory), len(files))


def _zip(static: StaticEntries, files: list[tuple[str, bytes]]) -> bytes:
    parts, directory, offset = [static.body], [static.directory], len(static.body)
    for name, data in files:
        local, central = _entry(name, data, offset)
        parts.append(local)
        directory.append(central)
        offset += len(local)
    central_bytes = b"".join(directory)
    count = static.count + len(files)
    parts += [central_bytes, _END.pack(0x06054B50, 0, 0, count, count, len(central_bytes), offset, 0)]
    return b"".join(parts)


def package(pass_json: bytes, design: PassDesign, signer: PassSigner) -> bytes:
    """The ``.pkpass`` bytes: every file at the zip root, the manifest over them, its signature."""
    hashes = dict(design.hashes)
    hashes["pass.json"] = hashlib.sha1(pass_json).hexdigest()  # noqa: S324 (Apple's format)
    manifest = _json_bytes(hashes)
    return _zip(design.static, [("pass.json", pass_json), ("manifest.json", manifest),
                                ("signature", signer.sign(manifest))])


@dataclass(frozen=True)
class Pkpass:
    data: bytes
    digest: str  # SHA-256 of pass.json: what the package says, independent of when it was signed


class PassCache:
    """Finished packages by ``(serial, version, digest)``, least recently used out first.

    The lock guards only the dictionary; building happens outside it, and concurrent requests for the
    same key wait for the one build in progress instead of signing twice."""

    def __init__(self, max_entries: int = 2048) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[tuple[str, int, str], bytes] = OrderedDict()
        self._building: dict[tuple[str, int, str], threading.Lock] = {}
        self._latest: dict[str, tuple[str, int, str]] = {}
        self._lock = threading.Lock()
        self.builds = 0

    def get_or_build(self, key: tuple[str, int, str], build: Callable[[], bytes]) -> bytes:
        with self._lock:
            if (data := self._items.get(key)) is not None:
                self._items.move_to_end(key)
                return data
            key_lock = self._building.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if (data := self._items.get(key)) is not None:
                    return data
            data = build()
            with self._lock:
                self.builds += 1
                self._items[key] = data
                # An older version of this serial is not asked for again once a newer one exists.
                previous = self._latest.get(key[0])
                if previous is not None and previous != key and previous[1] <= key[1]:
                    self._items.pop(previous, None)
                if previous is None or previous[1] <= key[1]:
                    self._latest[key[0]] = key
                while len(self._items) > self.max_entries:
                    oldest, _ = self._items.popitem(last=False)
                    if self._latest.get(oldest[0]) == oldest:
                        del self._latest[oldest[0]]
                self._building.pop(key, None)
        return data


class PassFactory:
    """Builds and signs passes for one pass type and team."""

    def __init__(self, *, signer: PassSigner, pass_type_id: str, team_id: str,
                 design: PassDesign | None = None, cache: PassCache | None = None) -> None:
        self.signer = signer
        self.pass_type_id = pass_type_id
        self.team_id = team_id
        self.design = design or PassDesign.load()
        self.cache = cache or PassCache()
        self._designs: OrderedDict[tuple[tuple[str, bytes], ...], PassDesign] = OrderedDict()
        self._designs_lock = threading.Lock()

    def design_for(self, images: tuple[tuple[str, bytes], ...]) -> PassDesign:
        """The design with a programme's own images in place of the defaults (built once per image set)."""
        if not images:
            return self.design
        with self._designs_lock:
            if (design := self._designs.get(images)) is not None:
                self._designs.move_to_end(images)
                return design
        design = PassDesign(template=self.design.template, files={**self.design.files, **dict(images)},
                            english=self.design.english)
        with self._designs_lock:
            self._designs[images] = design
            while len(self._designs) > 32:
                self._designs.popitem(last=False)
        return design

    def pass_json(self, content: PassContent) -> bytes:
        return _json_bytes(self.design.pass_json(content, pass_type_id=self.pass_type_id, team_id=self.team_id))

    def build(self, content: PassContent) -> Pkpass:
        pass_json = self.pass_json(content)
        design = self.design_for(content.images)
        digest = hashlib.sha256(pass_json).hexdigest()
        if content.images:  # the same pass.json with other images is another package
            digest = hashlib.sha256(pass_json + _json_bytes(design.hashes)).hexdigest()
        data = self.cache.get_or_build((content.serial, content.version, digest),
                                       lambda: package(pass_json, design, self.signer))
        return Pkpass(data=data, digest=digest)
