"""The translation catalogs are complete, current and well-formed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
CATALOGS = ROOT / "marketplace" / "translations"
LANGUAGES = ("es", "fr", "de")
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def _catalog(lang: str):
    with open(CATALOGS / lang / "LC_MESSAGES" / "messages.po", "rb") as handle:
        return read_po(handle, locale=lang)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_message_is_translated_and_not_fuzzy(lang: str) -> None:
    catalog = _catalog(lang)
    missing = [m.id for m in catalog if m.id and not (
        all(m.string) if isinstance(m.string, tuple) else m.string)]
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert missing == [] and fuzzy == []


@pytest.mark.parametrize("lang", LANGUAGES)
def test_translations_keep_their_placeholders(lang: str) -> None:
    for message in _catalog(lang):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        expected = set(PLACEHOLDER.findall(ids[-1]))
        for text in strings:
            assert set(PLACEHOLDER.findall(text)) == expected, (lang, message.id, text)


def test_template_is_current_with_the_code(tmp_path: Path) -> None:
    """Extracting again yields the same messages as the committed .pot."""
    fresh = tmp_path / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "-q", "extract", "-F",
         str(ROOT / "babel.cfg"), "-k", "N_", "-k", "_l", "-k", "lazy_gettext", "--no-location",
         "--sort-output", "-o", str(fresh), "."],
        check=True, cwd=ROOT, capture_output=True)
    with open(fresh, "rb") as handle:
        extracted = {m.id for m in read_po(handle) if m.id}
    with open(CATALOGS / "messages.pot", "rb") as handle:
        committed = {m.id for m in read_po(handle) if m.id}
    assert extracted - committed == set(), "run `make translations-update` and translate"
    assert committed - extracted == set(), "run `make translations-update`"
