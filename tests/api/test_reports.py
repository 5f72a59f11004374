"""Stalls, the stall report and the findings list over HTTP: team scoping, content negotiation, no personal data."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.api.client import Api


def test_stalls_list_overdue_cases_of_the_callers_team(api: Api) -> None:
    nord = api.open_case("cw_nord")
    api.open_case("cw_sued")
    api.advance(timedelta(days=14))
    mine = api.request("GET", "/api/v1/stalls", "cw_nord").json()
    assert [s["case_id"] for s in mine["data"]] == [nord["id"]]
    assert mine["data"][0]["status"] == "stalled"
    assert api.request("GET", "/api/v1/stalls", "koordination").json()["count"] == 2


def test_stall_report_as_json_or_csv(api: Api) -> None:
    api.open_case()
    as_json = api.request("GET", "/api/v1/reports/stalls", "projektgruppe")
    assert as_json.status_code == 200 and as_json.headers["content-type"].startswith("application/json")
    assert "steps" in as_json.json()
    as_csv = api.request("GET", "/api/v1/reports/stalls", "projektgruppe", headers={"Accept": "text/csv"})
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    refused = api.request("GET", "/api/v1/reports/stalls", "projektgruppe", headers={"Accept": "image/png"})
    assert refused.status_code == 406 and refused.headers["content-type"] == "application/problem+json"
    assert api.request("GET", "/api/v1/reports/stalls", "cw_nord").status_code == 403


def _finding(api: Api, case: dict[str, Any], text: str, code: str = "W-DOC") -> None:
    response = api.request("POST", f"/api/v1/cases/{case['id']}/findings", "cw_nord", json={"code": code, "text": text})
    assert response.status_code == 201, response.text


def test_findings_list_code_text_and_place_without_case_numbers_for_project_groups(api: Api) -> None:
    case = api.open_case("cw_nord", data={"name": "Amira"})
    api.advance(timedelta(days=14))
    _finding(api, case, "Unterlagen der Ausländerbehörde fehlen regelmäßig")

    listed = api.request("GET", "/api/v1/findings", "projektgruppe")

    assert listed.status_code == 200, listed.text
    (finding,) = listed.json()["data"]
    assert finding == {
        "id": finding["id"],
        "code": "W-DOC",
        "code_label": api.engine.taxonomy.label("W-DOC"),
        "text": "Unterlagen der Ausländerbehörde fehlen regelmäßig",
        "process_id": "intake",
        "process_version": 1,
        "step": "intake",
        "step_title": "Erfassung",
        "agency": "KIM-CM",
        "created_on": "2026-03-16",
        "case_id": None,
    }
    assert "cw_nord" not in listed.text and "Amira" not in listed.text
    as_coordinator = api.request("GET", "/api/v1/findings", "koordination").json()["data"]
    assert as_coordinator[0]["case_id"] == case["id"]
    assert api.request("GET", "/api/v1/findings", "cw_nord").status_code == 403
    assert api.request("GET", "/api/v1/findings", "admin").status_code == 403


def test_findings_filter_by_process_step_and_code_and_page_newest_first(api: Api) -> None:
    cases = [api.open_case() for _ in range(3)]
    api.advance(timedelta(days=14))
    for n, case in enumerate(cases):
        _finding(api, case, f"Termin beim Amt erst nach Wochen ({n})", code="W-DOC" if n < 2 else "W-CLIENT")

    def texts(query: str) -> list[str]:
        response = api.request("GET", f"/api/v1/findings{query}", "projektgruppe")
        assert response.status_code == 200, response.text
        return [f["text"][-2] for f in response.json()["data"]]

    assert texts("") == ["2", "1", "0"]
    assert texts("?code=W-DOC") == ["1", "0"]
    assert texts("?process_id=intake&step=intake&code=W-CLIENT") == ["2"]
    assert texts("?step=review") == [] and texts("?process_id=andere") == []
    first = api.request("GET", "/api/v1/findings?limit=2", "projektgruppe").json()
    assert [f["text"][-2] for f in first["data"]] == ["2", "1"] and first["next_cursor"]
    second = api.request("GET", f"/api/v1/findings?limit=2&cursor={first['next_cursor']}", "projektgruppe").json()
    assert [f["text"][-2] for f in second["data"]] == ["0"] and second["next_cursor"] is None
    bad = api.request("GET", "/api/v1/findings?cursor=abc", "projektgruppe")
    assert bad.status_code == 400 and bad.json()["type"] == "https://kimflow.example/problems/bad-request"
