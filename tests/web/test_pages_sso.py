"""Logging in to the web interface with the municipality's account, on SQLite and PostgreSQL.

Against the real OpenID Connect provider of ``tests/api/test_oidc.py`` (panva's
``oidc-provider`` under Node.js; skipped without it unless ``KIMFLOW_REQUIRE_OIDC=1``). A
:class:`Browser` goes where the pages send it, by hand: kimflow through the test client at
``https://kimflow.test`` (the callback URL the provider knows), the provider over real HTTP,
each with its own cookies, as a browser keeps them per site.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import socket
import urllib.parse
from typing import Any

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient

from api import oidc
from api.app import create_app
from api.settings import Settings
from api.web.routes.sso import PENDING_COOKIE, PENDING_PURPOSE, SSO_SESSION_COOKIE
from api.web.session import CSRF_FIELD, SESSION_COOKIE, csrf_token, sign, unsign
from engine.accounts import NO_PASSWORD, InvalidCredentials
from engine.store import users_t
from tests.api.client import Api
from tests.api.conftest import PASSWORD
from tests.api.test_oidc import CLIENT_ID, WEB_REDIRECT, Provider, idp, oidc_settings, provider_factory

__all__ = ["idp", "provider_factory"]  # the provider's fixtures, used here as well

KIMFLOW = "https://kimflow.test"
LOGIN_FORM = 'name="prompt" value="login"'
META_REFRESH = re.compile(r'<meta http-equiv="refresh" content="0; url=([^"]+)">')


@pytest.fixture
def test_settings(database_url: str, idp: Provider) -> Settings:
    """The ``api`` fixture's app with single sign-on at ``idp``."""
    return oidc_settings(database_url, idp.issuer)


class Browser:
    """One browser: kimflow's pages through the test client, the provider's over HTTP, redirects by hand."""

    def __init__(self, api: Api) -> None:
        self.api = api
        # The app is already running (the ``api`` fixture's client started it); this is a second tab.
        self.kimflow = TestClient(api.client.app, base_url=KIMFLOW, follow_redirects=False)
        self.provider = httpx.Client(follow_redirects=False, timeout=10)
        self.provider_pages: list[str] = []

    def close(self) -> None:
        self.provider.close()

    def start(self, path: str = "/anmelden/sso") -> Any:
        """Click "Mit dem Konto der Kommune anmelden"."""
        return self.kimflow.get(path)

    def at_provider(self, response: Any, username: str) -> str:
        """Follow the provider's pages (signing in as ``username`` if it asks) until it sends the browser back."""
        self.provider_pages = []
        for _ in range(10):
            location = response.headers.get("location")
            assert location, f"stopped at {response.status_code}: {response.text[:300]}"
            url = urllib.parse.urljoin(str(response.url), location)
            if url.startswith(KIMFLOW):
                return url
            response = self.provider.get(url)
            if response.status_code == 200 and LOGIN_FORM in response.text:
                self.provider_pages.append("login")
                response = self.provider.post(url, data={"prompt": "login", "login": username, "password": "egal"})
        raise AssertionError("too many redirects at the provider")

    def login(self, username: str, path: str = "/anmelden/sso") -> Any:
        """The whole single sign-on: kimflow's answer to the provider's callback."""
        started = self.start(path)
        assert started.status_code == 303, started.text
        return self.kimflow.get(self.at_provider(started, username))

    def page(self, path: str) -> Any:
        return self.kimflow.get(path)

    def csrf(self) -> str:
        return csrf_token(self.api.client.app.state.settings, self.kimflow.cookies[SESSION_COOKIE])


@pytest.fixture
def tab(api: Api) -> Any:
    """A :class:`Browser` (not named ``browser``: that is Playwright's fixture)."""
    made = Browser(api)
    yield made
    made.close()


def cookie_header(response: Any, name: str) -> str:
    """The ``Set-Cookie`` header for ``name`` (lower case), to check its attributes."""
    found = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    assert len(found) == 1, response.headers.get_list("set-cookie")
    return found[0].lower()


def continues_to(response: Any) -> str:
    """Where the page after the callback goes on to: its meta refresh, which its link repeats."""
    assert response.status_code == 200, response.text
    target = META_REFRESH.search(response.text)
    assert target, response.text
    assert f'<a href="{target.group(1)}">' in response.text
    return target.group(1)


def stored_hash(api: Api, name: str) -> str:
    with api.engine.store.read() as conn:
        return str(conn.execute(users_t.select().where(users_t.c.name == name)).one().password_hash)


# -- the login page ------------------------------------------------------------------------------


