"""Problem documents (RFC 9457): one mapping for every engine error, languages, HTTP-level errors, 500s."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from api.errors import ENGINE_PROBLEMS, PROBLEM_JSON
from engine import EngineError
from tests.api.client import Api

PROBLEM = "https://kimflow.example/problems/"


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


def test_every_engine_error_has_its_own_mapping() -> None:
    import engine.accounts
    import engine.anonymise  # noqa: F401

    unmapped = {c.__name__ for c in _subclasses(EngineError) if c not in ENGINE_PROBLEMS}
    assert unmapped == set()


def test_problem_types_are_stable_uris_and_statuses_are_http_errors() -> None:
    for problem in ENGINE_PROBLEMS.values():
        assert problem.uri.startswith(PROBLEM) and 400 <= problem.status < 600
        assert problem.title_de and problem.title_en


@pytest.mark.parametrize(
    ("language", "title"),
    [
        (None, "Fall nicht gefunden"),
        ("en", "Case not found"),
        ("en-GB,de;q=0.5", "Case not found"),
        ("fr, de", "Fall nicht gefunden"),
        ("de;q=0.4, en;q=0.8", "Case not found"),
    ],
)
def test_titles_follow_accept_language_german_by_default(api: Api, language: str | None, title: str) -> None:
    headers = {"Accept-Language": language} if language else {}
    response = api.request("GET", "/api/v1/cases/999", headers=headers)
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["title"] == title
    assert body == {
        "type": PROBLEM + "case-not-found",
        "title": title,
        "status": 404,
        "detail": body["detail"],
        "instance": "/api/v1/cases/999",
        "case_id": 999,
    }


def test_german_detail_is_the_clis_wording(api: Api) -> None:
    assert api.request("GET", "/api/v1/cases/999").json()["detail"] == "Fall 999 gibt es nicht"
    english = api.request("GET", "/api/v1/cases/999", headers={"Accept-Language": "en"}).json()
    assert english["detail"] == "case 999 does not exist"


def test_request_validation_errors_are_problems_with_locations(api: Api) -> None:
    response = api.request("POST", "/api/v1/cases", "cw_nord", json={"data": "nope"})
    assert response.status_code == 422 and response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["type"] == PROBLEM + "request-invalid"
    assert {tuple(e["location"]) for e in body["errors"]} >= {("body", "process_id"), ("body", "data")}


def test_unknown_route_and_wrong_method_are_problems(api: Api) -> None:
    missing = api.request("GET", "/api/v1/nothing-here")
    assert missing.status_code == 404 and missing.json()["type"] == PROBLEM + "not-found"
    assert missing.headers["content-type"] == PROBLEM_JSON
    wrong = api.request("DELETE", "/api/v1/processes")
    assert wrong.status_code == 405 and wrong.json()["type"] == PROBLEM + "method-not-allowed"


def test_missing_or_bad_token_is_401_with_www_authenticate(api: Api) -> None:
    for headers in ({}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Basic eDp5"}):
        response = api.client.get("/api/v1/cases", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["type"] == PROBLEM + "unauthorized"


def test_unknown_process_is_404_with_its_id(api: Api) -> None:
    body = api.request("POST", "/api/v1/cases", "cw_nord", json={"process_id": "nope"}).json()
    assert body["type"] == PROBLEM + "process-not-found" and body["process_id"] == "nope"


def test_unexpected_errors_are_500_with_a_logged_correlation_id_and_no_traceback(
    api: Api, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(api.client.app.state.engine, "get_case", explode)  # type: ignore[attr-defined]
    case = api.open_case()
    client = TestClient(api.client.app, raise_server_exceptions=False)
    with caplog.at_level(logging.ERROR, logger="kimflow.api"):
        response = client.get(f"/api/v1/cases/{case['id']}", headers=api.headers("cw_nord"))
    assert response.status_code == 500 and response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["type"] == PROBLEM + "internal-error"
    assert "secret internals" not in response.text and "Traceback" not in response.text
    assert body["correlation_id"] in caplog.text and "secret internals" in caplog.text


def test_health_is_ok_on_a_current_schema(api: Api) -> None:
    response = api.client.get("/api/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_health_is_503_when_the_schema_is_behind(api: Api) -> None:
    from alembic import command
    from alembic.config import Config

    from engine.store import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with api.engine.store.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0002")
    response = api.client.get("/api/health")
    assert response.status_code == 503 and response.json()["type"] == PROBLEM + "unhealthy"
    assert response.json()["expected_revision"] == api.engine.store.head_revision()
    assert response.json()["schema_revision"] == "0002"


def test_openapi_and_docs_are_served(api: Api) -> None:
    spec = api.client.get("/api/openapi.json").json()
    assert spec["openapi"].startswith("3.") and "/api/v1/cases/{case_id}" in spec["paths"]
    assert api.client.get("/api/docs").status_code == 200
