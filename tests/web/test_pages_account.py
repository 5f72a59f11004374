"""Login, logout and CSRF over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from api.web.session import SESSION_COOKIE
from tests.api.conftest import PASSWORD
from tests.web.pages import WebSession


def test_login_sets_an_httponly_strict_cookie_and_sends_the_user_home(api) -> None:
    response = api.client.post(
        "/anmelden", data={"name": "projektgruppe", "password": PASSWORD, "weiter": "/"}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/auswertung"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


def test_login_refuses_a_wrong_password_and_an_external_target(api) -> None:
    wrong = api.client.post("/anmelden", data={"name": "koordination", "password": "nein-nein-nein"})
    assert wrong.status_code == 401
    assert "Benutzername oder Passwort stimmt nicht" in wrong.text
    assert SESSION_COOKIE not in wrong.cookies
    evil = api.client.post(
        "/anmelden",
        data={"name": "koordination", "password": PASSWORD, "weiter": "//evil.example/"},
        follow_redirects=False,
    )
    assert evil.headers["location"] == "/faelle"
    # Browsers drop a tab from a URL: "/<tab>/evil.example" would lead to //evil.example.
    tabbed = api.client.post(
        "/anmelden",
        data={"name": "koordination", "password": PASSWORD, "weiter": "/\t/evil.example/"},
        follow_redirects=False,
    )
    assert tabbed.headers["location"] == "/faelle"


def test_pages_redirect_to_login_with_the_target_kept(api) -> None:
    response = api.client.get("/faelle?status=open", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/anmelden?weiter=%2Ffaelle%3Fstatus%3Dopen"


def test_logout_needs_the_csrf_token_and_ends_the_token_in_the_database(api) -> None:
    session = WebSession(api, "koordination")
    refused = session.post("/abmelden", csrf=False)
    assert refused.status_code == 403
    assert "Formular abgelaufen" in refused.text
    assert session.get("/").status_code == 303 and session.get("/").headers["location"] == "/faelle"
    assert session.post("/abmelden").headers["location"] == "/anmelden"
    assert session.get("/").headers["location"].startswith("/anmelden")


def test_unknown_page_is_an_html_page_and_unknown_api_path_a_problem(api) -> None:
    page = api.client.get("/gibt-es-nicht")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "Seite nicht gefunden" in page.text
    problem = api.client.get("/api/v1/gibt-es-nicht")
    assert problem.status_code == 404 and problem.headers["content-type"] == "application/problem+json"


def test_english_by_cookie(api) -> None:
    page = api.client.get("/barrierefreiheit", headers={"Cookie": "kimflow_lang=en"})
    assert '<html lang="en">' in page.text
    assert page.headers["content-language"] == "en"
