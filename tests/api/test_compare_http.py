"""The before/after comparison over HTTP: versions or periods, JSON or German CSV, suppression, problems."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from engine.report_formats import BOM
from tests.api.client import Api
from tests.factories import process_yaml

PROBLEM = "https://kimflow.example/problems/"
URL = "/api/v1/reports/compare"
VERSIONS = f"{URL}?process_id=intake&version_a=1&version_b=2"


@pytest.fixture
def history(api: Api) -> Api:
    """Six cases on version 1 and three on version 2, all forwarded to review 1 to 3 days after opening."""
    api.engine.deploy_text(process_yaml(version=2), actor="setup")
    engine = api.engine
    cases = [engine.open_case("intake", actor="cw", version=1, data={"name": "Amira Kaya"}) for _ in range(6)]
    cases += [engine.open_case("intake", actor="cw", version=2, data={"name": "Bernd"}) for _ in range(3)]
    for day in range(3):
        api.advance(timedelta(days=1))
        for case in cases[day::3]:
            engine.fire(case.id, "forward", actor="cw")
    return api


def _step(body: dict[str, Any], step: str) -> dict[str, Any]:
    return next(s for s in body["steps"] if s["step"] == step)


def test_two_versions_as_json_with_small_sides_suppressed(history: Api) -> None:
    response = history.request("GET", VERSIONS, "projektgruppe")

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert (body["kind"], body["label_a"], body["label_b"], body["min_cell"]) == ("versions", "intake@1", "intake@2", 5)
    intake = _step(body, "intake")
    assert (intake["a"]["visits"], intake["a"]["completed"], intake["a"]["suppressed"]) == (6, 6, False)
    assert intake["a"]["median_office_days"] is not None
    assert (intake["b"]["visits"], intake["b"]["median_office_days"], intake["b"]["suppressed"]) == (None, None, True)
    assert {w["code"] for w in intake["warnings"]} == {"suppressed", "small-sample"}
    assert intake["verdict"] is None
    for personal in ("Amira", "Bernd", "case_id", '"cw"'):
        assert personal not in response.text


def test_two_periods_as_german_csv(history: Api) -> None:
    url = (
        f"{URL}?process_id=intake&period_a_from=2026-03-02&period_a_to=2026-03-02"
        "&period_b_from=2026-03-03&period_b_to=2026-03-31&decimal_comma=true"
    )
    response = history.request("GET", url, "koordination", headers={"Accept": "text/csv"})

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    text = response.content.decode("utf-8")
    assert text.startswith(BOM + "Schritt;Schritt (Titel);Stelle;Besuche A (2026-03-02 – 2026-03-02)")
    rows = [line.split(";") for line in text.removeprefix(BOM).splitlines()]
    by_step = {row[0]: row for row in rows[1:]}
    assert by_step["intake"][3] == "9" and by_step["intake"][7] == "0"  # every version: 9 intake visits, all in A
    assert "Amira" not in text


@pytest.mark.parametrize(
    ("query", "parameters"),
    [
        ("process_id=intake", None),
        ("process_id=intake&version_a=1&version_b=2&period_a_from=2026-01-01", None),
        ("process_id=intake&version_a=1", ["version_b"]),
        ("process_id=intake&period_a_from=2026-01-01&period_a_to=2026-01-31", ["period_b_from", "period_b_to"]),
        (
            "process_id=intake&period_a_from=2026-02-01&period_a_to=2026-01-01"
            "&period_b_from=2026-03-01&period_b_to=2026-03-31",
            ["period_a_from", "period_a_to"],
        ),
        (
            "process_id=intake&period_a_from=2026-01-01&period_a_to=9999-12-31"
            "&period_b_from=2026-03-01&period_b_to=2026-03-31",
            ["period_a_to"],
        ),
    ],
)
def test_a_wrong_combination_of_parameters_is_a_422_problem(api: Api, query: str, parameters: list[str] | None) -> None:
    response = api.request("GET", f"{URL}?{query}", "projektgruppe")

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == PROBLEM + "request-invalid"
    if parameters is not None:
        assert body["parameters"] == parameters


def test_unknown_process_or_version_is_404(api: Api) -> None:
    unknown = api.request("GET", f"{URL}?process_id=gibt_es_nicht&version_a=1&version_b=2", "projektgruppe")
    assert unknown.status_code == 404 and unknown.json()["type"] == PROBLEM + "process-not-found"
    version = api.request("GET", f"{URL}?process_id=intake&version_a=1&version_b=7", "projektgruppe")
    assert version.status_code == 404 and version.json()["version"] == 7


def test_roles_and_formats_as_for_the_stall_report(api: Api) -> None:
    url = f"{URL}?process_id=intake&version_a=1&version_b=1"
    assert api.request("GET", url, "koordination").status_code == 200
    assert api.request("GET", url, "cw_nord").status_code == 403
    assert api.request("GET", url, "admin").status_code == 403
    refused = api.request("GET", url, "projektgruppe", headers={"Accept": "image/png"})
    assert refused.status_code == 406 and refused.json()["type"] == PROBLEM + "not-acceptable"
