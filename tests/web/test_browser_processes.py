"""The coordinator's process pages in a real browser: list, process page with the heatmap, the
printable description, and the issue's scenario in the editor (an error shown at its line, fixed,
the version bumped, the diff seen, deployed). Every page is checked with axe and photographed.

The scenario deploys version 2 of ``kita_platz`` on the shared demo server; only its version number
changes, so cases behave as before.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.web.conftest import assert_accessible, login, screenshot

pytestmark = pytest.mark.xdist_group("browser")

PROCESS = "kita_platz"


def _line_of(text: str, needle: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), 1) if line.startswith(needle))


def test_process_list_page_and_description_are_accessible(page, demo_server) -> None:
    login(page, demo_server, "koordination")
    page.get_by_role("navigation", name="Hauptnavigation").get_by_role("link", name="Prozesse").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Prozesse"
    expect(page.get_by_role("table", name="Bereitgestellte Prozesse und Versionen")).to_be_visible()
    assert_accessible(page, "process list")
    screenshot(page, "prozesse")

    page.get_by_role("link", name="Kita-Platz (Betreuungsbedarf anmelden und Platz vermitteln)", exact=True).click()
    assert page.url.endswith(f"/prozesse/{PROCESS}")
    diagram = page.get_by_role("img", name=re.compile("^Ablaufdiagramm: Kita-Platz"))
    expect(diagram).to_be_visible()
    # The coordinator's heatmap: every working step states its share as text.
    assert page.locator("svg .step", has_text="Über der Frist:").count() == 4
    expect(page.get_by_role("table", name=re.compile("^Schritte von"))).to_be_visible()
    assert_accessible(page, "process page")
    screenshot(page, "prozess")

    page.get_by_role("link", name="Beschreibung zum Weitergeben (Kooperationskonzept)").click()
    expect(page.get_by_role("heading", name="Übergaben zwischen Stellen")).to_be_visible()
    expect(page.get_by_role("table", name="Übergaben und übermittelte Daten")).to_contain_text("Jugendamt")
    assert_accessible(page, "description")
    screenshot(page, "prozess-beschreibung")
    page.emulate_media(media="print")
    assert not page.get_by_role("navigation", name="Hauptnavigation").is_visible(), "no navigation in print"
    page.emulate_media(media="screen")


def test_caseworker_reads_processes_but_not_the_editor(page, demo_server) -> None:
    login(page, demo_server, "fallmanagement")
    page.goto(f"/prozesse/{PROCESS}")
    expect(page.get_by_role("img", name=re.compile("^Ablaufdiagramm"))).to_be_visible()
    assert page.locator("svg .step", has_text="Über der Frist:").count() == 0
    response = page.goto(f"/prozesse/{PROCESS}/bearbeiten")
    assert response is not None and response.status == 403
    assert page.get_by_role("heading", level=1).inner_text() == "Kein Zugriff"


def test_coordinator_fixes_an_error_at_its_line_and_deploys_a_new_version(page, demo_server) -> None:
    login(page, demo_server, "koordination")
    page.goto(f"/prozesse/{PROCESS}")
    page.get_by_role("link", name="Neue Version bearbeiten").click()
    editor = page.get_by_label("YAML-Quelle der Prozessdefinition")
    source = editor.input_value()
    expect(page.get_by_role("status")).to_contain_text(f"Keine Fehler: „{PROCESS}“, Version 1 ist gültig.")

    # A misspelt key: the live check names its line and column.
    broken = source.replace("    expected: 10 Arbeitstage", "    expectd: 10 Arbeitstage", 1)
    line = _line_of(broken, "    expectd:")
    editor.fill(broken)
    problem = page.get_by_role("link", name=f"Zeile {line}, Spalte 5")
    expect(problem).to_be_visible()
    expect(page.locator("#probleme li", has=problem)).to_contain_text("unknown key 'expectd'")
    expect(page.get_by_role("status")).to_contain_text("gefunden")
    assert editor.get_attribute("aria-invalid") == "true"
    assert_accessible(page, "editor with an error")
    screenshot(page, "prozess-editor-fehler")

    # The link puts the caret on the line of the error.
    problem.click()
    caret_line = page.evaluate(
        "() => { const a = document.getElementById('quelle'); "
        "return a.value.slice(0, a.selectionStart).split('\\n').length; }"
    )
    assert caret_line == line
    assert page.evaluate("document.activeElement.id") == "quelle"

    # Fixed and the version bumped: valid, with the diff against version 1 and a preview.
    fixed = re.sub(r"^version: 1$", "version: 2", source, count=1, flags=re.M)
    editor.fill(fixed)
    expect(page.get_by_role("status")).to_contain_text(f"Keine Fehler: „{PROCESS}“, Version 2 ist gültig.")
    assert editor.get_attribute("aria-invalid") == "false"
    expect(page.locator(".diff .del")).to_have_text("entfernt: -version: 1")
    expect(page.locator(".diff .add")).to_have_text("hinzugefügt: +version: 2")
    expect(page.get_by_role("img", name=re.compile("Version 2$"))).to_be_visible()
    assert_accessible(page, "editor with a valid draft")
    screenshot(page, "prozess-editor-diff")

    page.get_by_role("button", name="Bereitstellen").click()
    expect(page).to_have_url(re.compile(rf"/prozesse/{PROCESS}/2\?bereitgestellt=neu$"))
    expect(page.get_by_role("status")).to_contain_text("Version 2 wurde bereitgestellt.")
    expect(page.get_by_role("link", name="Version 2")).to_have_attribute("aria-current", "page")
    assert_accessible(page, "new version")
    screenshot(page, "prozess-neue-version")
