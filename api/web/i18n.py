"""Languages of the web UI: German by default, English switchable, one gettext catalogue.

The templates and page code are written in German (the users' language), and German is
the catalogue's source language: every ``msgid`` is the German text, and
``locale/en/LC_MESSAGES/messages.po`` holds the English translations. So a German page can
never show a missing translation, and an English page falls back to German for a text not
yet translated (a test lists such texts, so none stay behind). The ``.po`` file is compiled
in memory when the app starts: no compiled ``.mo`` files in the repository.

Extract new texts with ``pybabel extract -F babel.cfg -k N_ -o messages.pot .`` (from the repository root) and merge
them with ``pybabel update -i messages.pot -d api/web/locale``.

The language of a request: the ``kimflow_lang`` cookie (set by the language switch), else
``Accept-Language``, else German. Dates and numbers are formatted with Babel in the same
language, in Europe/Berlin.
"""

from __future__ import annotations

import gettext
import io
from datetime import date, datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations
from fastapi import Request

from api.errors import wants_english

LOCALES = ("de", "en")
DEFAULT_LOCALE = "de"
LANGUAGE_COOKIE = "kimflow_lang"
BERLIN = ZoneInfo("Europe/Berlin")
_LOCALE_DIR = Path(__file__).parent / "locale"


@cache
def translations(locale: str) -> gettext.NullTranslations:
    """The compiled catalogue of ``locale`` (German, the source language, needs none)."""
    po = _LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if locale == DEFAULT_LOCALE or not po.exists():
        return gettext.NullTranslations()
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


def locale_of(request: Request) -> str:
    """The language of this request: the switch's cookie, else ``Accept-Language``, else German."""
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in LOCALES:
        return chosen
    return "en" if wants_english(request) else DEFAULT_LOCALE


def local_time(instant: datetime) -> datetime:
    return instant.astimezone(BERLIN)


def fmt_date(value: date | datetime | None, locale: str) -> str:
    """A date as the users write it: ``24.11.2026`` in German, ``Nov 24, 2026`` in English."""
    if value is None:
        return "–"
    if isinstance(value, datetime):
        value = local_time(value).date()
    return format_date(value, format="medium" if locale == "en" else "dd.MM.yyyy", locale=locale)


def fmt_datetime(value: datetime | None, locale: str) -> str:
    if value is None:
        return "–"
    pattern = "dd.MM.yyyy, HH:mm" if locale == "de" else "medium"
    return format_datetime(local_time(value), format=pattern, locale=locale, tzinfo=BERLIN)


def fmt_number(value: float | int | None, locale: str, decimals: int = 1) -> str:
    if value is None:
        return "–"
    return format_decimal(
        round(value, decimals), format=f"#,##0.{'0' * decimals}" if decimals else "#,##0", locale=locale
    )


def N_(text: str) -> str:
    """Marks a German text for extraction where it is defined; it is translated where it is shown."""
    return text


def pick(de: str | None, en: str | None, locale: str) -> str:
    """A label from a process definition in the page's language (definitions give German and, optionally, English)."""
    return (en or de or "") if locale == "en" else (de or en or "")


__all__ = [
    "DEFAULT_LOCALE",
    "LANGUAGE_COOKIE",
    "LOCALES",
    "N_",
    "fmt_date",
    "fmt_datetime",
    "fmt_number",
    "locale_of",
    "pick",
    "translations",
]