def test_the_login_page_offers_the_municipal_account_only_when_sso_is_on(tab: Browser, database_url: str) -> None:
    page = tab.page("/anmelden?weiter=%2Fbarrierefreiheit%3Fx%3D1")
    assert page.status_code == 200
    assert "Mit dem Konto der Kommune anmelden" in page.text
    assert 'href="/anmelden/sso?weiter=/barrierefreiheit%3Fx%3D1"' in page.text
    assert 'name="password"' in page.text  # the password form stays

    plain_settings = Settings(environment="test", database_url=database_url, tick_enabled=False)
    with TestClient(create_app(plain_settings), follow_redirects=False) as off:
        plain = off.get("/anmelden")
        assert plain.status_code == 200 and 'name="password"' in plain.text
        assert "Mit dem Konto der Kommune" not in plain.text and "/anmelden/sso" not in plain.text
        assert off.get("/anmelden/sso").status_code == 404
        assert off.get("/anmelden/sso/zurueck?code=x&state=y").status_code == 404


# -- a whole login -------------------------------------------------------------------------------


def test_a_caseworker_logs_in_through_the_provider(tab: Browser, idp: Provider, api: Api) -> None:
    started = tab.start()
    assert started.status_code == 303
    authorize = started.headers["location"]
    assert authorize.startswith(idp.metadata["authorization_endpoint"] + "?")
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(authorize).query))
    assert query["redirect_uri"] == WEB_REDIRECT and query["client_id"] == CLIENT_ID
    pending = cookie_header(started, PENDING_COOKIE)
    assert "httponly" in pending and "samesite=lax" in pending
    assert "path=/anmelden/sso" in pending and "max-age=600" in pending
    assert started.headers["cache-control"] == "no-store"

    callback = tab.kimflow.get(tab.at_provider(started, "amira"))
    assert tab.provider_pages == ["login"]
    # Not a redirect: a page of kimflow's own goes on, so the next request is a same-site one
    # and carries the SameSite=Strict session cookie.
    assert continues_to(callback) == "/faelle"
    assert "Sie sind angemeldet" in callback.text and "amira" in callback.text
    session = cookie_header(callback, SESSION_COOKIE)
    assert "httponly" in session and "samesite=strict" in session and "path=/" in session
    assert "max-age=32400" in session
    gone = cookie_header(callback, PENDING_COOKIE)
    assert "max-age=0" in gone and "path=/anmelden/sso" in gone
    assert PENDING_COOKIE not in tab.kimflow.cookies
    assert callback.headers["cache-control"] == "no-store"
    assert callback.headers["referrer-policy"] == "no-referrer"

    # The provider's user has a local account now: role and team from the provider, no password.
    account = api.accounts.get_user("amira")
    assert (account.role, account.team, account.disabled) == ("caseworker", "nord", False)
    assert stored_hash(api, "amira") == NO_PASSWORD
    assert api.accounts.resolve_token(tab.kimflow.cookies[SESSION_COOKIE]) == account

    # The session works like a password login's.
    home = tab.page("/")
    assert home.status_code == 303 and home.headers["location"] == "/faelle"
    statement = tab.page("/barrierefreiheit")
    assert statement.status_code == 200
    assert "amira · Fallmanagement" in statement.text and 'action="/abmelden"' in statement.text
    # Nobody logs in to that account with a password.
    refused = tab.kimflow.post("/anmelden", data={"name": "amira", "password": NO_PASSWORD})
    assert refused.status_code == 401


def test_the_page_the_user_wanted_comes_after_the_login(tab: Browser) -> None:
    target = continues_to(tab.login("kora", "/anmelden/sso?weiter=%2Fbarrierefreiheit%3Fx%3D1"))
    assert target == "/barrierefreiheit?x=1"
    assert "kora · Koordination" in tab.page(target).text
    for foreign in ("//evil.example/", "https://evil.example/", "/\t/evil.example", "/\\evil.example"):
        assert continues_to(tab.login("kora", f"/anmelden/sso?weiter={urllib.parse.quote(foreign)}")) == "/faelle"


def test_role_and_team_come_from_the_provider_at_every_login(tab: Browser, api: Api) -> None:
    # A local account of the same name is the same person; the provider's groups decide its role.
    local = api.accounts.add_user("kora", PASSWORD, role="caseworker", team="ost")
    continues_to(tab.login("kora"))
    account = api.accounts.get_user("kora")
    assert (account.id, account.role, account.team) == (local.id, "coordinator", None)
    assert tab.page("/").headers["location"] == "/faelle"
    assert "kora · Koordination" in tab.page("/barrierefreiheit").text


