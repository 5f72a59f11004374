"""Process pages over HTTP (SQLite and PostgreSQL): list, process page with diagram and steps, the
printable description, the editor's live check, deploy and conflicts, and who may see what."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from api.web.routes.processes import NEW_PROCESS_TEMPLATE
from tests.factories import STEPS, process_yaml
from tests.web.pages import WebSession

HANDOFF_STEPS = {
    "intake": {
        "title": "Erfassung",
        "agency": "KIM-CM",
        "expected": "3 Arbeitstage",
        "warn_after": "2 Arbeitstage",
        "legal_refs": ["§ 1 KIM-Richtlinie"],
        "actions": {
            "forward": {
                "title": "An das Jobcenter übergeben",
                "requires": ["name"],
                "handoff": {"to": "JC", "shares": ["name", "income"]},
                "next": "review",
            },
            "remind": {"title": "Erinnerung an die Klientin", "system_only": True},
        },
        "timers": [{"after": "5 Arbeitstage", "action": "remind"}],
    },
    "review": {
        "title": "Prüfung im Jobcenter",
        "agency": "JC",
        "expected": "2 Wochen",
        "actions": {
            "report": {
                "title": "Ergebnis an die ABH melden",
                "handoff": {"to": "ABH", "shares": ["path"], "consent_required": False, "legal_basis": "§ 71 SGB X"},
                "next": "done",
            }
        },
    },
    "done": {"title": "Erledigt", "final": True, "outcome": "erledigt"},
}


DEPLOY = {"aktion": "bereitstellen"}


def _flat(html: str) -> str:
    """The page with runs of whitespace as one space (templates indent freely)."""
    return re.sub(r"\s+", " ", html)


def _line_of(text: str, needle: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), 1) if line.strip().startswith(needle))


# --------------------------------------------------------------------------- reading


def test_list_shows_versions_with_time_author_and_checksum(api) -> None:
    deployment = api.engine.registry.list()[0]
    page = WebSession(api, "koordination").get("/prozesse")
    assert page.status_code == 200
    assert '<a href="/prozesse/intake">Aufnahme</a>' in page.text
    assert deployment.checksum[:12] in page.text and "setup" in page.text
    assert 'href="/prozesse/intake/1/beschreibung"' in page.text
    assert 'href="/prozesse/neu"' in page.text and 'href="/prozesse/intake/bearbeiten"' in page.text


def test_caseworker_reads_processes_but_gets_no_editor_links(api) -> None:
    page = WebSession(api, "cw_nord").get("/prozesse")
    assert page.status_code == 200 and "Aufnahme" in page.text
    assert "/bearbeiten" not in page.text and "/prozesse/neu" not in page.text
    show = WebSession(api, "cw_nord").get("/prozesse/intake")
    assert show.status_code == 200
    assert "Über der Frist" not in show.text, "stall shares are the coordinator's view"


def test_process_page_has_the_diagram_and_the_steps_table(api) -> None:
    page = WebSession(api, "koordination").get("/prozesse/intake")
    assert page.status_code == 200
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="process-diagram" role="img"' in page.text
    assert "Schritte von „Aufnahme“, Version 1" in page.text
    assert "Weiterleiten → Prüfung" in _flat(page.text)
    assert "3 Arbeitstage" in page.text and "2 Arbeitstage" in page.text and "2 Wochen" in page.text
    assert WebSession(api, "koordination").get("/prozesse/intake/1").text.count('data-step="') == 4


def test_coordinator_sees_steps_coloured_by_their_stall_share(api) -> None:
    engine = api.engine
    late = engine.open_case("intake", actor="setup", data={"name": "A"})
    quick = engine.open_case("intake", actor="setup", data={"name": "B"})
    engine.fire(quick.id, "forward", actor="setup")
    api.clock.advance(timedelta(days=10))
    engine.fire(late.id, "forward", actor="setup")
    page = WebSession(api, "koordination").get("/prozesse/intake/1")
    assert "Über der Frist: 50\xa0%" in page.text
    assert "Über der Frist: keine Daten" in page.text  # "review": no visit completed yet
    assert re.search(r'<td class="num">1 \(50\s*%\)</td>', page.text)
    assert "Anteil der abgeschlossenen Besuche über der Frist" in page.text


def test_unknown_process_or_version_is_a_404_page(api) -> None:
    session = WebSession(api, "koordination")
    for url in ("/prozesse/gibtsnicht", "/prozesse/intake/7", "/prozesse/intake/7/beschreibung"):
        page = session.get(url)
        assert page.status_code == 404 and "Seite nicht gefunden" in page.text, url


def test_english_page_uses_the_english_titles(api) -> None:
    page = WebSession(api, "koordination").get("/prozesse/intake", headers={"Accept-Language": "en"})
    assert '<html lang="en">' in page.text and "Intake" in page.text and "3 office days" in page.text


def test_description_names_handoffs_deadlines_timers_and_legal_references(api) -> None:
    api.engine.deploy_text(
        process_yaml(id="uebergabe", steps=HANDOFF_STEPS, decision_ref="Lenkungsgruppe 2026-05-12, TOP 4"),
        actor="setup",
    )
    page = WebSession(api, "cw_nord").get("/prozesse/uebergabe/1/beschreibung")
    assert page.status_code == 200
    text = re.sub(r"\s+", " ", page.text)
    assert "Übergabe von KIM-Case Management an Jobcenter" in text
    assert "übermittelt Name, Einkommen (Datenkategorien: Sozialleistungen, Identität)" in text
    assert "Nur mit Einwilligung der Klientin oder des Klienten gegenüber dieser Stelle." in text
    assert "Ohne Einwilligung, Rechtsgrundlage: § 71 SGB X" in text
    assert "<td>Jobcenter (JC)</td> <td>Ausländerbehörde (ABH)</td>" in text
    assert "3 Arbeitstage" in text and "2 Wochen" in text and "≈ 10" in text  # weeks in working days
    assert "5 Arbeitstage nach Beginn des Schritts: Erinnerung an die Klientin" in text
    assert "Lenkungsgruppe 2026-05-12, TOP 4" in text and "§ 1 KIM-Richtlinie" in text
    assert "Ergebnis: erledigt" in text
    assert 'role="img"' in text


def test_source_is_the_deployed_text(api) -> None:
    page = WebSession(api, "cw_nord").get("/prozesse/intake/1/quelle")
    assert page.status_code == 200 and page.text == process_yaml()


@pytest.mark.parametrize("user", ["projektgruppe", "admin"])
def test_roles_without_process_access_get_403(api, user: str) -> None:
    session = WebSession(api, user)
    for url in ("/prozesse", "/prozesse/intake", "/prozesse/intake/1/beschreibung", "/prozesse/intake/bearbeiten"):
        page = session.get(url)
        assert page.status_code == 403 and "Kein Zugriff" in page.text, url


# --------------------------------------------------------------------------- the editor


def test_caseworker_cannot_reach_the_editor(api) -> None:
    session = WebSession(api, "cw_nord")
    assert session.get("/prozesse/intake/bearbeiten").status_code == 403
    assert session.get("/prozesse/neu").status_code == 403
    assert session.post("/prozesse/pruefung", {"quelle": process_yaml()}).status_code == 403
    refused = session.post("/prozesse/entwurf", {"quelle": process_yaml(version=2), "aktion": "bereitstellen"})
    assert refused.status_code == 403
    assert [d.version for d in api.engine.registry.list()] == [1]


def test_editor_is_prefilled_with_the_deployed_source(api) -> None:
    page = WebSession(api, "koordination").get("/prozesse/intake/bearbeiten")
    assert page.status_code == 200
    assert 'hx-post="/prozesse/pruefung"' in page.text and 'hx-trigger="input changed delay:500ms"' in page.text
    source = process_yaml().replace("'", "&#39;").replace('"', "&#34;")
    assert source in page.text
    assert "Keine Fehler: „intake“, Version 1 ist gültig." in page.text
    assert "Keine Änderungen gegenüber Version 1." in page.text


def test_live_check_shows_the_line_and_column_of_a_misspelt_key(api) -> None:
    text = process_yaml().replace("    expected: 2 Wochen", "    expectd: 2 Wochen")
    line = _line_of(text, "expectd:")
    fragment = WebSession(api, "koordination").post(
        "/prozesse/pruefung", {"quelle": text, "basis_prozess": "intake", "basis_version": "1"}
    )
    assert fragment.status_code == 200
    assert "<html" not in fragment.text, "a fragment, not a page"
    assert f'data-line="{line}" data-column="5">Zeile {line}, Spalte 5</a>: unknown key &#39;expectd&#39;' in (
        fragment.text
    )
    assert 'id="pruefung-status" hx-swap-oob="innerHTML"' in fragment.text
    assert "Probleme gefunden." in fragment.text or "Problem gefunden." in fragment.text
    removed = '<span class="visually-hidden">entfernt: </span><b class="mark">-</b>    expected: 2 Wochen</span>'
    added = '<span class="visually-hidden">hinzugefügt: </span><b class="mark">+</b>    expectd: 2 Wochen</span>'
    assert f'<span class="del">{removed}' in fragment.text and f'<span class="add">{added}' in fragment.text
    assert "Die Vorschau erscheint, sobald die Definition keine Fehler mehr hat." in fragment.text


def test_live_check_of_a_valid_draft_shows_the_diff_and_a_preview(api) -> None:
    text = process_yaml(version=2, title="Aufnahme neu")
    fragment = WebSession(api, "koordination").post(
        "/prozesse/pruefung", {"quelle": text.replace("\n", "\r\n"), "basis_prozess": "intake", "basis_version": "1"}
    )
    assert "Keine Fehler: „intake“, Version 2 ist gültig." in fragment.text
    assert "Zeilen hinzugefügt (+): 2, Zeilen entfernt (−): 2." in fragment.text
    assert 'aria-labelledby="vorschau-titel" aria-describedby="vorschau-beschreibung"' in fragment.text


def test_live_check_reports_an_unknown_child_process(api) -> None:
    steps = {**STEPS, "intake": {**STEPS["intake"], "actions": {
        **STEPS["intake"]["actions"],
        "child": {"title": "Teilfall", "start_child": {"process": "gibtsnicht", "as": "kind"}},
    }}}  # fmt: skip
    fragment = WebSession(api, "koordination").post("/prozesse/pruefung", {"quelle": process_yaml(steps=steps)})
    assert "child process &#39;gibtsnicht&#39; is neither in these files nor deployed" in fragment.text


def test_check_without_javascript_renders_the_editor_with_the_problems(api) -> None:
    text = process_yaml().replace("title: Erfassung", "titel: Erfassung")
    page = WebSession(api, "koordination").post(
        "/prozesse/entwurf", {"quelle": text, "basis_prozess": "intake", "basis_version": "1", "aktion": "pruefen"}
    )
    assert page.status_code == 422
    assert 'aria-invalid="true"' in page.text
    assert f"Zeile {_line_of(text, 'titel: Erfassung')}, Spalte 5</a>" in page.text
    assert "titel: Erfassung" in page.text, "the draft is kept"


def test_deploy_creates_the_new_version_and_redirects_to_it(api) -> None:
    session = WebSession(api, "koordination")
    text = process_yaml(version=2, title="Aufnahme (überarbeitet)")
    response = session.post(
        "/prozesse/entwurf",
        {
            "quelle": text.replace("\n", "\r\n"),
            "basis_prozess": "intake",
            "basis_version": "1",
            "aktion": "bereitstellen",
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/prozesse/intake/2?bereitgestellt=neu"
    newest = api.engine.registry.list()[-1]
    assert (newest.version, newest.deployed_by) == (2, "koordination")
    assert api.engine.registry.source("intake", 2) == text, "CRLF from the browser is stored as LF"
    page = session.get(response.headers["location"])
    assert "Version 2 wurde bereitgestellt." in page.text and "Aufnahme (überarbeitet)" in page.text
    again = session.post("/prozesse/entwurf", {"quelle": text, "aktion": "bereitstellen"})
    assert again.headers["location"] == "/prozesse/intake/2?bereitgestellt=unveraendert"
    assert "es hat sich nichts geändert" in session.get(again.headers["location"]).text


def test_deploying_changed_content_under_a_deployed_version_is_refused(api) -> None:
    text = process_yaml(title="Aufnahme, aber anders")
    page = WebSession(api, "koordination").post(
        "/prozesse/entwurf",
        {"quelle": text, "basis_prozess": "intake", "basis_version": "1", "aktion": "bereitstellen"},
    )
    assert page.status_code == 409
    assert "Version 1 von „intake“ ist schon mit anderem Inhalt bereitgestellt." in page.text
    assert "intake@1 is already deployed with different content; a deployed version never changes" in page.text
    assert "deploy the change as version 2" in page.text
    assert f"Zeile {_line_of(text, 'version: 1')}, Spalte" in page.text
    assert [d.version for d in api.engine.registry.list()] == [1]


def test_an_invalid_draft_is_not_deployed(api) -> None:
    text = process_yaml(version=2).replace("next: review", "next: revew")
    page = WebSession(api, "koordination").post("/prozesse/entwurf", {"quelle": text, "aktion": "bereitstellen"})
    assert page.status_code == 422
    assert "action &#39;forward&#39; leads to unknown step &#39;revew&#39;" in page.text
    assert [d.version for d in api.engine.registry.list()] == [1]


def test_deploy_needs_the_csrf_token(api) -> None:
    refused = WebSession(api, "koordination").post(
        "/prozesse/entwurf", {"quelle": process_yaml(version=2), "aktion": "bereitstellen"}, csrf=False
    )
    assert refused.status_code == 403 and "Formular abgelaufen" in refused.text
    assert [d.version for d in api.engine.registry.list()] == [1]


def test_live_check_accepts_the_token_as_htmx_sends_it(api) -> None:
    session = WebSession(api, "koordination")
    fragment = session.post(
        "/prozesse/pruefung", {"quelle": process_yaml()}, csrf=False, headers={"X-CSRF-Token": session.csrf}
    )
    assert fragment.status_code == 200 and "ist gültig" in fragment.text


def test_new_process_starts_from_a_valid_template_and_deploys(api) -> None:
    session = WebSession(api, "koordination")
    page = session.get("/prozesse/neu")
    assert page.status_code == 200 and "Neuer Prozess" in page.text
    assert "Keine Fehler: „neuer_prozess“, Version 1 ist gültig." in page.text
    assert "es gibt keine bereitgestellte Version zum Vergleichen" in page.text
    response = session.post("/prozesse/entwurf", {"quelle": NEW_PROCESS_TEMPLATE, "aktion": "bereitstellen"})
    assert response.headers["location"] == "/prozesse/neuer_prozess/1?bereitgestellt=neu"
    assert session.get("/prozesse/neuer_prozess/1/beschreibung").status_code == 200
