"""Logging in and out, the language switch and the accessibility statement, in a real browser."""

from __future__ import annotations

import re

import pytest

from tests.web.conftest import assert_accessible, login, screenshot

pytestmark = pytest.mark.xdist_group("browser")


def test_login_page_is_german_and_accessible(page) -> None:
    page.goto("/")
    assert re.search(r"/anmelden", page.url)
    assert page.locator("html").get_attribute("lang") == "de"
    assert page.get_by_role("heading", name="Anmelden").is_visible()
    assert_accessible(page)
    screenshot(page, "anmelden")


def test_wrong_password_is_refused_with_a_german_message(page, demo_server) -> None:
    page.goto("/anmelden")
    page.get_by_label("Benutzername").fill("fallmanagement")
    page.get_by_label("Passwort").fill("falsch-falsch")
    page.get_by_role("button", name="Anmelden").click()
    assert page.get_by_role("alert").inner_text().startswith("Benutzername oder Passwort stimmt nicht")
    assert_accessible(page, "login error")


def test_each_role_lands_on_its_start_page_and_logs_out(page, demo_server) -> None:
    for name, start in (
        ("fallmanagement", "/faelle"),
        ("koordination", "/faelle"),
        ("projektgruppe", "/auswertung"),
        ("admin", "/konten"),
    ):
        login(page, demo_server, name)
        assert page.url.endswith(start), (name, page.url)
        page.get_by_role("button", name="Abmelden").click()
        assert "/anmelden" in page.url
        page.goto(start)
        assert "/anmelden" in page.url, "the session must end with the logout"


def test_language_switch_to_english_and_back(page) -> None:
    page.goto("/barrierefreiheit")
    assert page.get_by_role("heading", level=1).inner_text() == "Erklärung zur Barrierefreiheit"
    assert_accessible(page)
    screenshot(page, "barrierefreiheit")
    page.get_by_role("button", name="English").click()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_role("heading", level=1).inner_text() == "Accessibility statement"
    page.get_by_role("button", name="Deutsch").click()
    assert page.locator("html").get_attribute("lang") == "de"


def test_keyboard_user_reaches_the_content_by_the_skip_link(page) -> None:
    page.goto("/barrierefreiheit")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent.trim()")
    assert focused == "Zum Inhalt springen"
    page.keyboard.press("Enter")
    assert page.url.endswith("#inhalt")
