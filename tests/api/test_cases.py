"""Case routes over HTTP: every change, ETag/If-Match, idempotent retries, team isolation, access log, anonymising."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from engine.anonymise import ANONYMISED
from tests.api.client import Api
from tests.factories import assert_history_explains_case

PROBLEM = "https://kimflow.example/problems/"


def _audit(api: Api, case_id: int) -> list[dict[str, Any]]:
    response = api.request("GET", f"/api/v1/audit?case_id={case_id}", "admin")
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


def test_open_case_returns_201_with_etag_and_belongs_to_the_openers_team(api: Api) -> None:
    response = api.request("POST", "/api/v1/cases", "cw_nord", json={"process_id": "intake", "data": {"name": "Amira"}})
    assert response.status_code == 201
    body = response.json()
    assert response.headers["etag"] == '"1"'
    assert body["step"] == "intake" and body["data"] == {"name": "Amira"} and body["version"] == 1
    assert body["team"] == "nord" and api.engine.get_case(body["id"]).team == "nord"
    assert api.request("GET", f"/api/v1/cases/{body['id']}", "cw_sued").status_code == 404


def test_read_case_shows_data_step_deadline_actions_with_reasons_and_history(api: Api) -> None:
    case = api.open_case()
    response = api.request("GET", f"/api/v1/cases/{case['id']}", "cw_nord")
    body = response.json()
    assert response.headers["etag"] == '"1"'
    assert body["step_title"] == "Erfassung" and body["due_at"] is not None
    forward = next(a for a in body["actions"] if a["name"] == "forward")
    assert forward["available"] is False
    assert forward["reasons"][0]["code"] == "missing-data" and forward["reasons"][0]["fields"] == ["name"]
    assert [e["kind"] for e in body["history"]] == ["opened"]


def test_fire_moves_the_case_and_needs_the_current_version(api: Api) -> None:
    case = api.open_case(data={"name": "Amira"})
    missing = api.request("POST", f"/api/v1/cases/{case['id']}/actions/forward", "cw_nord", json={})
    assert missing.status_code == 428
    assert missing.json()["type"] == PROBLEM + "precondition-required"
    fired = api.change(case, "actions/forward", json={})
    assert fired.status_code == 200 and fired.headers["etag"] == '"2"' and fired.json()["step"] == "review"
    stale = api.change(case, "actions/approve", json={})  # still If-Match: "1"
    assert stale.status_code == 412
    assert stale.json()["type"] == PROBLEM + "precondition-failed"
    assert stale.json()["expected_version"] == 1 and stale.json()["actual_version"] == 2


def test_unavailable_action_is_409_with_the_missing_fields(api: Api) -> None:
    case = api.open_case()
    response = api.change(case, "actions/forward", json={})
    assert response.status_code == 409
    body = response.json()
    assert body["type"] == PROBLEM + "action-unavailable"
    assert body["reasons"][0]["code"] == "missing-data" and body["reasons"][0]["fields"] == ["name"]


def test_unknown_action_is_409_listing_the_allowed_ones(api: Api) -> None:
    case = api.open_case()
    body = api.change(case, "actions/approve", json={}).json()
    assert body["type"] == PROBLEM + "action-not-allowed"
    assert body["allowed_actions"] == ["capture", "forward"]


def test_invalid_data_is_422_per_field(api: Api) -> None:
    case = api.open_case()
    body = api.change(case, "actions/capture", json={"data": {"age": 400}}).json()
    assert body["status"] == 422 and body["type"] == PROBLEM + "invalid-case-data"
    assert set(body["problems"]) == {"age"}


def test_pause_resume_wait_assign(api: Api) -> None:
    case = api.open_case()
    paused = api.change(case, "pause", json={"reason": "W-DOC", "note": "Pass fehlt"})
    assert paused.status_code == 200 and paused.json()["paused"] is True
    resumed = api.change(paused.json(), "resume")
    assert resumed.status_code == 200 and resumed.json()["paused"] is False
    waiting = api.change(resumed.json(), "wait", json={"party": "JC", "reason": "W-DOC"})
    assert waiting.status_code == 200 and waiting.json()["waiting_on"] == "JC"
    assigned = api.change(waiting.json(), "assign", json={"assignee": "cw_nord"})
    assert assigned.status_code == 200 and assigned.json()["assignee"] == "cw_nord"
    assert assigned.json()["version"] == 5
    assert_history_explains_case(api.engine, case["id"])


def test_bad_pause_reason_is_422(api: Api) -> None:
    case = api.open_case()
    response = api.change(case, "pause", json={"reason": "frei erfunden"})
    assert response.status_code == 422 and "reason" in response.json()["problems"]


def test_consent_record_list_revoke(api: Api) -> None:
    case = api.open_case()
    recorded = api.change(
        case, "consents", json={"recipient": "JC", "purpose": "Leistungen klären", "categories": ["identity"]}
    )
    assert recorded.status_code == 201, recorded.text
    consent = recorded.json()
    assert consent["recipient"] == "JC" and consent["categories"] == ["identity"]
    assert recorded.headers["etag"] == '"2"' and consent["case_version"] == 2  # the version the change produced
    listed = api.request("GET", f"/api/v1/cases/{case['id']}/consents", "cw_nord").json()
    assert listed["count"] == 1
    revoked = api.change({**case, "version": consent["case_version"]}, f"consents/{consent['id']}/revoke")
    assert revoked.status_code == 200
    again = api.change(revoked.json(), f"consents/{consent['id']}/revoke")
    assert again.status_code == 404 and again.json()["type"] == PROBLEM + "consent-not-found"


def test_close_and_cancel_end_cases_and_ended_cases_refuse_changes(api: Api) -> None:
    closed = api.change(api.open_case(), "close", json={"outcome": "verzogen", "reason": "Umzug"})
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    refused = api.change(closed.json(), "assign", json={"assignee": "x"})
    assert refused.status_code == 409 and refused.json()["type"] == PROBLEM + "case-closed"
    cancelled = api.change(api.open_case(), "cancel", json={"reason": "doppelt angelegt"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"


def test_findings_only_on_stalled_visits(api: Api) -> None:
    case = api.open_case()
    url = f"/api/v1/cases/{case['id']}/findings"
    body = {"code": "W-DOC", "text": "Unterlagen fehlen regelmäßig"}
    on_time = api.request("POST", url, "cw_nord", json=body)
    assert on_time.status_code == 409 and on_time.json()["type"] == PROBLEM + "finding-not-allowed"
    api.advance(timedelta(days=14))
    created = api.request("POST", url, "cw_nord", json=body)
    assert created.status_code == 201 and created.json()["case_id"] == case["id"]


def test_list_filters_sorts_and_pages_with_an_opaque_cursor(api: Api) -> None:
    ids = [api.open_case()["id"] for _ in range(5)]
    api.open_case(user="cw_sued")
    seen: list[int] = []
    url = "/api/v1/cases?limit=2&sort=-id"
    while url:
        page = api.request("GET", url, "cw_nord").json()
        seen += [c["id"] for c in page["data"]]
        assert all("data" not in c for c in page["data"])  # worklists carry no case data
        url = f"/api/v1/cases?limit=2&sort=-id&cursor={page['next_cursor']}" if page["next_cursor"] else ""
    assert seen == sorted(ids, reverse=True)
    everything = api.request("GET", "/api/v1/cases?limit=100", "koordination").json()
    assert everything["count"] == 6
    api.advance(timedelta(days=14))
    overdue = api.request("GET", "/api/v1/cases?overdue=true&step=intake&process_id=intake&status=open", "cw_nord")
    assert overdue.json()["count"] == 5
    by_due = api.request("GET", "/api/v1/cases?sort=due_at&limit=3", "koordination").json()
    assert by_due["count"] == 3 and by_due["next_cursor"]
    bad = api.request("GET", "/api/v1/cases?cursor=bm9ub25zZW5z", "cw_nord")
    assert bad.status_code == 400 and bad.json()["type"] == PROBLEM + "bad-request"


def test_worklist_by_deadline_state_judges_like_the_stall_list(api: Api) -> None:
    # intake: warning after 2 office days (end of Wednesday), deadline after 3 (end of Thursday).
    late, paused, ended = (api.open_case() for _ in range(3))
    api.open_case(user="cw_sued")
    api.advance(timedelta(days=1))  # Tuesday: the clock of one case stops before its deadline
    api.change(paused, "pause", json={"reason": "W-CLIENT"})
    api.change(ended, "cancel", json={"reason": "doppelt"})

    def ids(query: str, user: str = "cw_nord") -> list[int]:
        response = api.request("GET", f"/api/v1/cases?{query}", user)
        assert response.status_code == 200, response.text
        return [c["id"] for c in response.json()["data"]]

    def stalls(status: str, user: str = "cw_nord") -> list[int]:
        found = api.request("GET", "/api/v1/stalls", user).json()["data"]
        return sorted(s["case_id"] for s in found if s["status"] == status)

    api.advance(timedelta(days=2, hours=2))  # Thursday 10:00: past the warning, not yet due
    assert ids("due=at_risk") == [late["id"]] == stalls("at_risk")
    assert ids("due=overdue") == [] == stalls("stalled")
    api.advance(timedelta(days=4))  # Monday: past the stored deadline; the paused case's moved later
    assert ids("due=overdue") == [late["id"]] == stalls("stalled")
    assert ids("overdue=true") == [late["id"]]
    assert ids("due=at_risk") == [] == stalls("at_risk")
    assert ids("overdue=false") == [paused["id"], ended["id"]]
    assert ids("overdue=true&due=at_risk") == []
    assert len(ids("due=overdue", "koordination")) == 2 == len(stalls("stalled", "koordination"))
    page = api.request("GET", "/api/v1/cases?due=overdue&limit=1&sort=-id", "koordination").json()
    rest = api.request(
        "GET", f"/api/v1/cases?due=overdue&limit=1&sort=-id&cursor={page['next_cursor']}", "koordination"
    )
    assert [c["id"] for c in page["data"] + rest.json()["data"]] == sorted(ids("due=overdue", "koordination"))[::-1]
    assert rest.json()["next_cursor"] is None
    bad = api.request("GET", "/api/v1/cases?due=soon", "cw_nord")
    assert bad.status_code == 422 and bad.json()["type"] == PROBLEM + "request-invalid"


def test_caseworkers_see_only_their_teams_cases_and_others_are_not_found(api: Api) -> None:
    case = api.open_case(user="cw_nord")
    for path in ("", "/history", "/consents"):
        response = api.request("GET", f"/api/v1/cases/{case['id']}{path}", "cw_sued")
        assert response.status_code == 404
        assert response.json()["type"] == PROBLEM + "case-not-found"
    assert api.change(case, "assign", "cw_sued", json={"assignee": "x"}).status_code == 404
    assert api.request("GET", "/api/v1/cases", "cw_sued").json()["count"] == 0
    assert api.request("GET", f"/api/v1/cases/{case['id']}", "koordination").status_code == 200


def test_idempotent_retry_returns_the_first_response_and_changes_nothing(api: Api) -> None:
    case = api.open_case(data={"name": "Amira"})
    headers = {"Idempotency-Key": "fire-1"}
    first = api.change(case, "actions/forward", json={}, headers=headers)
    second = api.change(case, "actions/forward", json={}, headers=headers)  # same stale If-Match: replayed
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true" and second.headers["etag"] == '"2"'
    assert len(api.engine.history(case["id"])) == 2
    other = api.change(case, "actions/forward", json={"data": {"note": "x"}}, headers=headers)
    assert other.status_code == 422 and other.json()["type"] == PROBLEM + "idempotency-key-reused"


def test_a_replayed_consent_carries_the_etag_of_the_first_response(api: Api) -> None:
    case = api.open_case()
    body = {"recipient": "JC", "purpose": "Leistungen klären", "categories": ["identity"]}
    first = api.change(case, "consents", json=body, headers={"Idempotency-Key": "consent-1"})
    api.change({**case, "version": 2}, "assign", json={"assignee": "x"})  # the case moves on to version 3
    again = api.change(case, "consents", json=body, headers={"Idempotency-Key": "consent-1"})
    assert first.status_code == again.status_code == 201
    assert first.headers["etag"] == again.headers["etag"] == '"2"'
    assert again.headers["idempotent-replayed"] == "true" and again.json() == first.json()
    stale = api.change(case, "consents", json=body)
    assert stale.status_code == 412 and "etag" not in stale.headers


def test_idempotent_open_creates_one_case(api: Api) -> None:
    body = {"process_id": "intake", "data": {"name": "Amira"}}
    responses = [
        api.request("POST", "/api/v1/cases", "cw_nord", json=body, headers={"Idempotency-Key": "open-7"})
        for _ in range(3)
    ]
    assert {r.json()["id"] for r in responses} == {responses[0].json()["id"]}
    assert [r.status_code for r in responses] == [201, 201, 201]
    assert api.request("GET", "/api/v1/cases", "koordination").json()["count"] == 1
    # Keys are per user: another user with the same key opens their own case.
    theirs = api.request("POST", "/api/v1/cases", "cw_sued", json=body, headers={"Idempotency-Key": "open-7"})
    assert theirs.json()["id"] != responses[0].json()["id"]


def test_reads_and_changes_are_in_the_access_log(api: Api) -> None:
    case = api.open_case(data={"name": "Amira", "age": 30})
    api.request("GET", f"/api/v1/cases/{case['id']}", "koordination")
    api.request("GET", f"/api/v1/cases/{case['id']}/history", "cw_nord")
    api.change(case, "actions/capture", json={"data": {"note": "Termin"}})
    entries = _audit(api, case["id"])
    summary = [(e["actor"], e["access"], e["fields"], e["route"].split(" ")[0]) for e in entries]
    assert summary == [
        ("cw_nord", "change", ["age", "name"], "POST"),
        ("koordination", "read", ["age", "name"], "GET"),
        ("cw_nord", "read", ["age", "name"], "GET"),
        ("cw_nord", "change", ["note"], "POST"),
    ]
    assert entries[1]["route"] == f"GET /api/v1/cases/{case['id']}" and entries[1]["role"] == "coordinator"


def test_a_refused_change_leaves_no_access_entry(api: Api) -> None:
    case = api.open_case()
    api.change(case, "actions/forward", json={})  # refused: the name is missing
    assert [e["access"] for e in _audit(api, case["id"])] == ["change"]


def test_anonymise_removes_personal_data_and_keeps_visits(api: Api) -> None:
    case = api.open_case(data={"name": "Amira", "age": 30})
    consent = api.change(
        case, "consents", json={"recipient": "JC", "purpose": "Amira: Leistungen", "categories": ["identity"]}
    )
    current = api.request("GET", f"/api/v1/cases/{case['id']}", "cw_nord").json()
    paused = api.change(current, "pause", json={"reason": "W-DOC", "note": "Amira im Krankenhaus"}).json()
    resumed = api.change(paused, "resume").json()
    forwarded = api.change(resumed, "actions/forward", json={}).json()
    done = api.change(forwarded, "actions/approve", json={}).json()
    visits_before = [(v.step, v.entered_at, v.left_at, v.overran) for v in api.engine.visits(case["id"])]
    still_open = api.change(api.open_case(), "anonymise", "koordination")
    assert still_open.status_code == 409 and still_open.json()["reasons"][0]["code"] == "case-open"
    assert api.change(done, "anonymise", "cw_nord").status_code == 403
    response = api.change(done, "anonymise", "koordination")
    assert response.status_code == 200, response.text
    assert response.json()["removed_fields"] == ["age", "name"]
    stored = api.engine.get_case(case["id"])
    assert stored.data == {}
    events = api.engine.history(case["id"])
    assert all(e.changes == {} for e in events)
    assert "Amira" not in repr([e.detail for e in events])
    assert [e.kind for e in events][:3] == ["opened", "consent_recorded", "paused"]
    assert api.engine.consents(case["id"])[0].purpose == ANONYMISED
    assert consent.status_code == 201
    assert [(v.step, v.entered_at, v.left_at, v.overran) for v in api.engine.visits(case["id"])] == visits_before
    assert_history_explains_case(api.engine, case["id"])
    assert _audit(api, case["id"])[-1]["access"] == "anonymise"


@pytest.mark.parametrize("value", ['"abc"', 'W/"x"'])
def test_malformed_if_match_is_412(api: Api, value: str) -> None:
    case = api.open_case()
    response = api.request("POST", f"/api/v1/cases/{case['id']}/resume", "cw_nord", headers={"If-Match": value})
    assert response.status_code == 412


def test_if_match_star_accepts_any_version(api: Api) -> None:
    case = api.open_case()
    response = api.request(
        "POST", f"/api/v1/cases/{case['id']}/assign", "cw_nord", headers={"If-Match": "*"}, json={"assignee": "a"}
    )
    assert response.status_code == 200