def test_a_user_without_a_kimflow_group_is_refused_in_german(tab: Browser, api: Api) -> None:
    refused = tab.login("hausmeister")
    assert refused.status_code == 403
    assert "Ihr Konto hat keine Rolle in kimflow" in refused.text
    assert 'role="alert"' in refused.text and 'name="password"' in refused.text
    assert SESSION_COOKIE not in tab.kimflow.cookies
    assert "max-age=0" in cookie_header(refused, PENDING_COOKIE)
    assert [u.name for u in api.accounts.list_users() if u.name == "hausmeister"] == []
    other = Browser(api)  # another person (the provider still knows the first one in this browser)
    try:
        several = other.login("zwei")
    finally:
        other.close()
    assert several.status_code == 403 and "mehreren Teams" in several.text


def test_english_refusal(tab: Browser) -> None:
    tab.kimflow.cookies.set("kimflow_lang", "en")
    refused = tab.login("hausmeister")
    assert refused.status_code == 403 and '<html lang="en">' in refused.text


# -- the login in progress: signed, bound to this browser, used once -----------------------------


def test_the_pending_login_cookie_is_signed(tab: Browser, api: Api) -> None:
    started = tab.start("/anmelden/sso?weiter=/barrierefreiheit")
    value = tab.kimflow.cookies[PENDING_COOKIE]
    settings = api.client.app.state.settings
    saved = unsign(settings, PENDING_PURPOSE, value)
    assert saved["weiter"] == "/barrierefreiheit"
    assert saved["login"]["authorize_url"] == started.headers["location"]
    # Valid for nothing else, under no other key, and not once changed.
    assert unsign(settings, "csrf", value) is None
    assert unsign(settings.model_copy(update={"secret_key": "x" * 40}), PENDING_PURPOSE, value) is None
    payload, signature = value.rsplit(".", 1)
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["weiter"] = "//evil.example/"
    altered = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")
    assert unsign(settings, PENDING_PURPOSE, f"{altered}.{signature}") is None
    assert unsign(settings, PENDING_PURPOSE, "") is None and unsign(settings, PENDING_PURPOSE, None) is None


def _forged(settings: Settings, value: str) -> str:
    """The pending login with another state, signed under another key (what an attacker can make)."""
    saved = unsign(settings, PENDING_PURPOSE, value)
    saved["login"]["state"] = "vom-angreifer"
    return sign(settings.model_copy(update={"secret_key": "angreifer-" * 4}), PENDING_PURPOSE, saved)


