"""Logging in and out, the language switch, the start page and the accessibility statement."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from api.deps import AccountsDep, SettingsDep
from api.web import i18n
from api.web.i18n import N_
from api.web.routes import sso
from api.web.session import (
    SESSION_COOKIE,
    SESSION_LIFETIME,
    CsrfChecked,
    SessionUser,
    remember_user,
    safe_next,
    start_session,
)
from api.web.templating import HOME, render
from engine.accounts import InvalidCredentials

router = APIRouter(include_in_schema=False)

# Where users report barriers (BITV NRW requires a feedback contact); the municipality sets its own.
ACCESSIBILITY_CONTACT = "barrierefreiheit@kommune.example"


@router.get("/")
def home(user: SessionUser) -> Response:
    return RedirectResponse(HOME.get(user.role, "/barrierefreiheit"), status_code=303)


@router.get("/anmelden")
def login_form(request: Request, weiter: str = "/") -> Response:
    return render(request, "account/login.html", next_url=safe_next(weiter), error=None, name="")


@router.post("/anmelden")
async def login(
    request: Request,
    accounts: AccountsDep,
    settings: SettingsDep,
    name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    weiter: Annotated[str, Form()] = "/",
) -> Response:
    """Check the password; on success set the session cookie and go where the user wanted to go."""
    try:
        user = await run_in_threadpool(accounts.authenticate, name.strip(), password)
    except InvalidCredentials:
        return render(
            request,
            "account/login.html",
            status_code=401,
            next_url=safe_next(weiter),
            error=N_("Benutzername oder Passwort stimmt nicht, oder das Konto ist gesperrt."),
            name=name,
        )
    issued = await run_in_threadpool(accounts.issue_token, user, SESSION_LIFETIME)
    target = safe_next(weiter)
    response = RedirectResponse(HOME.get(user.role, "/") if target == "/" else target, status_code=303)
    start_session(response, issued.token, settings)
    sso.forget_sso_session(response)  # this session is not the provider's: logging out stays here
    return response


@router.post("/abmelden", dependencies=[CsrfChecked])
def logout(request: Request, user: SessionUser, accounts: AccountsDep) -> Response:
    """End the session in the database (the token stops working everywhere), then drop the cookie.

    A session begun with single sign-on also ends the provider's session (its logout page), so
    the next person at this computer is not let in by the provider without a password.
    """
    accounts.revoke_token(request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse(sso.provider_logout_url(request) or "/anmelden", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    sso.forget_sso_session(response)
    return response


@router.post("/sprache")
def switch_language(sprache: Annotated[str, Form()] = "de", weiter: Annotated[str, Form()] = "/") -> Response:
    """Remember the chosen language for a year (a preference, not personal data)."""
    response = RedirectResponse(safe_next(weiter), status_code=303)
    if sprache in i18n.LOCALES:
        response.set_cookie(i18n.LANGUAGE_COOKIE, sprache, max_age=365 * 24 * 3600, samesite="lax", path="/")
    return response


@router.get("/barrierefreiheit")
def accessibility_statement(request: Request) -> Response:
    """The Erklärung zur Barrierefreiheit (BITV NRW § 12a BGG NRW), reachable without login."""
    remember_user(request)
    return render(request, "account/accessibility.html", contact=ACCESSIBILITY_CONTACT)
