"""The caseworker's job in a real browser: worklist, opening a case, refused handoff, consent, advance, history."""

from __future__ import annotations

import re

import pytest

from tests.web.conftest import assert_accessible, login, screenshot

pytestmark = pytest.mark.xdist_group("browser")

PROCESS = "Überleitung an das Jobcenter (warme Übergabe)"
HANDOFF = "Übergabe erfolgt und vom Jobcenter bestätigt"


def test_caseworker_is_refused_the_handoff_without_consent_records_it_and_advances(page, demo_server) -> None:
    login(page, demo_server, "fallmanagement")
    assert page.url.endswith("/faelle")
    worklist = page.get_by_role("table")
    assert worklist.locator("caption").inner_text().startswith("Fälle nach Frist")
    assert worklist.locator("tbody tr").count() == 50, "the demo year fills the first page"
    assert page.get_by_role("link", name="Nächste 50 Fälle").is_visible()
    assert_accessible(page, "worklist")
    screenshot(page, "arbeitsliste")

    page.get_by_role("navigation", name="Hauptnavigation").get_by_role("link", name="Fall eröffnen").click()
    page.get_by_label(PROCESS).check()
    assert_accessible(page, "choosing a process")
    page.get_by_role("button", name="Weiter zu den Angaben").click()
    assert page.get_by_role("heading", level=1).inner_text() == f"Fall eröffnen: {PROCESS}"
    page.get_by_label("Aufenthaltsstatus", exact=True).select_option("ae_24")
    page.get_by_label("Zuständiger Rechtskreis").select_option("sgb2")
    permit = page.get_by_label("Aufenthaltstitel gültig bis")
    permit.fill("31.02.2027")
    page.get_by_role("button", name="Fall eröffnen").click()
    assert permit.get_attribute("aria-invalid") == "true"
    error = page.locator("#neu-permit_expires-fehler")
    assert error.inner_text() == "Bitte geben Sie ein Datum im Format TT.MM.JJJJ ein, z. B. 24.11.2026."
    assert "neu-permit_expires-fehler" in (permit.get_attribute("aria-describedby") or "")
    assert_accessible(page, "new-case form with an error")
    screenshot(page, "fall-eroeffnen")
    permit.fill("28.02.2027")
    page.get_by_role("button", name="Fall eröffnen").click()

    assert re.search(r"/faelle/\d+", page.url)
    assert page.get_by_role("status").inner_text() == "Der Fall wurde eröffnet."
    page.get_by_role("button", name="Jobcenter zuständig – Einwilligung einholen").click()
    page.get_by_role("button", name="Einwilligung unterschrieben und im Fall erfasst – weiter zum Antrag").click()
    application = page.locator("#aktion-antrag_gestellt")
    application.get_by_label("Antrag auf Bürgergeld gestellt am").fill("02.03.2026")
    application.get_by_role("button", name="Antrag beim Jobcenter gestellt").click()

    # The handoff is not offered: the consent towards the Jobcenter is missing, and the page says so.
    assert page.get_by_role("button", name=HANDOFF).count() == 0
    blocked = page.locator("section", has=page.get_by_role("heading", name="Derzeit nicht möglich"))
    assert HANDOFF in blocked.inner_text()
    assert "Es fehlt: Einwilligung gegenüber Jobcenter (SGB II)" in blocked.inner_text()
    assert_accessible(page, "case page")
    screenshot(page, "fall")

    blocked.get_by_role("link", name="Einwilligung erfassen").click()
    consent = page.locator("#einwilligung")
    assert consent.get_by_label("Empfänger (Stelle)").input_value() == "JC"
    assert consent.get_by_label("Identität").is_checked() and consent.get_by_label("Aufenthaltsstatus").is_checked()
    consent.get_by_label("Zweck").fill("Warme Übergabe an das Jobcenter")
    consent.get_by_label("Gültig bis (freiwillig)").fill("31.12.2027")
    consent.get_by_role("button", name="Einwilligung erfassen").click()
    assert page.get_by_role("status").inner_text() == "Die Einwilligung wurde erfasst."
    consents = page.get_by_role("table", name="Erfasste Einwilligungen")
    assert "Warme Übergabe an das Jobcenter" in consents.inner_text() and "31.12.2027" in consents.inner_text()

    handoff = page.locator("#aktion-uebergabe_bestaetigt")
    handoff.get_by_label("Kundennummer / BG-Nummer des Jobcenters").fill("JC-4711")
    handoff.get_by_label("Zuständiges Team / Ansprechperson im Jobcenter (Funktion)").fill("Team Integration 4")
    handoff.get_by_role("button", name=HANDOFF).click()
    assert page.get_by_role("status").inner_text() == "Die Aktion wurde ausgeführt."
    overview = page.locator("section", has=page.get_by_role("heading", name="Überblick")).inner_text()
    assert "Erstgespräch und Potenzialanalyse" in overview and "Jobcenter (SGB II)" in overview

    history = page.locator(".timeline").inner_text()
    assert history.index(HANDOFF) < history.index("Einwilligung erfasst") < history.index("Fall eröffnet")
    assert "Übergabe von KIM-Case Management an Jobcenter (SGB II)" in history
    assert_accessible(page, "case page after the handoff")
    screenshot(page, "fall-nach-uebergabe")


def test_worklist_filters_and_search_work_without_script(page, demo_server) -> None:
    login(page, demo_server, "fallmanagement")
    page.get_by_label("Frist", exact=True).select_option("overdue")
    page.get_by_role("button", name="Filter anwenden").click()
    assert "frist=overdue" in page.url
    badges = page.locator("tbody .badge--overdue")
    rows = page.locator("tbody tr")
    assert rows.count() > 0 and badges.count() == rows.count(), "only overdue cases"
    first = rows.first.locator("th a").inner_text()
    page.get_by_label("Fallnummer").fill(first)
    page.get_by_role("button", name="Fall öffnen").click()
    assert page.url.endswith(f"/faelle/{first}")
    assert_accessible(page, "a simulated case")
