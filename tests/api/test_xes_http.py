"""The XES event log over HTTP: streamed XML for coordinators, no personal data, 404 for an unknown process."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from tests.api.client import Api
from tests.factories import process_yaml

XES = "{http://www.xes-standard.org/}"
PROBLEM = "https://kimflow.example/problems/"


def _values(element: ET.Element) -> dict[str, str]:
    return {child.get("key", ""): child.get("value", "") for child in element if child.get("key")}


def test_coordinators_get_the_event_log_as_streamed_xes_without_personal_data(api: Api) -> None:
    case = api.open_case("cw_nord", data={"name": "Amira Kaya"})
    api.change(case, "actions/forward", json={})
    other = api.open_case("cw_sued", data={"name": "Bernd Sommer"})

    response = api.request("GET", "/api/v1/reports/xes", "koordination")

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    assert response.headers["content-disposition"] == 'attachment; filename="kimflow.xes"'
    root = ET.fromstring(response.content)
    traces = {_values(t)["concept:name"]: t for t in root.iter(f"{XES}trace")}
    assert set(traces) == {str(case["id"]), str(other["id"])}  # every team's cases
    events = [_values(e) for e in traces[str(case["id"])].iter(f"{XES}event")]
    assert [(e["kimflow_kind"], e["concept:name"]) for e in events] == [("opened", "Erfassung"), ("fired", "Prüfung")]
    assert {e["org:resource"] for e in events} == {"akteur-1"}  # caseworkers are pseudonymised
    for personal in ("Amira", "Kaya", "Bernd", "cw_nord", "cw_sued"):
        assert personal not in response.text


def test_the_log_can_be_limited_to_one_process(api: Api) -> None:
    api.engine.deploy_text(process_yaml(id="beratung", title="Beratung"), actor="setup")
    api.engine.open_case("beratung", actor="setup")
    intake = api.open_case()

    response = api.request("GET", "/api/v1/reports/xes?process_id=intake", "koordination")

    assert response.status_code == 200
    root = ET.fromstring(response.content)
    assert [_values(t)["concept:name"] for t in root.iter(f"{XES}trace")] == [str(intake["id"])]
    assert response.headers["content-disposition"] == 'attachment; filename="intake.xes"'


def test_an_unknown_process_is_a_problem_before_anything_is_streamed(api: Api) -> None:
    response = api.request("GET", "/api/v1/reports/xes?process_id=gibt_es_nicht", "koordination")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == PROBLEM + "process-not-found"


def test_only_coordinators_may_export_the_log(api: Api) -> None:
    api.open_case()
    for user in ("cw_nord", "projektgruppe", "admin"):
        assert api.request("GET", "/api/v1/reports/xes", user).status_code == 403
    assert api.request("GET", "/api/v1/reports/xes", None).status_code == 401
