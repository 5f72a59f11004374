"""The web UI's message catalogue: every German text of the pages has an English translation."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from api.web.i18n import translations

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "api" / "web" / "locale" / "en" / "LC_MESSAGES" / "messages.po"


def _extracted() -> set[str]:
    """The texts ``pybabel extract -F babel.cfg -k N_`` finds (same mapping as babel.cfg)."""
    method_map = [("api/web/**.py", "python"), ("api/web/templates/**.html", "jinja2")]
    options_map = {"api/web/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=keywords
    ):
        found.update([message] if isinstance(message, str) else [m for m in message if m])
    return found


def test_every_page_text_has_an_english_translation() -> None:
    with CATALOGUE.open("rb") as handle:
        catalogue = read_po(handle, locale="en")
    translated: set[str] = set()
    for m in catalogue:
        # A plural entry's id and string are (singular, plural) pairs; both forms must be translated.
        complete = all(m.string) if isinstance(m.string, tuple) else bool(m.string)
        if m.id and complete and not m.fuzzy:
            translated.update([m.id] if isinstance(m.id, str) else m.id)
    missing = sorted(_extracted() - translated)
    assert not missing, "texts without English translation (pybabel extract/update, then translate):\n" + "\n".join(
        missing
    )


def test_the_catalogue_compiles_and_translates() -> None:
    english = translations("en")
    assert english.gettext("Arbeitsliste") == "Worklist"
    assert translations("de").gettext("Arbeitsliste") == "Arbeitsliste"
