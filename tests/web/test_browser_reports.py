"""The project group's and the administrator's work in a real browser, against ``kimflow serve --demo``.

A project-group member logs in, reads the stall dashboard with its charts, downloads a CSV,
runs a before/after comparison and is refused a case page; an administrator adds and disables
an account and reads the access log, which shows a case read done through the HTTP API.
Every page is checked with axe-core and photographed (``artifacts/screenshots``).
"""

from __future__ import annotations

import httpx2 as httpx
import pytest

from tests.web.conftest import assert_accessible, login, screenshot

pytestmark = pytest.mark.xdist_group("browser")


def test_projectgroup_reads_the_dashboard_and_the_comparison_and_reaches_no_case(page, demo_server) -> None:
    login(page, demo_server, "projektgruppe")
    assert page.url.endswith("/auswertung")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Auswertung")
    assert page.get_by_role("img", name="Überschreitung in Arbeitstagen nach Schritt").is_visible()
    assert page.get_by_role("img", name="Überschreitung in Arbeitstagen nach Stelle").is_visible()
    assert page.get_by_role("img", name="Überschreitungsquote je Monat").is_visible()
    assert page.get_by_role("img", name="Median der Wartezeit in Arbeitstagen nach Übergabe").is_visible()
    assert page.get_by_role("table", name="Optimierungskandidaten mit den Regeln, die zutreffen").is_visible()
    assert page.get_by_text("Gruppen mit weniger als 5 Besuchen werden nicht gezeigt").is_visible()
    assert page.get_by_role("button", name="Strukturhinweis eröffnen").count() == 0
    assert page.locator("a[href^='/faelle']").count() == 0
    assert_accessible(page, "dashboard")
    screenshot(page, "auswertung")

    with page.expect_download() as download:
        page.get_by_role("link", name="CSV: Schritte").click()
    assert download.value.suggested_filename == "stillstandsbericht-schritte.csv"

    page.get_by_role("navigation", name="Hauptnavigation").get_by_role("link", name="Vergleich").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Vorher-nachher-Vergleich"
    assert_accessible(page, "comparison form")
    page.get_by_label("Prozess", exact=True).select_option("chancen_antrag")
    page.get_by_role("button", name="Vergleichen").click()
    assert page.get_by_role("heading", name="Ergebnis").is_visible()
    assert page.get_by_role("table", name="Vergleich je Schritt").is_visible()
    assert page.get_by_text("Bootstrap").first.is_visible()
    assert_accessible(page, "comparison")
    screenshot(page, "vergleich")

    refused = page.goto("/faelle/1")
    assert refused is not None and refused.status == 403
    assert page.get_by_role("heading", level=1).inner_text() == "Kein Zugriff"
    assert_accessible(page, "case page refused")
    screenshot(page, "auswertung-kein-fallzugriff")


def test_coordinator_sees_the_structural_buttons(page, demo_server) -> None:
    login(page, demo_server, "koordination")
    page.goto("/auswertung")
    assert page.get_by_role("button", name="Strukturhinweis eröffnen").count() >= 1
    assert_accessible(page, "dashboard of a coordinator")


def test_admin_adds_and_disables_an_account_and_reads_the_access_log(page, demo_server) -> None:
    token = httpx.post(
        f"{demo_server.url}/api/v1/auth/token",
        data={"username": "koordination", "password": demo_server.passwords["koordination"]},
    ).json()["access_token"]
    read = httpx.get(f"{demo_server.url}/api/v1/cases/1", headers={"Authorization": f"Bearer {token}"})
    assert read.status_code == 200

    login(page, demo_server, "admin")
    assert page.url.endswith("/konten")
    assert page.get_by_role("table", name="Konten mit Rolle, Team und Zustand").is_visible()
    assert_accessible(page, "accounts")
    screenshot(page, "konten")

    page.get_by_label("Benutzername").fill("browser.probe")
    page.get_by_label("Rolle", exact=True).select_option(label="Projektgruppe")
    page.get_by_label("Erstes Passwort").fill("lang-genug-1")
    page.get_by_label("Passwort wiederholen").fill("anders-als-vorher")
    page.get_by_role("button", name="Konto anlegen").click()
    assert page.get_by_text("Die beiden Passwörter stimmen nicht überein.").is_visible()
    assert page.get_by_label("Passwort wiederholen").get_attribute("aria-invalid") == "true"
    assert_accessible(page, "accounts with an error")
    page.get_by_label("Erstes Passwort").fill("lang-genug-1")
    page.get_by_label("Passwort wiederholen").fill("lang-genug-1")
    page.get_by_role("button", name="Konto anlegen").click()
    assert page.get_by_role("status").inner_text() == "Das Konto „browser.probe“ wurde angelegt."

    page.get_by_role("link", name="Sperren (Konto browser.probe)").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Konto „browser.probe“ sperren?"
    assert_accessible(page, "disable confirmation")
    screenshot(page, "konto-sperren")
    page.get_by_role("button", name="Ja, Konto sperren").click()
    assert "ist gesperrt" in page.get_by_role("status").inner_text()

    page.get_by_role("link", name="Zugriffsprotokoll").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Zugriffsprotokoll"
    log = page.get_by_role("table", name="Zugriffe, die neuesten zuerst")
    assert log.get_by_role("row").filter(has_text="GET /api/v1/cases/1").first.is_visible()
    assert_accessible(page, "access log")
    screenshot(page, "zugriffsprotokoll")
    page.get_by_label("Benutzer", exact=True).select_option("koordination")
    page.get_by_label("Fallnummer").fill("1")
    page.get_by_role("button", name="Anzeigen").click()
    assert "benutzer=koordination" in page.url and "fall=1" in page.url
    assert log.get_by_role("row").filter(has_text="koordination").count() >= 1
