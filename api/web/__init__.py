"""The web UI: server-rendered German pages for caseworkers, coordinators and project groups.

Pages are Jinja2 templates filled by routes that call the same engine functions as the
JSON API (:mod:`api.routes`), with the same role sets (:mod:`api.security`) and the same
access log. The little script there is comes from htmx (vendored under ``static/vendor``,
BSD-0 licence); every page works without it, htmx only saves round trips (live validation
in the editor, filters). Nothing is loaded from the internet.

:func:`install` adds the pages, ``/static`` and HTML error pages for browser paths to an
app built by :func:`api.app.create_app`; API paths keep their problem documents.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.web.i18n import N_
from api.web.session import CsrfRejected, LoginRequired, PageForbidden, remember_user
from api.web.templating import render

STATIC = Path(__file__).parent / "static"

_HTTP_PAGES = {
    404: (N_("Seite nicht gefunden"), N_("Diese Seite gibt es nicht. Vielleicht ist der Link veraltet.")),
    405: (N_("Nicht möglich"), N_("Diese Seite kann so nicht aufgerufen werden.")),
}


def is_page_request(request: Request) -> bool:
    """Browser pages are everything outside ``/api`` (which always answers with JSON)."""
    path = request.url.path
    return not (path == "/api" or path.startswith("/api/"))


def install(app: FastAPI) -> None:
    from api.web.routes import account, cases, processes, reports, sso, users

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (account, sso, cases, processes, reports, users):
        app.include_router(module.router)

    async def on_login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        if request.headers.get("hx-request"):
            # htmx follows redirects inside the page; ask it to load the login page as a whole.
            return Response(status_code=401, headers={"HX-Redirect": exc.next_url})
        return RedirectResponse(exc.next_url, status_code=303)

    async def on_forbidden(request: Request, exc: Exception) -> Response:
        return render(
            request,
            "error.html",
            status_code=403,
            heading=N_("Kein Zugriff"),
            message=N_("Ihre Rolle darf diese Seite nicht sehen."),
            correlation=None,
        )

    async def on_csrf(request: Request, exc: Exception) -> Response:
        return render(
            request,
            "error.html",
            status_code=403,
            heading=N_("Formular abgelaufen"),
            message=N_(
                "Das Formular gehört nicht zu Ihrer Sitzung (abgelaufen oder von einer anderen Seite). "
                "Bitte laden Sie die Seite neu und versuchen Sie es noch einmal."
            ),
            correlation=None,
        )

    app.add_exception_handler(LoginRequired, on_login_required)
    app.add_exception_handler(PageForbidden, on_forbidden)
    app.add_exception_handler(CsrfRejected, on_csrf)

    json_http = app.exception_handlers[StarletteHTTPException]
    json_unexpected = app.exception_handlers[Exception]

    async def on_http(request: Request, exc: Exception) -> Any:
        assert isinstance(exc, StarletteHTTPException)
        if not is_page_request(request) or exc.status_code not in _HTTP_PAGES:
            return await json_http(request, exc)
        remember_user(request)
        heading, message = _HTTP_PAGES[exc.status_code]
        return render(
            request, "error.html", status_code=exc.status_code, heading=heading, message=message, correlation=None
        )

    async def on_unexpected(request: Request, exc: Exception) -> Any:
        """A page that fails shows a German error page; the correlation id is the one the log carries."""
        problem = await json_unexpected(request, exc)
        if not is_page_request(request):
            return problem
        correlation = json.loads(bytes(problem.body)).get("correlation_id")
        return render(
            request,
            "error.html",
            status_code=500,
            heading=N_("Unerwarteter Fehler"),
            message=N_("Das hat nicht geklappt. Bitte versuchen Sie es noch einmal oder melden Sie die Kennung."),
            correlation=correlation,
        )

    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)


__all__ = ["install", "is_page_request"]
