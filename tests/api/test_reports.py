"""Stalls and the stall report over HTTP: team scoping, JSON or CSV by content negotiation."""

from __future__ import annotations

from datetime import timedelta

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
