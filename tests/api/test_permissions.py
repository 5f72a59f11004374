"""The role × route matrix: every route of the app, called by every role, is allowed or denied as declared.

``EXPECTED`` is the one statement of who may call what; a route missing from it fails the
test, so a new route cannot ship without a decision. Denied means 403 (a caseworker's
access to another team's case is 404, tested in ``test_cases.py``).
"""

from __future__ import annotations

from typing import Any

from tests.api.client import Api
from tests.api.conftest import ROLE_USERS
from tests.factories import process_yaml

CASE = frozenset({"caseworker", "coordinator"})
COORDINATOR = frozenset({"coordinator"})
ADMIN = frozenset({"admin"})
REPORTS = frozenset({"coordinator", "projectgroup"})
PUBLIC = None  # no token needed

EXPECTED: dict[tuple[str, str], frozenset[str] | None] = {
    ("POST", "/api/v1/auth/token"): PUBLIC,
    ("GET", "/api/health"): PUBLIC,
    ("GET", "/api/ping"): PUBLIC,
    ("GET", "/api/v1/processes"): CASE,
    ("GET", "/api/v1/processes/{process_id}/versions"): CASE,
    ("GET", "/api/v1/processes/{process_id}/versions/{version}/source"): CASE,
    ("GET", "/api/v1/processes/{process_id}/diagram"): CASE,
    ("POST", "/api/v1/processes/validate"): COORDINATOR,
    ("POST", "/api/v1/processes"): COORDINATOR,
    ("POST", "/api/v1/cases"): CASE,
    ("GET", "/api/v1/cases"): CASE,
    ("GET", "/api/v1/cases/{case_id}"): CASE,
    ("GET", "/api/v1/cases/{case_id}/history"): CASE,
    ("GET", "/api/v1/cases/{case_id}/consents"): CASE,
    ("POST", "/api/v1/cases/{case_id}/actions/{action}"): CASE,
    ("POST", "/api/v1/cases/{case_id}/pause"): CASE,
    ("POST", "/api/v1/cases/{case_id}/resume"): CASE,
    ("POST", "/api/v1/cases/{case_id}/wait"): CASE,
    ("POST", "/api/v1/cases/{case_id}/assign"): CASE,
    ("POST", "/api/v1/cases/{case_id}/close"): CASE,
    ("POST", "/api/v1/cases/{case_id}/cancel"): CASE,
    ("POST", "/api/v1/cases/{case_id}/consents"): CASE,
    ("POST", "/api/v1/cases/{case_id}/consents/{consent_id}/revoke"): CASE,
    ("POST", "/api/v1/cases/{case_id}/findings"): CASE,
    ("POST", "/api/v1/cases/{case_id}/anonymise"): COORDINATOR,
    ("POST", "/api/v1/timers/tick"): COORDINATOR,
    ("GET", "/api/v1/audit"): ADMIN,
    ("GET", "/api/v1/stalls"): CASE,
    ("GET", "/api/v1/reports/stalls"): REPORTS,
    ("GET", "/api/v1/reports/compare"): REPORTS,
    ("GET", "/api/v1/reports/xes"): COORDINATOR,
    ("GET", "/api/v1/findings"): REPORTS,
    ("GET", "/api/v1/users"): ADMIN,
    ("POST", "/api/v1/users"): ADMIN,
    ("POST", "/api/v1/users/{name}/disable"): ADMIN,
}

BODIES: dict[str, Any] = {
    "/api/v1/cases": {"process_id": "intake", "data": {}},
    "/pause": {"reason": "W-DOC"},
    "/wait": {"party": "JC", "reason": "W-DOC"},
    "/assign": {"assignee": "x"},
    "/close": {"outcome": "verzogen", "reason": "Umzug"},
    "/cancel": {"reason": "doppelt"},
    "/consents": {"recipient": "JC", "purpose": "Leistungen", "categories": ["identity"]},
    "/findings": {"code": "W-DOC", "text": "Unterlagen fehlen"},
    "/actions/{action}": {"data": {"name": "A"}},
    "/api/v1/users": {"name": "neu-{n}", "password": "lang-genug", "role": "caseworker"},
    "/api/v1/auth/token": None,
}

# Query strings for routes that need parameters to succeed (the matrix checks roles, not validation).
QUERIES: dict[str, str] = {
    "/api/v1/reports/compare": "?process_id=intake&version_a=1&version_b=1",
}


def _routes(api: Api) -> set[tuple[str, str]]:
    """Every operation of the app, from its OpenAPI document (which lists every API route)."""
    paths = api.client.get("/api/openapi.json").json()["paths"]
    return {(method.upper(), path) for path, operations in paths.items() for method in operations}


def _call(api: Api, method: str, path: str, user: str | None, n: int) -> int:
    case = api.open_case("cw_nord", data={"name": "Amira"})
    consent_id = 1
    if "{consent_id}" in path:
        consent_id = api.change(case, "consents", json=BODIES["/consents"]).json()["id"]
        case["version"] += 1
    url = (
        path.replace("{case_id}", str(case["id"]))
        .replace("{action}", "capture")
        .replace("{process_id}", "intake")
        .replace("{version}", "1")
        .replace("{consent_id}", str(consent_id))
        .replace("{name}", "admin")
    ) + QUERIES.get(path, "")
    kwargs: dict[str, Any] = {"headers": {"If-Match": "*"}}
    if path.endswith(("/validate",)) or (path == "/api/v1/processes" and method == "POST"):
        kwargs = {"content": process_yaml(version=n + 1), "headers": {"Content-Type": "application/yaml"}}
    elif path == "/api/v1/auth/token":
        kwargs = {"data": {"username": "admin", "password": "falsch-falsch"}}
    else:
        for suffix, body in BODIES.items():
            if path.endswith(suffix) and method == "POST":
                kwargs["json"] = {k: (v.format(n=n) if isinstance(v, str) else v) for k, v in body.items()}
                break
        else:
            if method == "POST":
                kwargs["json"] = {}
    return int(api.request(method, url, user, **kwargs).status_code)


def test_every_route_has_a_declared_permission(api: Api) -> None:
    assert _routes(api) - set(EXPECTED) == set()
    assert set(EXPECTED) - _routes(api) == set()


def test_every_role_on_every_route_is_allowed_or_denied_as_declared(api: Api) -> None:
    wrong = []
    n = 0
    for (method, path), allowed in sorted(EXPECTED.items()):
        for role, user in ROLE_USERS.items():
            n += 1
            status = _call(api, method, path, user if allowed is not PUBLIC else None, n)
            if allowed is PUBLIC:
                ok = status not in (403,)
            elif role in allowed:
                ok = status not in (401, 403, 404, 405, 422, 428, 500)
            else:
                ok = status == 403
            if not ok:
                wrong.append((method, path, role, status))
        if allowed is not PUBLIC:
            assert _call(api, method, path, None, n) == 401, (method, path)
    assert wrong == []