@pytest.mark.parametrize("cookie", ["missing", "forged", "altered", "another-login"])
def test_a_callback_without_this_browsers_login_is_refused(
    tab: Browser, api: Api, cookie: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = api.client.app.state.settings
    started = tab.start()
    callback = tab.at_provider(started, "amira")  # a real answer of the provider, with a valid code
    value = tab.kimflow.cookies[PENDING_COOKIE]
    tab.kimflow.cookies.clear()
    if cookie == "forged":
        tab.kimflow.cookies.set(PENDING_COOKIE, _forged(settings, value), path="/anmelden/sso")
    elif cookie == "altered":
        payload, signature = value.rsplit(".", 1)
        tab.kimflow.cookies.set(PENDING_COOKIE, f"{payload}.{'0' * len(signature)}", path="/anmelden/sso")
    elif cookie == "another-login":  # signed by kimflow, but for another login (login CSRF)
        other = Browser(api)
        other.start()
        tab.kimflow.cookies.set(PENDING_COOKIE, other.kimflow.cookies[PENDING_COOKIE], path="/anmelden/sso")
        other.close()
    with caplog.at_level(logging.WARNING, logger="kimflow.api"):
        refused = tab.kimflow.get(callback)
    assert refused.status_code == 401
    assert "abgelaufen oder wurde nicht in diesem Browser begonnen" in refused.text
    # Why, as the log says: the cookie that was sent is no login of kimflow's, or another one.
    why = "does not belong to this login" if cookie == "another-login" else "no signed login in progress"
    assert why in caplog.text
    assert SESSION_COOKIE not in tab.kimflow.cookies
    assert [u.name for u in api.accounts.list_users() if u.name == "amira"] == []


def test_a_login_is_used_once(tab: Browser, api: Api) -> None:
    started = tab.start()
    callback = tab.at_provider(started, "amira")
    value = tab.kimflow.cookies[PENDING_COOKIE]
    continues_to(tab.kimflow.get(callback))
    # The same answer with the same cookie again (a replay): the provider refuses the used code.
    tab.kimflow.cookies.set(PENDING_COOKIE, value, path="/anmelden/sso")
    replay = tab.kimflow.get(callback)
    assert replay.status_code == 401 and "fehlgeschlagen" in replay.text


def test_a_cancelled_login_says_so(tab: Browser, api: Api) -> None:
    tab.start()
    saved = unsign(api.client.app.state.settings, PENDING_PURPOSE, tab.kimflow.cookies[PENDING_COOKIE])
    state = saved["login"]["state"]
    cancelled = tab.kimflow.get(f"/anmelden/sso/zurueck?error=access_denied&state={state}")
    assert cancelled.status_code == 401 and "wurde abgebrochen" in cancelled.text


# -- locked out ---------------------------------------------------------------------------------


def test_a_disabled_local_account_cannot_log_in_with_sso(tab: Browser, api: Api) -> None:
    api.accounts.disable_user("cw_sued")  # the provider knows a cw_sued too
    refused = tab.login("cw_sued")
    assert refused.status_code == 401
    assert "Ihr Konto ist in kimflow gesperrt" in refused.text
    assert SESSION_COOKIE not in tab.kimflow.cookies
    assert api.accounts.get_user("cw_sued").disabled


def test_disabling_an_sso_account_ends_its_session_and_its_next_login(tab: Browser, api: Api) -> None:
    continues_to(tab.login("amira"))
    assert tab.page("/").headers["location"] == "/faelle"
    api.accounts.disable_user("amira")
    assert tab.page("/").headers["location"].startswith("/anmelden")
    again = Browser(api)
    try:
        assert again.login("amira").status_code == 401
    finally:
        again.close()


def test_an_unreachable_provider_is_503_with_a_german_page(tab: Browser, api: Api, database_url: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    api.client.app.state.oidc_client = oidc.OidcClient(
        oidc_settings(database_url, f"http://127.0.0.1:{closed_port}/realms/kommune"), timeout=2
    )
    page = tab.start("/anmelden/sso?weiter=/barrierefreiheit")
    assert page.status_code == 503
    assert "Der Anmeldedienst der Kommune ist gerade nicht erreichbar" in page.text
    assert 'name="weiter" value="/barrierefreiheit"' in page.text  # the password form still leads there
    assert PENDING_COOKIE not in tab.kimflow.cookies


# -- logging out ----------------------------------------------------------------------------------


def _confirm_provider_logout(tab: Browser, logout_url: str) -> str:
    """Say "yes, sign me out" on the provider's logout page; where it sends the browser then."""
    page = tab.provider.get(logout_url)
    assert page.status_code == 200, page.text
    action = re.search(r'<form[^>]*action="([^"]+)"', page.text)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    assert action, page.text
    done = tab.provider.post(urllib.parse.urljoin(logout_url, action.group(1)), data={**fields, "logout": "yes"})
    assert done.status_code in (302, 303), done.text
    return str(done.headers["location"])


def test_logging_out_ends_the_providers_session_too(tab: Browser, idp: Provider, api: Api) -> None:
    continues_to(tab.login("amira"))
    assert tab.provider_pages == ["login"]
    assert "samesite=strict" in cookie_header(tab.login("amira"), SSO_SESSION_COOKIE)
    assert tab.provider_pages == []  # the provider's session is still open: no password asked
    token = tab.kimflow.cookies[SESSION_COOKIE]

    out = tab.kimflow.post("/abmelden", data={CSRF_FIELD: tab.csrf()})
    assert out.status_code == 303
    logout_url = out.headers["location"]
    assert logout_url.startswith(idp.metadata["end_session_endpoint"] + "?")
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(logout_url).query))
    assert params == {"client_id": CLIENT_ID, "post_logout_redirect_uri": KIMFLOW + "/"}
    assert SESSION_COOKIE not in tab.kimflow.cookies and SSO_SESSION_COOKIE not in tab.kimflow.cookies
    with pytest.raises(InvalidCredentials):  # the token is gone from the database
        api.accounts.resolve_token(token)

    assert _confirm_provider_logout(tab, logout_url) == KIMFLOW + "/"
    assert tab.page("/").headers["location"].startswith("/anmelden")
    continues_to(tab.login("amira"))
    assert tab.provider_pages == ["login"]  # signed out at the provider: the password again


def test_a_password_session_logs_out_without_the_provider(tab: Browser, api: Api) -> None:
    continues_to(tab.login("amira"))  # earlier, in the same browser, someone used the municipal account
    login = tab.kimflow.post("/anmelden", data={"name": "cw_nord", "password": PASSWORD, "weiter": "/"})
    assert login.status_code == 303 and login.headers["location"] == "/faelle"
    session = cookie_header(login, SESSION_COOKIE)
    assert "httponly" in session and "samesite=strict" in session and "max-age=32400" in session
    assert SSO_SESSION_COOKIE not in tab.kimflow.cookies
    out = tab.kimflow.post("/abmelden", data={CSRF_FIELD: tab.csrf()})
    assert out.status_code == 303 and out.headers["location"] == "/anmelden"
