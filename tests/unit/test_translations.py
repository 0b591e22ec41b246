"""Every text of the customer pages has its Russian and Romanian translation, and the compiled catalogues
that Flask-Babel reads match them (``translations/texts.py`` says how to regenerate)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.support import Translations

ROOT = Path(__file__).resolve().parents[2]
METHODS = [("app/**.py", "python"), ("templates/**.html", "jinja2")]


def _texts() -> dict[str, dict[str, str]]:
    spec = importlib.util.spec_from_file_location("texts", ROOT / "translations" / "texts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.LANGUAGES


def _source_messages() -> set[str]:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(str(ROOT), METHODS):
        found.add(message if isinstance(message, str) else message[0])
    return found


@pytest.mark.parametrize("language", ["ru", "ro"])
def test_every_text_is_translated_and_compiled(language: str) -> None:
    texts = _texts()[language]
    missing = sorted(_source_messages() - set(texts))
    assert not missing, f"add to translations/texts.py and rerun it: {missing}"
    catalogue = Translations.load(str(ROOT / "translations"), [language])
    stale = [source for source, text in texts.items() if catalogue.gettext(source) != text]
    assert not stale, f"run .venv/bin/python translations/texts.py to recompile: {stale[:3]}"
    for source, text in texts.items():
        assert text.count("%(") == source.count("%("), (language, source)  # the same placeholders
