"""Rendering pages: one Jinja2 environment per language, autoescaped, with the helpers every page uses.

Each language has its own environment with that language's gettext catalogue installed
(``{% trans %}`` and ``_()`` in templates), so rendering never switches catalogues per
request and templates are compiled once per language.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from api.web import i18n
from api.web.i18n import N_
from api.web.session import CSRF_FIELD, csrf_token
from engine.accounts import ADMIN, CASEWORKER, COORDINATOR, PROJECTGROUP

TEMPLATES = Path(__file__).parent / "templates"

#: The main navigation by role: (path, German label). Labels are translated in the template.
NAVIGATION: dict[str, tuple[tuple[str, str], ...]] = {
    CASEWORKER: (("/faelle", N_("Arbeitsliste")), ("/faelle/neu", N_("Fall eröffnen")), ("/prozesse", N_("Prozesse"))),
    COORDINATOR: (
        ("/faelle", N_("Arbeitsliste")),
        ("/faelle/neu", N_("Fall eröffnen")),
        ("/prozesse", N_("Prozesse")),
        ("/auswertung", N_("Auswertung")),
    ),
    PROJECTGROUP: (("/auswertung", N_("Auswertung")), ("/auswertung/vergleich", N_("Vergleich"))),
    ADMIN: (("/konten", N_("Konten")), ("/konten/zugriffsprotokoll", N_("Zugriffsprotokoll"))),
}

#: The roles as users call them (translated in the template).
ROLE_LABELS = {
    CASEWORKER: N_("Fallmanagement"),
    COORDINATOR: N_("Koordination"),
    PROJECTGROUP: N_("Projektgruppe"),
    ADMIN: N_("Administration"),
}

#: Where each role starts after logging in.
HOME: dict[str, str] = {CASEWORKER: "/faelle", COORDINATOR: "/faelle", PROJECTGROUP: "/auswertung", ADMIN: "/konten"}


@cache
def environment(locale: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.translations(locale), newstyle=True)  # type: ignore[attr-defined]
    env.filters["datum"] = lambda value: i18n.fmt_date(value, locale)
    env.filters["zeitpunkt"] = lambda value: i18n.fmt_datetime(value, locale)
    env.filters["zahl"] = lambda value, decimals=1: i18n.fmt_number(value, locale, decimals)
    env.globals["pick"] = lambda de, en=None: i18n.pick(de, en, locale)
    env.globals["locale"] = locale
    return env


def gettext_for(request: Request) -> Any:
    """``_`` for texts built in Python (flash messages, reasons) in the request's language."""
    return i18n.translations(i18n.locale_of(request)).gettext


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render ``template`` with the page's user, language, navigation and CSRF token."""
    locale = i18n.locale_of(request)
    user = getattr(request.state, "user", None)
    session_token = getattr(request.state, "session_token", None)
    settings = request.app.state.settings
    navigation = NAVIGATION.get(user.role, ()) if user else ()
    path = request.url.path
    # The navigation entry of the page's section: the longest entry the path lies under.
    active_nav = max(
        (entry for entry, _ in navigation if path == entry or path.startswith(entry + "/")), key=len, default=None
    )
    html = (
        environment(locale)
        .get_template(template)
        .render(
            request=request,
            user=user,
            navigation=navigation,
            active_nav=active_nav,
            csrf_field=CSRF_FIELD,
            csrf_token=csrf_token(settings, session_token) if session_token else "",
            current_path=request.url.path,
            role_labels=ROLE_LABELS,
            **{"flash": None, **context},
        )
    )
    return HTMLResponse(html, status_code=status_code, headers={"Content-Language": locale})


__all__ = ["HOME", "NAVIGATION", "ROLE_LABELS", "environment", "gettext_for", "render"]
