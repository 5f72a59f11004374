"""Logging in with the municipality's account: single sign-on through its OpenID Connect provider.

Only when ``KIMFLOW_OIDC_ISSUER`` is set (:func:`api.oidc.client_for`); the login page then
offers "Mit dem Konto der Kommune anmelden" beside the password form. The flow
(authorization code with PKCE, all checks in :mod:`api.oidc`):

1. ``GET /anmelden/sso`` starts a login (``state``, ``nonce``, PKCE verifier) and keeps it,
   with the page the user wanted, in a signed, ``HttpOnly`` cookie for ten minutes, bound to
   this browser and only sent to these two paths; then off to the provider.
2. ``GET /anmelden/sso/zurueck`` is where the provider sends the browser back. The cookie's
   signature and the provider's answer are checked, the user gets a local account
   (:meth:`engine.accounts.Accounts.sso_account`: role and team from the provider, no
   password; a disabled account refuses), and the session starts exactly as after a password
   login (:func:`api.web.session.start_session`). The pending cookie is deleted either way:
   one login, one use. Refusals re-render the login page with a German message (401, 403 for
   a user without a kimflow role, 503 while the provider is unreachable).

The callback URL is built from the request (``<scheme>://<host>/anmelden/sso/zurueck``) and
must be registered at the provider exactly so; behind a reverse proxy the proxy must pass
``X-Forwarded-Proto``/``Host`` (uvicorn trusts them from ``FORWARDED_ALLOW_IPS``).

Logging out (:func:`api.web.routes.account.logout`) of a session begun here also sends the
browser to the provider's logout (:func:`provider_logout_url`), so the next person at a
shared computer is not let in by the provider's still-open session.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import oidc
from api.deps import AccountsDep, SettingsDep
from api.errors import logger
from api.web.i18n import N_
from api.web.session import (
    SESSION_LIFETIME,
    cookie_is_secure,
    safe_next,
    sign,
    start_session,
    unsign,
)
from api.web.templating import HOME, render
from engine.accounts import InvalidAccount, InvalidCredentials

router = APIRouter(include_in_schema=False)

#: The login in progress (signed): sent only to the two SSO paths, for :data:`api.oidc.LOGIN_TIMEOUT`.
PENDING_COOKIE = "kimflow_sso_login"
PENDING_PATH = "/anmelden/sso"
PENDING_PURPOSE = "sso-login"
#: Marks a session begun with single sign-on, so logging out ends the provider's session too.
SSO_SESSION_COOKIE = "kimflow_sso"

MESSAGES = {
    "expired": N_(
        "Die Anmeldung mit dem Konto der Kommune ist abgelaufen oder wurde nicht in diesem Browser begonnen. "
        "Bitte versuchen Sie es noch einmal."
    ),
    "cancelled": N_("Die Anmeldung mit dem Konto der Kommune wurde abgebrochen."),
    "failed": N_("Die Anmeldung mit dem Konto der Kommune ist fehlgeschlagen. Bitte versuchen Sie es noch einmal."),
    "disabled": N_("Ihr Konto ist in kimflow gesperrt. Bitte wenden Sie sich an die Administration."),
    "no-role": N_(
        "Sie sind bei der Kommune angemeldet, aber Ihr Konto hat keine Rolle in kimflow. "
        "Bitte wenden Sie sich an die Administration."
    ),
    "team": N_(
        "Ihr Konto ist bei der Kommune mehreren Teams zugeordnet; kimflow braucht genau eines. "
        "Bitte wenden Sie sich an die Administration."
    ),
    "account": N_(
        "Die Angaben der Kommune zu Ihrem Konto (Name oder Team) kann kimflow nicht übernehmen. "
        "Bitte wenden Sie sich an die Administration."
    ),
    "unreachable": N_(
        "Der Anmeldedienst der Kommune ist gerade nicht erreichbar. Bitte versuchen Sie es später noch einmal "
        "oder melden Sie sich mit Benutzername und Passwort an."
    ),
}


def _client(request: Request) -> oidc.OidcClient:
    client = oidc.client_for(request.app)
    if client is None:
        raise StarletteHTTPException(404)  # single sign-on is off: these pages do not exist
    return client


def _refused(request: Request, error: oidc.OidcError, target: str) -> Response:
    """The login page again, saying why single sign-on did not let the user in."""
    logger.warning("web single sign-on refused: %s (%s)", error, error.reason)
    if isinstance(error, oidc.OidcUnavailable):
        key = "unreachable"
    elif isinstance(error, oidc.OidcForbidden):
        key = "team" if error.reason == "team" else "no-role"
    elif error.reason == "state":
        key = "expired"
    elif error.reason == "disabled":
        key = "disabled"
    elif error.reason == "account":
        key = "account"
    elif error.reason == "provider-error" and request.query_params.get("error") == "access_denied":
        key = "cancelled"
    else:
        key = "failed"
    return render(
        request,
        "account/login.html",
        status_code=error.status,
        next_url=target,
        error=MESSAGES[key],
        sso_failed=True,
        name="",
    )


def _local_target(weiter: Any) -> str:
    return safe_next(weiter if isinstance(weiter, str) else None)


def _no_store(response: Response) -> Response:
    # Nothing of a login (the provider's URL with state and challenge, a fresh session) is cached.
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/anmelden/sso", name="sso_start")
def sso_start(request: Request, settings: SettingsDep, weiter: str = "/") -> Response:
    """Start a login at the provider and remember it in a signed cookie of this browser."""
    client = _client(request)
    target = _local_target(weiter)
    try:
        pending = client.begin_login(str(request.url_for("sso_callback")))
    except oidc.OidcError as exc:
        return _no_store(_refused(request, exc, target))
    response = RedirectResponse(pending.authorize_url, status_code=303)
    response.set_cookie(
        PENDING_COOKIE,
        sign(settings, PENDING_PURPOSE, {"login": pending.to_dict(), "weiter": target}),
        max_age=int(oidc.LOGIN_TIMEOUT),
        httponly=True,
        secure=cookie_is_secure(settings),
        # Lax, not Strict: the callback is a top-level navigation coming from the provider's
        # site, and a Strict cookie would not be sent with it.
        samesite="lax",
        path=PENDING_PATH,
    )
    return _no_store(response)


@router.get("/anmelden/sso/zurueck", name="sso_callback")
def sso_callback(request: Request, accounts: AccountsDep, settings: SettingsDep) -> Response:
    """The provider's answer: check it, make or refresh the local account, start the session."""
    client = _client(request)
    saved: Any = unsign(settings, PENDING_PURPOSE, request.cookies.get(PENDING_COOKIE))
    target = _local_target(saved.get("weiter")) if isinstance(saved, dict) else "/"
    try:
        if not isinstance(saved, dict):
            raise oidc.OidcInvalid("state", "no signed login in progress in this browser")
        result = client.finish_login(oidc.PendingLogin.from_dict(saved.get("login")), dict(request.query_params))
        vouched = oidc.with_local_account(result.user, accounts)
        try:
            user = accounts.sso_account(vouched.name, role=vouched.role, team=vouched.team)
        except InvalidCredentials:  # disabled since with_local_account looked
            raise oidc.OidcInvalid("disabled", f"the account '{vouched.name}' is disabled in kimflow") from None
        except InvalidAccount as exc:
            raise oidc.OidcForbidden("account", f"the provider's account does not fit kimflow: {exc}") from None
    except oidc.OidcError as exc:
        response = _refused(request, exc, target)
    else:
        issued = accounts.issue_token(user, SESSION_LIFETIME)
        request.state.user, request.state.session_token = user, issued.token  # the page's header shows them
        destination = HOME.get(user.role, "/") if target == "/" else target
        # Not a 303 to the destination: this response ends a redirect chain that began at the
        # provider's site, and Chromium treats a redirect at the end of such a chain as
        # cross-site, so the SameSite=Strict session cookie would not go with it and the first
        # page would ask for a login again. A page of our own that continues (meta refresh,
        # or the link without it) makes the next request a same-site navigation.
        response = render(request, "account/sso_continue.html", destination=destination)
        start_session(response, issued.token, settings)
        response.set_cookie(
            SSO_SESSION_COOKIE,
            "1",
            max_age=int(SESSION_LIFETIME.total_seconds()),
            httponly=True,
            secure=cookie_is_secure(settings),
            samesite="strict",
            path="/",
        )
        # The callback URL carries the code and state; no need to tell the next page about it.
        response.headers["Referrer-Policy"] = "no-referrer"
    response.delete_cookie(PENDING_COOKIE, path=PENDING_PATH)
    return _no_store(response)


def provider_logout_url(request: Request) -> str | None:
    """Where logging out continues if the session began with single sign-on: the provider's logout.

    None for password sessions, when single sign-on is off, when the provider offers no logout,
    or while it is unreachable (kimflow's own session ends anyway). No ID token is kept for
    ``id_token_hint``: kimflow's client id names the application instead, and the provider
    asks the user to confirm.
    """
    if not request.cookies.get(SSO_SESSION_COOKIE):
        return None
    client = oidc.client_for(request.app)
    if client is None:
        return None
    try:
        return client.logout_url(None, str(request.url_for("home")))
    except oidc.OidcError as exc:
        logger.warning("single sign-on logout at the provider skipped: %s", exc)
        return None


def forget_sso_session(response: Response) -> None:
    response.delete_cookie(SSO_SESSION_COOKIE, path="/")


__all__ = ["PENDING_COOKIE", "SSO_SESSION_COOKIE", "forget_sso_session", "provider_logout_url", "router"]
