"""Browser sessions: a login cookie holding an API token, and CSRF protection for forms.

A web login issues the same kind of token as ``POST /api/v1/auth/token`` (stored hashed,
revocable, disabled users lose it at once), but hands it to the browser in an ``HttpOnly``,
``SameSite=Strict`` cookie — ``Secure`` unless the server runs in ``dev``/``test`` on plain
HTTP — so page scripts never see it. Logging out deletes the token in the database, not just
the cookie.

CSRF: every form carries a token that is an HMAC of the session token under the server's
secret key (the "synchronizer token" without server state). A POST without the right
token is refused with 403 before anything happens. ``SameSite=Strict`` already keeps other
sites' requests from carrying the cookie; the token is the second, independent guard.

Signed values (:func:`sign`, :func:`unsign`): data a browser keeps for the server for a
while — the single sign-on login in progress — carries an HMAC under the same secret key,
bound to its purpose, so the browser can hand it back but not change or invent it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Form, Header, Request, Response

from api.deps import AccountsDep, SettingsDep
from api.settings import Settings
from engine.accounts import InvalidCredentials, User

SESSION_COOKIE = "kimflow_session"
CSRF_FIELD = "csrf_token"
# A working day: a caseworker logs in once in the morning (the API's bearer tokens stay short).
SESSION_LIFETIME = timedelta(hours=9)


class LoginRequired(Exception):
    """No valid session: the page answers with a redirect to the login form."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class PageForbidden(Exception):
    """The user's role may not see this page (rendered as a 403 page, never as a redirect loop)."""

    def __init__(self, user: User) -> None:
        super().__init__(user.role)
        self.user = user


class CsrfRejected(Exception):
    """A form arrived without the session's CSRF token."""


def cookie_is_secure(settings: Settings) -> bool:
    """Secure cookies everywhere but local development and tests on plain HTTP."""
    return settings.environment == "production"


def csrf_token(settings: Settings, session_token: str) -> str:
    return hmac.new(settings.secret_key.encode(), session_token.encode(), hashlib.sha256).hexdigest()


def start_session(response: Response, token: str, settings: Settings) -> None:
    """Hand the browser its session: ``token`` (from ``Accounts.issue_token``) in the session cookie."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        httponly=True,
        secure=cookie_is_secure(settings),
        samesite="strict",
        path="/",
    )


def _signature(settings: Settings, purpose: str, payload: str) -> str:
    # The purpose is part of what is signed, so a value signed for one use (or a CSRF token,
    # the HMAC of a session token) is never accepted for another.
    message = f"{purpose}\n{payload}".encode()
    return hmac.new(settings.secret_key.encode(), message, hashlib.sha256).hexdigest()


def sign(settings: Settings, purpose: str, data: Any) -> str:
    """``data`` (JSON) as a cookie-safe text with an HMAC under the server's secret key, for ``purpose``.

    Signed, not encrypted: the browser can read what it keeps, so keep it in ``HttpOnly``
    cookies and put nothing in it that the user may not see.
    """
    # Base64url without padding: only characters a cookie carries unquoted.
    payload = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode("ascii").rstrip("=")
    return f"{payload}.{_signature(settings, purpose, payload)}"


def unsign(settings: Settings, purpose: str, signed: str | None) -> Any:
    """The data of a :func:`sign`-ed text for ``purpose``, or None if it is missing, altered or not one."""
    payload, _, signature = (signed or "").rpartition(".")
    if not payload or not hmac.compare_digest(signature.encode(), _signature(settings, purpose, payload).encode()):
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(payload.encode("ascii") + b"=" * (-len(payload) % 4)))
    except (binascii.Error, UnicodeError, ValueError):
        return None


def login_path(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/anmelden?weiter={quote(target, safe='')}"


def session_user(request: Request, accounts: AccountsDep) -> User:
    """The user of the session cookie; otherwise the browser goes to the login form."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        try:
            user = accounts.resolve_token(token)
        except InvalidCredentials:
            pass
        else:
            request.state.user = user
            request.state.session_token = token
            return user
    raise LoginRequired(login_path(request))


SessionUser = Annotated[User, Depends(session_user)]


def remember_user(request: Request) -> User | None:
    """The session's user, if any, for pages anyone may see (so they still show the user's navigation)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        user: User = request.app.state.accounts.resolve_token(token)
    except InvalidCredentials:
        return None
    request.state.user = user
    request.state.session_token = token
    return user


def page_for(*roles: str):  # type: ignore[no-untyped-def]
    """A dependency admitting only these roles to a page (others see a 403 page)."""
    allowed = frozenset(roles)

    def dependency(user: SessionUser) -> User:
        if user.role not in allowed:
            raise PageForbidden(user)
        return user

    return dependency


def check_csrf(
    request: Request,
    settings: SettingsDep,
    token: Annotated[str, Form(alias=CSRF_FIELD)] = "",
    header: Annotated[str, Header(alias="X-CSRF-Token")] = "",
) -> None:
    """Refuses a form post whose CSRF token (form field, or header for htmx requests) is not the session's."""
    session_token = request.cookies.get(SESSION_COOKIE, "")
    expected = csrf_token(settings, session_token) if session_token else ""
    if not expected or not hmac.compare_digest(token or header, expected):
        raise CsrfRejected()


CsrfChecked = Depends(check_csrf)


def safe_next(target: str | None) -> str:
    """Only local paths as the target after login (no open redirect to another site).

    Browsers drop tabs and line breaks from URLs, so ``/<tab>/evil.example`` would become
    ``//evil.example``: anything not printable is refused too.
    """
    if (
        target
        and target.isprintable()
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
    ):
        return target
    return "/"


__all__ = [
    "CSRF_FIELD",
    "SESSION_COOKIE",
    "SESSION_LIFETIME",
    "CsrfChecked",
    "CsrfRejected",
    "LoginRequired",
    "PageForbidden",
    "SessionUser",
    "cookie_is_secure",
    "csrf_token",
    "page_for",
    "remember_user",
    "safe_next",
    "session_user",
    "sign",
    "start_session",
    "unsign",
]
