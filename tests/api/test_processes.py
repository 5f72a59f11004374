"""Process routes: list, versions, source, diagram, validate (CLI diagnostics with line and column), deploy."""

from __future__ import annotations

from tests.api.client import Api
from tests.factories import process_yaml

PROBLEM = "https://kimflow.example/problems/"
YAML = {"Content-Type": "application/yaml"}


def test_list_versions_source_and_diagram(api: Api) -> None:
    listed = api.request("GET", "/api/v1/processes", "cw_nord").json()
    assert listed["data"] == [{"id": "intake", "title": "Aufnahme", "latest": 1, "versions": [1]}]
    versions = api.request("GET", "/api/v1/processes/intake/versions").json()
    assert versions["data"][0]["ref"] == "intake@1" and versions["data"][0]["deployed_by"] == "setup"
    source = api.request("GET", "/api/v1/processes/intake/versions/1/source")
    assert source.status_code == 200 and source.headers["content-type"].startswith("application/yaml")
    assert source.text == process_yaml()
    diagram = api.request("GET", "/api/v1/processes/intake/diagram")
    assert diagram.text.startswith("stateDiagram-v2")
    assert api.request("GET", "/api/v1/processes/nope/versions").status_code == 404
    assert api.request("GET", "/api/v1/processes/intake/versions/9/source").status_code == 404


def test_validate_returns_the_clis_diagnostics_with_line_and_column(api: Api) -> None:
    bad = process_yaml().replace("next: review", "next: reviw")
    response = api.request("POST", "/api/v1/processes/validate", content=bad, headers=YAML)
    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is False
    diagnostic = next(d for d in body["diagnostics"] if d["code"] == "unknown-step")
    line = bad.splitlines().index(next(x for x in bad.splitlines() if "reviw" in x)) + 1
    assert diagnostic["line"] == line and diagnostic["column"] > 0 and diagnostic["file"] == "definition.yaml"
    good = api.request("POST", "/api/v1/processes/validate", content=process_yaml(version=2), headers=YAML).json()
    assert good == {"valid": True, "definition": "intake@2", "diagnostics": []}


def test_deploy_a_new_version_then_the_same_again_is_a_no_op(api: Api) -> None:
    created = api.request("POST", "/api/v1/processes", content=process_yaml(version=2), headers=YAML)
    assert created.status_code == 201 and created.json()["created"] is True
    again = api.request("POST", "/api/v1/processes", content=process_yaml(version=2), headers=YAML)
    assert again.json()["created"] is False
    assert api.request("GET", "/api/v1/processes").json()["data"][0]["versions"] == [1, 2]


def test_deploying_an_invalid_definition_is_422_with_diagnostics(api: Api) -> None:
    bad = process_yaml(version=2).replace("next: review", "next: reviw")
    body = api.request("POST", "/api/v1/processes", content=bad, headers=YAML).json()
    assert body["status"] == 422 and body["type"] == PROBLEM + "definition-invalid"
    assert any(d["code"] == "unknown-step" and d["line"] > 0 for d in body["diagnostics"])


def test_changing_a_deployed_version_is_409(api: Api) -> None:
    changed = process_yaml(title="Anders")
    body = api.request("POST", "/api/v1/processes", content=changed, headers=YAML).json()
    assert body["status"] == 409 and body["type"] == PROBLEM + "definition-conflict"


def test_yaml_must_be_sent_as_yaml(api: Api) -> None:
    response = api.request("POST", "/api/v1/processes/validate", json={"yaml": "x"})
    assert response.status_code == 415 and response.json()["type"] == PROBLEM + "unsupported-media-type"
