"""Logging in for a bearer token; token expiry and disabled accounts; users over HTTP and the CLI."""

from __future__ import annotations

from datetime import timedelta

from typer.testing import CliRunner

from api.cli import app as cli
from engine.accounts import Accounts
from tests.api.client import Api
from tests.api.conftest import PASSWORD

PROBLEM = "https://kimflow.example/problems/"


def test_login_with_the_oauth2_form_or_json(api: Api) -> None:
    form = api.client.post("/api/v1/auth/token", data={"username": "cw_nord", "password": PASSWORD})
    assert form.status_code == 200
    token = form.json()["access_token"]
    assert form.json()["token_type"] == "bearer" and form.json()["role"] == "caseworker"
    as_json = api.client.post("/api/v1/auth/token", json={"username": "cw_nord", "password": PASSWORD})
    assert as_json.status_code == 200 and as_json.json()["access_token"] != token
    listed = api.client.get("/api/v1/cases", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200


def test_wrong_password_or_unknown_user_is_the_same_401(api: Api) -> None:
    wrong = api.client.post("/api/v1/auth/token", data={"username": "cw_nord", "password": "falsch-falsch"})
    unknown = api.client.post("/api/v1/auth/token", data={"username": "niemand", "password": "falsch-falsch"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]
    empty = api.client.post("/api/v1/auth/token", json={"username": "cw_nord"})
    assert empty.status_code == 422


def test_tokens_expire(api: Api) -> None:
    token = api.tokens["cw_nord"]
    api.clock.advance(timedelta(minutes=31))
    response = api.client.get("/api/v1/cases", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_admin_manages_users_and_a_disabled_user_is_locked_out_at_once(api: Api) -> None:
    created = api.request(
        "POST",
        "/api/v1/users",
        "admin",
        json={"name": "neu", "password": "lang-genug", "role": "caseworker", "team": "ost"},
    )
    assert created.status_code == 201 and created.json()["team"] == "ost"
    assert "password" not in created.text and "argon2" not in created.text
    duplicate = api.request(
        "POST", "/api/v1/users", "admin", json={"name": "neu", "password": "lang-genug", "role": "admin"}
    )
    assert duplicate.status_code == 409 and duplicate.json()["type"] == PROBLEM + "user-exists"
    names = [u["name"] for u in api.request("GET", "/api/v1/users", "admin").json()["data"]]
    assert "neu" in names
    disabled = api.request("POST", "/api/v1/users/cw_nord/disable", "admin")
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    assert api.request("GET", "/api/v1/cases", "cw_nord").status_code == 401
    login = api.client.post("/api/v1/auth/token", data={"username": "cw_nord", "password": PASSWORD})
    assert login.status_code == 401
    assert api.request("POST", "/api/v1/users/niemand/disable", "admin").status_code == 404


def test_cli_user_add_list_disable(api: Api, database_url: str) -> None:
    runner = CliRunner()
    added = runner.invoke(
        cli,
        ["--database", database_url, "user", "add", "kai", "--role", "caseworker", "--team", "nord"],
        input="pw-12345678\n",
    )
    assert added.exit_code == 0, added.output
    assert "kai" in added.output
    listed = runner.invoke(cli, ["--database", database_url, "user", "list"])
    assert "kai" in listed.output and "caseworker" in listed.output and "nord" in listed.output
    short = runner.invoke(
        cli, ["--database", database_url, "user", "add", "kim", "--role", "caseworker"], input="kurz\n"
    )
    assert (short.exit_code == 1 and "Passwort" not in short.output) or "password" in short.output
    bad_role = runner.invoke(
        cli, ["--database", database_url, "user", "add", "x", "--role", "chef"], input="pw-12345678\n"
    )
    assert bad_role.exit_code == 1
    disabled = runner.invoke(cli, ["--database", database_url, "user", "disable", "kai"])
    assert disabled.exit_code == 0
    user = Accounts(api.engine.store, api.clock).authenticate
    login = api.client.post("/api/v1/auth/token", data={"username": "kai", "password": "pw-12345678"})
    assert login.status_code == 401 and user is not None
