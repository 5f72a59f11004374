"""Caseworker pages over HTTP, on SQLite and PostgreSQL: worklist, opening a case, the case page and its changes.

Cases are set up through the JSON API (as another client would) and then looked at and
changed through the pages, as a caseworker's browser would: with the session cookie, the
form's CSRF token and the case version the page was rendered with.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.web.session import CSRF_FIELD, SESSION_COOKIE, SESSION_LIFETIME, csrf_token
from engine import audit
from tests.api.client import Api
from tests.factories import process_yaml

ROOT = Path(__file__).resolve().parents[2]
JOBCENTER = ROOT / "processes" / "jobcenter_ueberleitung.yaml"


class Browser:
    """A logged-in browser of one user: its own cookie jar, a fresh session for every request.

    A fresh session token per request keeps the session valid however far a test moves the
    clock; the CSRF token is derived from the token exactly as the page's hidden field is.
    """

    def __init__(self, api: Api, user: str) -> None:
        self.api = api
        self.user = user
        self.client = TestClient(api.client.app)
        self._token = ""

    def _login(self) -> None:
        account = self.api.accounts.get_user(self.user)
        self._token = self.api.accounts.issue_token(account, SESSION_LIFETIME).token
        self.client.cookies.set(SESSION_COOKIE, self._token)

    def get(self, url: str) -> Any:
        self._login()
        return self.client.get(url, follow_redirects=False)

    def post(self, url: str, data: dict[str, Any] | None = None, *, csrf: bool = True) -> Any:
        self._login()
        form = dict(data or {})
        if csrf:
            form[CSRF_FIELD] = csrf_token(self.client.app.state.settings, self._token)  # type: ignore[attr-defined]
        return self.client.post(url, data=form, follow_redirects=False)


@pytest.fixture
def browse(api: Api) -> Iterator[Any]:
    opened: list[Browser] = []

    def browser(user: str) -> Browser:
        opened.append(Browser(api, user))
        return opened[-1]

    yield browser
    for b in opened:
        b.client.close()


def text(page: str) -> str:
    """The visible text of a page, whitespace collapsed."""
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body))).strip()


def version_of(page: str) -> str:
    match = re.search(r'name="version" value="(\d+)"', page)
    assert match, "the page has no change form"
    return match.group(1)


def listed_ids(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr class="case-row">\s*<th scope="row"><a href="/faelle/(\d+)"', page)]


def fire_via_api(api: Api, case_id: int, action: str, data: dict[str, Any] | None = None) -> None:
    version = api.engine.get_case(case_id).version
    response = api.request(
        "POST",
        f"/api/v1/cases/{case_id}/actions/{action}",
        "koordination",
        headers={"If-Match": f'"{version}"'},
        json={"data": data or {}},
    )
    assert response.status_code == 200, response.text


def changes_logged(api: Api, case_id: int) -> list[audit.AccessEntry]:
    """The access-log entries of changes made through the pages (not those of the API set-up)."""
    return [
        e
        for e in audit.entries(api.engine.store, case_id=case_id)
        if e.access == audit.CHANGE and not e.route.startswith("POST /api/")
    ]


# --------------------------------------------------------------------------- worklist


def test_worklist_shows_own_team_cases_by_deadline_with_working_days_and_no_case_data(api: Api, browse) -> None:
    early = api.open_case("cw_nord", {"name": "Amira Beispiel"})
    api.advance(timedelta(days=1))  # Tuesday: this case is due a day later
    later = api.open_case("cw_nord")
    other_team = api.open_case("cw_sued")
    page = browse("cw_nord").get("/faelle")
    assert page.status_code == 200
    assert listed_ids(page.text) == [early["id"], later["id"]]
    shown = text(page.text)
    assert "Amira" not in page.text, "the worklist shows no case data"
    assert "Aufnahme" in shown and "Erfassung" in shown and "KIM-Case Management" in shown
    assert "05.03.2026 noch 2 Arbeitstage" in shown and "06.03.2026 noch 3 Arbeitstage" in shown
    assert "im Plan" in shown
    everyone = browse("koordination").get("/faelle")
    assert sorted(listed_ids(everyone.text)) == sorted([early["id"], later["id"], other_team["id"]])

    api.advance(timedelta(days=2))  # Thursday: the first is due today (at risk), the second at risk tomorrow
    shown = text(browse("cw_nord").get("/faelle").text)
    assert "05.03.2026 heute fällig" in shown and "gefährdet" in shown
    api.advance(timedelta(days=4))  # the next Monday: both overdue, the earlier one by two working days
    page = browse("cw_nord").get("/faelle")
    shown = text(page.text)
    assert "05.03.2026 seit 2 Arbeitstagen überfällig" in shown
    assert "06.03.2026 seit 1 Arbeitstag überfällig" in shown
    assert listed_ids(page.text) == [early["id"], later["id"]]


def test_worklist_filters_by_process_step_deadline_and_assignee(api: Api, browse) -> None:
    mine = api.open_case("cw_nord", {"name": "A"})
    assert api.change(mine, "assign", json={"assignee": "cw_nord"}).status_code == 200
    moved = api.open_case("cw_nord", {"name": "B"})
    fire_via_api(api, moved["id"], "forward")
    caseworker = browse("cw_nord")
    assert listed_ids(caseworker.get("/faelle?meine=1").text) == [mine["id"]]
    assert listed_ids(caseworker.get("/faelle?prozess=intake&schritt=review").text) == [moved["id"]]
    step_filter = caseworker.get("/faelle?prozess=intake").text
    assert '<option value="review">Prüfung</option>' in step_filter
    assert listed_ids(caseworker.get("/faelle?frist=overdue").text) == []
    api.advance(timedelta(days=7))
    assert listed_ids(caseworker.get("/faelle?frist=overdue").text) == [mine["id"]]
    assert listed_ids(caseworker.get("/faelle?frist=on_time").text) == [moved["id"]]
    nothing = caseworker.get("/faelle?status=completed")
    assert "Keine Fälle gefunden" in text(nothing.text)


def test_search_by_case_number_opens_the_case_but_never_another_teams(api: Api, browse) -> None:
    own = api.open_case("cw_nord")
    foreign = api.open_case("cw_sued")
    caseworker = browse("cw_nord")
    found = caseworker.get(f"/faelle?nummer={own['id']}")
    assert found.status_code == 303 and found.headers["location"] == f"/faelle/{own['id']}"
    hidden = caseworker.get(f"/faelle?nummer={foreign['id']}")
    assert hidden.status_code == 200
    assert f"Einen Fall mit der Nummer {foreign['id']} gibt es in Ihrer Arbeitsliste nicht." in text(hidden.text)


def test_worklist_pages_fifty_cases_at_a_time_by_keyset(api: Api, browse) -> None:
    ids = [api.open_case("cw_nord")["id"] for _ in range(53)]
    caseworker = browse("cw_nord")
    first = caseworker.get("/faelle")
    assert len(listed_ids(first.text)) == 50
    next_url = html.unescape(re.search(r'rel="next" href="([^"]+)"', first.text).group(1))
    second = caseworker.get(next_url)
    assert listed_ids(first.text) + listed_ids(second.text) == ids
    assert 'rel="next"' not in second.text and "Zum Anfang der Liste" in second.text


# --------------------------------------------------------------------------- opening a case


def test_open_case_form_is_generated_with_german_labels_and_validation(api: Api, browse) -> None:
    api.engine.deploy([JOBCENTER], actor="setup")
    caseworker = browse("cw_nord")
    chooser = caseworker.get("/faelle/neu")
    assert chooser.status_code == 200
    assert 'value="jobcenter_ueberleitung"' in chooser.text and "Überleitung an das Jobcenter" in chooser.text
    form = caseworker.get("/faelle/neu?prozess=jobcenter_ueberleitung")
    shown = text(form.text)
    for label in ("Aufenthaltsstatus", "Aufenthaltstitel gültig bis", "Zuständiger Rechtskreis"):
        assert label in shown
    assert "Datum als TT.MM.JJJJ" in shown
    assert '<option value="sgb2">SGB II (Jobcenter)</option>' in form.text

    refused = caseworker.post(
        "/faelle/neu",
        {"prozess": "jobcenter_ueberleitung", "permit_expires": "31.02.2027", "rechtskreis": "sgb2"},
    )
    assert refused.status_code == 422
    assert (
        '<p class="field-error" id="neu-permit_expires-fehler">'
        "Bitte geben Sie ein Datum im Format TT.MM.JJJJ ein, z. B. 24.11.2026.</p>"
    ) in refused.text
    field = re.search(r'<input type="text" id="neu-permit_expires"[^>]*>', refused.text).group(0)
    assert 'aria-invalid="true"' in field and "neu-permit_expires-fehler" in field
    assert 'value="31.02.2027"' in field, "what was typed stays in the field"
    assert '<option value="sgb2" selected>' in refused.text

    opened = caseworker.post(
        "/faelle/neu",
        {
            "prozess": "jobcenter_ueberleitung",
            "permit_expires": "28.02.2027",
            "rechtskreis": "sgb2",
            "aufenthaltsstatus": "ae_24",
            "mir_zuweisen": "1",
        },
    )
    assert opened.status_code == 303
    case_id = int(re.fullmatch(r"/faelle/(\d+)\?erledigt=eroeffnet", opened.headers["location"]).group(1))
    case = api.engine.get_case(case_id)
    assert case.data == {"permit_expires": "2027-02-28", "rechtskreis": "sgb2", "aufenthaltsstatus": "ae_24"}
    assert case.team == "nord" and case.assignee == "cw_nord"
    [entry] = changes_logged(api, case_id)
    assert entry.actor == "cw_nord" and entry.route == "POST /faelle/neu"
    assert set(entry.fields) == {"permit_expires", "rechtskreis", "aufenthaltsstatus"}
    page = caseworker.get(opened.headers["location"])
    assert "Der Fall wurde eröffnet." in text(page.text)


def test_open_case_validates_numbers_and_lengths_in_german(api: Api, browse) -> None:
    refused = browse("cw_nord").post("/faelle/neu", {"prozess": "intake", "name": "x" * 41, "age": "zwölf"})
    assert refused.status_code == 422
    shown = text(refused.text)
    assert "Der Text ist zu lang: höchstens 40 Zeichen, eingegeben 41." in shown
    assert "Bitte geben Sie eine ganze Zahl ein, z. B. 3." in shown
    too_old = browse("cw_nord").post("/faelle/neu", {"prozess": "intake", "age": "131"})
    assert "Der Wert darf nicht größer als 130 sein." in text(too_old.text)
    unknown = browse("cw_nord").get("/faelle/neu?prozess=gibt_es_nicht")
    assert unknown.status_code == 404 and "Diesen Prozess gibt es nicht" in text(unknown.text)


# --------------------------------------------------------------------------- the case page


def test_case_page_shows_step_deadline_actions_reasons_data_and_logs_the_read(api: Api, browse) -> None:
    case = api.open_case("cw_nord", {"age": 34})
    page = browse("cw_nord").get(f"/faelle/{case['id']}")
    assert page.status_code == 200
    shown = text(page.text)
    assert "Aufnahme (Version 1)" in shown and "Aktueller Schritt Erfassung" in shown
    assert "Zuständige Stelle KIM-Case Management" in shown
    assert "Frist 05.03.2026 noch 3 Arbeitstage" in shown
    assert '<button type="submit">Daten erfassen</button>' in page.text
    # "Weiterleiten" needs a name, which its own form asks for: offered, with the name required.
    assert '<button type="submit">Weiterleiten</button>' in page.text
    assert "Name (Pflichtangabe)" in shown and "Derzeit nicht möglich" not in shown
    assert "Alter 34" in shown and "Verlauf" in shown and "Fall eröffnet" in shown
    reads = [e for e in audit.entries(api.engine.store, case_id=case["id"]) if e.access == audit.READ]
    assert [(r.actor, r.route, r.fields) for r in reads] == [("cw_nord", f"GET /faelle/{case['id']}", ("age",))]


def test_another_teams_case_is_not_found_and_unknown_numbers_too(api: Api, browse) -> None:
    case = api.open_case("cw_nord")
    south = browse("cw_sued")
    for url in (f"/faelle/{case['id']}", "/faelle/999999", "/faelle/abc", "/faelle/0"):
        page = south.get(url)
        assert page.status_code == 404 and "Seite nicht gefunden" in page.text, url
    change = south.post(f"/faelle/{case['id']}/aktionen/capture", {"version": "1", "name": "X"})
    assert change.status_code == 404
    assert api.engine.get_case(case["id"]).version == 1
    assert browse("koordination").get(f"/faelle/{case['id']}").status_code == 200


@pytest.mark.parametrize("role_user", ["projektgruppe", "admin"])
def test_project_group_and_admin_get_403_on_every_case_page(api: Api, browse, role_user: str) -> None:
    case = api.open_case("cw_nord", {"name": "Amira"})
    visitor = browse(role_user)
    for url in ("/faelle", "/faelle/neu", "/faelle/neu?prozess=intake", f"/faelle/{case['id']}", "/faelle/999999"):
        page = visitor.get(url)
        assert page.status_code == 403 and "Kein Zugriff" in page.text, url
        assert "Amira" not in page.text
    for url, data in (
        ("/faelle/neu", {"prozess": "intake"}),
        (f"/faelle/{case['id']}/aktionen/capture", {"version": "1", "name": "X"}),
        (f"/faelle/{case['id']}/pausieren", {"version": "1", "reason": "W-DOC"}),
        (f"/faelle/{case['id']}/hinweise", {"reason": "W-DOC", "text": "Ein Muster"}),
    ):
        assert visitor.post(url, data).status_code == 403, url
    assert api.engine.get_case(case["id"]).version == 1


def test_forms_without_the_csrf_token_are_refused(api: Api, browse) -> None:
    case = api.open_case("cw_nord")
    caseworker = browse("cw_nord")
    for url, data in (
        ("/faelle/neu", {"prozess": "intake"}),
        (f"/faelle/{case['id']}/aktionen/capture", {"version": "1", "name": "X"}),
        (f"/faelle/{case['id']}/zuweisen", {"version": "1", "assignee": "cw_nord"}),
        (f"/faelle/{case['id']}/einwilligungen", {"version": "1", "recipient": "JC"}),
    ):
        refused = caseworker.post(url, data, csrf=False)
        assert refused.status_code == 403 and "Formular abgelaufen" in refused.text, url
    assert api.engine.get_case(case["id"]).version == 1
    assert len(api.engine.list_cases()) == 1
    assert changes_logged(api, case["id"]) == []


def test_action_form_records_data_checks_it_in_german_and_moves_the_case(api: Api, browse) -> None:
    case = api.open_case("cw_nord")
    caseworker = browse("cw_nord")
    url = f"/faelle/{case['id']}"
    version = version_of(caseworker.get(url).text)
    too_old = caseworker.post(f"{url}/aktionen/capture", {"version": version, "age": "200", "path": "p25a"})
    assert too_old.status_code == 422
    assert (
        '<p class="field-error" id="aktion-capture-age-fehler">Der Wert darf nicht größer als 130 sein.</p>'
        in too_old.text
    )
    assert "Die Änderung wurde nicht gespeichert" in text(too_old.text)
    needs_name = caseworker.post(f"{url}/aktionen/forward", {"version": version})
    assert needs_name.status_code == 422
    assert (
        '<p class="field-error" id="aktion-forward-name-fehler">Diese Angabe ist für diese Aktion erforderlich.</p>'
        in needs_name.text
    )
    captured = caseworker.post(
        f"{url}/aktionen/capture", {"version": version, "name": "Amira", "age": "34", "path": "p25a"}
    )
    assert captured.status_code == 303 and captured.headers["location"] == f"{url}?erledigt=aktion"
    assert api.engine.get_case(case["id"]).data == {"name": "Amira", "age": 34, "path": "p25a"}
    page = caseworker.get(captured.headers["location"])
    assert "Die Aktion wurde ausgeführt." in text(page.text)
    assert re.search(r'id="aktion-forward-name" name="name" value="Amira"', page.text), "prefilled"
    forwarded = caseworker.post(f"{url}/aktionen/forward", {"version": version_of(page.text), "name": "Amira"})
    assert forwarded.status_code == 303
    moved = api.engine.get_case(case["id"])
    assert moved.step == "review"
    history = text(caseworker.get(url).text)
    assert "Weiterleiten" in history and "Schritt: Erfassung → Prüfung" in history
    assert "Angaben: Name: Amira; Alter: 34; Zielpfad: § 25a" in history
    logged = changes_logged(api, case["id"])
    assert [(e.route, e.fields) for e in logged] == [
        (f"POST {url}/aktionen/capture", ("age", "name", "path")),
        (f"POST {url}/aktionen/forward", ()),
    ]


def test_stale_page_cannot_overwrite_a_colleagues_change(api: Api, browse) -> None:
    case = api.open_case("cw_nord")
    caseworker = browse("cw_nord")
    url = f"/faelle/{case['id']}"
    stale_version = version_of(caseworker.get(url).text)
    unversioned = caseworker.post(f"{url}/aktionen/capture", {"name": "Amira"})
    assert unversioned.status_code == 400 and "Formular unvollständig" in text(unversioned.text)
    assert api.change(case, "assign", "koordination", json={"assignee": "koordination"}).status_code == 200
    refused = caseworker.post(f"{url}/aktionen/capture", {"version": stale_version, "name": "Amira"})
    assert refused.status_code == 409
    shown = text(refused.text)
    assert "Der Fall wurde inzwischen von koordination geändert" in shown
    assert "Zuständigkeit geändert" in shown and "Zuständig: koordination" in shown
    assert api.engine.get_case(case["id"]).data == {}, "nothing overwritten"
    assert changes_logged(api, case["id"]) == [], "a refused change leaves no access-log entry"
    retry = re.search(r'<form method="post" action="([^"]+)" class="inline-actions">(.*?)</form>', refused.text, re.S)
    assert retry and retry.group(1) == f"{url}/aktionen/capture"
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', retry.group(2)))
    assert fields["version"] == "2" and fields["name"] == "Amira"
    fields.pop(CSRF_FIELD)
    again = caseworker.post(retry.group(1), fields)
    assert again.status_code == 303
    assert api.engine.get_case(case["id"]).data == {"name": "Amira"}


def test_handoff_needs_consent_which_is_recorded_and_revoked_on_the_page(api: Api, browse) -> None:
    api.engine.deploy([JOBCENTER], actor="setup")
    opened = api.request(
        "POST",
        "/api/v1/cases",
        "cw_nord",
        json={"process_id": "jobcenter_ueberleitung", "data": {"rechtskreis": "sgb2", "aufenthaltsstatus": "ae_24"}},
    )
    case_id = opened.json()["id"]
    for action, data in (
        ("jobcenter_zustaendig", {}),
        ("einwilligung_dokumentiert", {}),
        ("antrag_gestellt", {"antrag_datum": "2026-03-02"}),
    ):
        fire_via_api(api, case_id, action, data)
    caseworker = browse("cw_nord")
    url = f"/faelle/{case_id}"
    page = caseworker.get(url)
    shown = text(page.text)
    blocked = shown[shown.index("Derzeit nicht möglich") : shown.index("Einwilligungen Übergaben")]
    assert "Übergabe erfolgt und vom Jobcenter bestätigt" in blocked
    assert "Es fehlt: Einwilligung gegenüber Jobcenter (SGB II)" in blocked
    assert "Kundennummer" not in blocked, "data its own form asks for is no reason"
    assert 'href="#einwilligung-erfassen"' in page.text
    # The consent form is prefilled from the handoff: recipient and the categories it shares.
    assert '<option value="JC" selected>' in page.text
    for category in ("identity", "residence", "education", "family"):
        assert f'value="{category}" checked' in page.text
    handoff = {"version": version_of(page.text), "jc_kundennummer": "JC-4711", "jc_team": "Team 4"}
    refused = caseworker.post(f"{url}/aktionen/uebergabe_bestaetigt", handoff)
    assert refused.status_code == 409
    assert "Es fehlt: Einwilligung gegenüber Jobcenter (SGB II)" in text(refused.text)
    assert api.engine.get_case(case_id).step == "warme_uebergabe"

    incomplete = caseworker.post(
        f"{url}/einwilligungen", {"version": handoff["version"], "recipient": "JC", "valid_until": "32.12.2026"}
    )
    assert incomplete.status_code == 422
    shown = text(incomplete.text)
    assert "Bitte geben Sie den Zweck der Einwilligung an." in shown
    assert "Bitte wählen Sie mindestens eine Datenkategorie." in shown
    assert "Bitte geben Sie ein Datum im Format TT.MM.JJJJ ein" in shown
    consent = {
        "version": handoff["version"],
        "recipient": "JC",
        "purpose": "Warme Übergabe an das Jobcenter",
        "categories": ["identity", "residence", "education", "family"],
        "valid_until": "31.12.2026",
    }
    recorded = caseworker.post(f"{url}/einwilligungen", consent)
    assert recorded.status_code == 303 and recorded.headers["location"].endswith("#einwilligungen")
    [stored] = api.engine.consents(case_id)
    assert stored.recipient == "JC" and stored.valid_until == "2026-12-31"
    page = caseworker.get(url)
    assert "Warme Übergabe an das Jobcenter" in text(page.text) and "31.12.2026" in text(page.text)
    revoked = caseworker.post(f"{url}/einwilligungen/{stored.id}/widerrufen", {"version": version_of(page.text)})
    assert revoked.status_code == 303
    page = caseworker.get(url)
    assert "widerrufen" in text(page.text)
    assert "Es fehlt: Einwilligung gegenüber Jobcenter (SGB II)" in text(page.text)
    consent["version"] = version_of(page.text)
    assert caseworker.post(f"{url}/einwilligungen", consent).status_code == 303
    page = caseworker.get(url)
    handoff["version"] = version_of(page.text)
    fired = caseworker.post(f"{url}/aktionen/uebergabe_bestaetigt", handoff)
    assert fired.status_code == 303
    assert api.engine.get_case(case_id).step == "erstgespraech"
    history = text(caseworker.get(url).text)
    assert "Übergabe von KIM-Case Management an Jobcenter (SGB II)" in history
    assert "Einwilligung widerrufen" in history and "Einwilligung erfasst" in history
    assert [e.fields for e in changes_logged(api, case_id)][-4:] == [
        ("consents",),
        ("consents",),
        ("consents",),
        ("jc_kundennummer", "jc_team"),
    ]


def test_pause_resume_waiting_and_assignment(api: Api, browse) -> None:
    case = api.open_case("cw_nord")
    caseworker = browse("cw_nord")
    url = f"/faelle/{case['id']}"
    version = version_of(caseworker.get(url).text)
    no_reason = caseworker.post(f"{url}/pausieren", {"version": version})
    assert no_reason.status_code == 422
    assert '<p class="field-error" id="pause-reason-fehler">Bitte wählen Sie einen Grund aus der Liste.</p>' in (
        no_reason.text
    )
    paused = caseworker.post(f"{url}/pausieren", {"version": version, "reason": "W-DOC", "note": "Pass fehlt"})
    assert paused.status_code == 303
    page = caseworker.get(url)
    shown = text(page.text)
    assert "pausiert: Unterlagen fehlen (Klient:in)" in shown and "Frist angehalten" in shown
    assert "pausiert" in text(caseworker.get("/faelle").text)
    resumed = caseworker.post(f"{url}/fortsetzen", {"version": version_of(page.text)})
    assert resumed.status_code == 303 and not api.engine.get_case(case["id"]).paused

    page = caseworker.get(url)
    waiting = caseworker.post(
        f"{url}/wartet-auf", {"version": version_of(page.text), "party": "KLIENT", "reason": "W-CLIENT"}
    )
    assert waiting.status_code == 303
    worklist = text(caseworker.get("/faelle").text)
    assert "Klientin / Klient Klient:in nicht erreichbar (Krankheit, Arbeit, Kinderbetreuung)" in worklist

    page = caseworker.get(url)
    foreign = caseworker.post(f"{url}/zuweisen", {"version": version_of(page.text), "assignee": "cw_sued"})
    assert foreign.status_code == 422 and "Bitte wählen Sie eine Person aus der Liste." in text(foreign.text)
    assert '<option value="cw_sued"' not in page.text
    mine = caseworker.post(f"{url}/zuweisen", {"version": version_of(page.text), "assignee": "cw_nord"})
    assert mine.status_code == 303 and api.engine.get_case(case["id"]).assignee == "cw_nord"
    page = caseworker.get(url)
    assert "Mir zuweisen" not in page.text and "Zuständig ist: cw_nord" in text(page.text)
    nobody = caseworker.post(f"{url}/zuweisen", {"version": version_of(page.text), "assignee": ""})
    assert nobody.status_code == 303 and api.engine.get_case(case["id"]).assignee is None
    assert [e.fields for e in changes_logged(api, case["id"])] == [
        ("pause",),
        ("pause",),
        ("waiting_on",),
        ("assignee",),
        ("assignee",),
    ]


def test_ending_a_case_early_or_cancelling_it_needs_an_outcome_and_a_reason(api: Api, browse) -> None:
    caseworker = browse("cw_nord")
    moved, mistake = api.open_case("cw_nord"), api.open_case("cw_nord")
    url = f"/faelle/{moved['id']}"
    page = caseworker.get(url)
    assert "Fall beenden" in text(page.text)
    missing = caseworker.post(f"{url}/beenden", {"version": version_of(page.text), "outcome": "", "end_reason": ""})
    assert missing.status_code == 422
    shown = text(missing.text)
    assert "Bitte wählen Sie, wie der Fall endet." in shown and "Bitte begründen Sie das Beenden" in shown
    assert api.engine.get_case(moved["id"]).status == "open"
    ended = caseworker.post(
        f"{url}/beenden", {"version": version_of(page.text), "outcome": "verzogen", "end_reason": "nach Köln verzogen"}
    )
    assert ended.status_code == 303
    closed = api.engine.get_case(moved["id"])
    assert (closed.status, closed.outcome) == ("closed", "verzogen")
    after = text(caseworker.get(url).text)
    assert "Vorzeitig beendet" in after and "Fall beenden" not in after

    url = f"/faelle/{mistake['id']}"
    page = caseworker.get(url)
    cancelled = caseworker.post(
        f"{url}/beenden", {"version": version_of(page.text), "outcome": "storniert", "end_reason": "doppelt angelegt"}
    )
    assert cancelled.status_code == 303
    assert api.engine.get_case(mistake["id"]).status == "cancelled"
    assert [e.fields for e in changes_logged(api, mistake["id"])] == [()]


def test_structural_finding_only_on_a_stalled_visit(api: Api, browse) -> None:
    case = api.open_case("cw_nord", {"name": "Amira Beispiel"})
    caseworker = browse("cw_nord")
    url = f"/faelle/{case['id']}"
    finding = {"reason": "W-APPT", "text": "Keine Termine bei der Ausländerbehörde vor Ablauf"}
    on_time = caseworker.post(f"{url}/hinweise", finding)
    assert on_time.status_code == 409
    assert "Ein struktureller Hinweis ist nur zu einem Schritt möglich, der seine Frist überschritten hat" in text(
        on_time.text
    )
    assert api.engine.findings() == []
    api.advance(timedelta(days=7))
    quoting = caseworker.post(f"{url}/hinweise", {"reason": "W-APPT", "text": "Amira Beispiel wartet auf Termin"})
    assert quoting.status_code == 422
    assert "Der Text enthält Angaben aus diesem Fall." in text(quoting.text)
    too_short = caseworker.post(f"{url}/hinweise", {"reason": "W-APPT", "text": "ab"})
    assert "Bitte beschreiben Sie den Hinweis in 5 bis 500 Zeichen." in text(too_short.text)
    saved = caseworker.post(f"{url}/hinweise", finding)
    assert saved.status_code == 303
    [stored] = api.engine.findings()
    assert stored.code == "W-APPT" and stored.case_id == case["id"] and stored.created_by == "cw_nord"
    assert [e.route for e in changes_logged(api, case["id"])] == [f"POST {url}/hinweise"]
    assert api.engine.get_case(case["id"]).version == 1


def test_child_cases_are_linked_both_ways(api: Api, browse) -> None:
    steps = {
        "start": {
            "title": "Start",
            "agency": "KIM-CM",
            "expected": "3 Arbeitstage",
            "actions": {"kind_starten": {"title": "Teilfall starten", "start_child": {"process": "intake", "as": "k"}}},
        },
        "fertig": {"title": "Fertig", "final": True, "outcome": "ok"},
    }
    steps["start"]["actions"]["ende"] = {"title": "Ende", "next": "fertig"}
    api.engine.deploy_text(process_yaml(id="eltern", title="Elternprozess", steps=steps), actor="setup")
    parent = api.request("POST", "/api/v1/cases", "cw_nord", json={"process_id": "eltern"}).json()
    caseworker = browse("cw_nord")
    page = caseworker.get(f"/faelle/{parent['id']}")
    fired = caseworker.post(f"/faelle/{parent['id']}/aktionen/kind_starten", {"version": version_of(page.text)})
    assert fired.status_code == 303
    [child] = api.engine.children(parent["id"])
    page = caseworker.get(f"/faelle/{parent['id']}")
    assert f'<a href="/faelle/{child.id}">{child.id}</a>' in page.text and "Teilfälle" in text(page.text)
    child_page = caseworker.get(f"/faelle/{child.id}")
    assert f'href="/faelle/{parent["id"]}"' in child_page.text and "Teilfall von" in text(child_page.text)


def test_case_page_in_english(api: Api, browse) -> None:
    case = api.open_case("cw_nord")
    caseworker = browse("cw_nord")
    caseworker.client.cookies.set("kimflow_lang", "en")
    page = caseworker.get(f"/faelle/{case['id']}")
    assert '<html lang="en">' in page.text
    assert "Intake" in text(page.text), "English step titles from the definition"
