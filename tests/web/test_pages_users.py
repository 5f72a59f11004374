"""The administration pages over HTTP (SQLite and PostgreSQL): accounts and the access log."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from api.web.routes.users import PAGE_SIZE
from engine import audit
from tests.api.client import Api
from tests.api.conftest import PASSWORD
from tests.web.pages import WebSession

SENTINEL = "Zoë Sentinel-Adminblick-Q64"


def _login(api: Api, name: str, password: str) -> Any:
    api.client.cookies.clear()
    return api.client.post("/anmelden", data={"name": name, "password": password}, follow_redirects=False)


NEW = {
    "name": "m.muster",
    "rolle": "caseworker",
    "team": "nord",
    "passwort": "lang-genug-1",
    "passwort2": "lang-genug-1",
}


# --------------------------------------------------------------------------- accounts


def test_accounts_page_lists_every_account_with_role_team_and_state(api: Api) -> None:
    api.accounts.disable_user("cw_sued")
    page = WebSession(api, "admin").get("/konten")
    assert page.status_code == 200
    text = page.text
    for name in ("cw_nord", "cw_sued", "koordination", "projektgruppe", "admin"):
        assert f'<th scope="row">{name}</th>' in text
    assert "Fallmanagement" in text and "Projektgruppe" in text and "Administration" in text
    row = text.split('<th scope="row">cw_sued</th>')[1].split("</tr>")[0]
    assert "gesperrt" in row and "Sperren" not in row
    row = text.split('<th scope="row">cw_nord</th>')[1].split("</tr>")[0]
    assert "<td>nord</td>" in row and "aktiv" in row and 'href="/konten/sperren?name=cw_nord"' in row


def test_admin_adds_a_user_who_can_then_log_in(api: Api) -> None:
    session = WebSession(api, "admin")
    refused = session.post("/konten", NEW, csrf=False)
    assert refused.status_code == 403
    added = session.post("/konten", NEW)
    assert added.status_code == 303
    assert added.headers["location"] == "/konten?angelegt=m.muster"
    user = api.accounts.get_user("m.muster")
    assert (user.role, user.team, user.disabled) == ("caseworker", "nord", False)
    assert "Das Konto „m.muster“ wurde angelegt." in session.get(added.headers["location"]).text
    login = _login(api, "m.muster", "lang-genug-1")
    assert login.status_code == 303 and login.headers["location"] == "/faelle"


def test_adding_a_user_explains_each_refusal_in_german(api: Api) -> None:
    session = WebSession(api, "admin")
    mismatch = session.post("/konten", {**NEW, "passwort2": "anders-als-vorher"})
    assert mismatch.status_code == 422
    assert "Die beiden Passwörter stimmen nicht überein." in mismatch.text
    assert 'id="f-passwort2" name="passwort2" autocomplete="new-password" required aria-invalid="true"' in mismatch.text
    assert 'value="m.muster"' in mismatch.text and "lang-genug-1" not in mismatch.text  # never echo a password
    invalid = session.post(
        "/konten", {**NEW, "name": "zwei worte", "rolle": "chef", "passwort": "kurz", "passwort2": "kurz"}
    )
    assert invalid.status_code == 422
    for message in (
        "Der Benutzername braucht 1 bis 128 Zeichen und darf keine Leerzeichen enthalten.",
        "Bitte eine der Rollen wählen.",
        "Das Passwort braucht mindestens 8 Zeichen.",
    ):
        assert message in invalid.text
    for field in ("name", "rolle", "passwort"):
        assert f'aria-describedby="f-{field}-error"' in invalid.text and f'id="f-{field}-error"' in invalid.text
    exists = session.post("/konten", {**NEW, "name": "koordination"})
    assert exists.status_code == 409 and "Diesen Benutzernamen gibt es schon." in exists.text
    assert [u.name for u in api.accounts.list_users()] == [
        "admin",
        "cw_nord",
        "cw_sued",
        "koordination",
        "projektgruppe",
    ]


def test_admin_disables_a_user_after_confirming_and_the_user_is_locked_out(api: Api) -> None:
    admin = WebSession(api, "admin")
    victim = WebSession(api, "cw_nord")
    assert victim.get("/").status_code == 303 and victim.get("/").headers["location"] == "/faelle"
    confirm = admin.get("/konten/sperren?name=cw_nord")
    assert confirm.status_code == 200
    assert "Konto „cw_nord“ sperren?" in confirm.text and "Ja, Konto sperren" in confirm.text
    assert api.accounts.get_user("cw_nord").disabled is False  # showing the question changes nothing
    assert admin.post("/konten/sperren", {"name": "cw_nord"}, csrf=False).status_code == 403
    done = admin.post("/konten/sperren", {"name": "cw_nord"})
    assert done.status_code == 303 and done.headers["location"] == "/konten?gesperrt=cw_nord"
    assert api.accounts.get_user("cw_nord").disabled is True
    assert "ist gesperrt; seine Sitzungen sind beendet" in admin.get(done.headers["location"]).text
    assert victim.get("/faelle").headers["location"].startswith("/anmelden"), "the open session ends at once"
    refused = _login(api, "cw_nord", PASSWORD)
    assert refused.status_code == 401 and "Benutzername oder Passwort stimmt nicht" in refused.text
    assert "bereits gesperrt" in admin.get("/konten/sperren?name=cw_nord").text
    assert admin.get("/konten/sperren?name=niemand").status_code == 404


def test_an_admin_cannot_lock_themselves_out(api: Api) -> None:
    admin = WebSession(api, "admin")
    refused = admin.post("/konten/sperren", {"name": "admin"})
    assert refused.status_code == 409 and "Sie können Ihr eigenes Konto nicht sperren." in refused.text
    assert api.accounts.get_user("admin").disabled is False


def test_only_admins_reach_the_administration_pages(api: Api) -> None:
    for user in ("cw_nord", "koordination", "projektgruppe"):
        session = WebSession(api, user)
        for url in ("/konten", "/konten/zugriffsprotokoll", "/konten/sperren?name=cw_sued"):
            response = session.get(url)
            assert response.status_code == 403 and "Kein Zugriff" in response.text, (user, url)
        assert session.post("/konten", NEW).status_code == 403
        assert session.post("/konten/sperren", {"name": "cw_sued"}).status_code == 403
    assert api.accounts.get_user("cw_sued").disabled is False
    assert [u.name for u in api.accounts.list_users()].count("m.muster") == 0


# --------------------------------------------------------------------------- the access log


def test_access_log_shows_a_case_read_through_the_api_without_case_data(api: Api) -> None:
    case = api.open_case("cw_nord", data={"name": SENTINEL})
    assert api.request("GET", f"/api/v1/cases/{case['id']}", "cw_nord").status_code == 200
    page = WebSession(api, "admin").get("/konten/zugriffsprotokoll")
    assert page.status_code == 200
    rows = page.text.split("<tbody>")[1].split("</tbody>")[0].split("<tr>")[1:]
    newest = rows[0]
    assert "<td>cw_nord</td>" in newest and "<td>Fallmanagement</td>" in newest
    assert f'<td class="num">{case["id"]}</td>' in newest and "<td>gelesen</td>" in newest
    assert f"<code>GET /api/v1/cases/{case['id']}</code>" in newest
    assert "name" in newest  # the field's name, never its value
    opened = rows[1]
    assert "<td>geändert</td>" in opened and "<code>POST /api/v1/cases</code>" in opened
    assert SENTINEL.lower() not in page.text.lower()


def test_access_log_filters_by_user_case_and_period(api: Api) -> None:
    first = api.open_case("cw_nord")
    api.advance(timedelta(days=3))
    second = api.open_case("cw_sued")
    api.request("GET", f"/api/v1/cases/{second['id']}", "koordination")
    session = WebSession(api, "admin")

    def cases_of(query: str) -> list[str]:
        page = session.get(f"/konten/zugriffsprotokoll?{query}")
        assert page.status_code == 200, page.text
        if "<tbody>" not in page.text:
            return []
        body = page.text.split("<tbody>")[1].split("</tbody>")[0]
        return [row.split('<td class="num">')[1].split("<")[0] for row in body.split("<tr>")[1:]]

    first_id, second_id = str(first["id"]), str(second["id"])
    assert cases_of("") == [second_id, second_id, first_id]
    assert cases_of("benutzer=koordination") == [second_id]
    assert cases_of(f"fall={first_id}") == [first_id]
    assert cases_of("von=02.03.2026&bis=02.03.2026") == [first_id]  # the clock started on Monday 2 March
    assert cases_of("von=2026-03-05") == [second_id, second_id]
    assert cases_of("bis=2026-03-01") == []
    wrong = session.get("/konten/zugriffsprotokoll?fall=abc&von=32.01.2026")
    assert wrong.status_code == 422
    assert "Bitte eine Fallnummer (eine ganze Zahl) eingeben." in wrong.text
    assert "Bitte ein Datum wie 31.12.2026 eingeben." in wrong.text


def test_access_log_pages_from_the_newest_to_older_entries(api: Api) -> None:
    case = api.open_case("cw_nord")
    with api.engine.store.transaction() as conn:
        for n in range(PAGE_SIZE + 5):
            audit.record(
                conn,
                at=api.clock.now() + timedelta(seconds=n),
                actor="cw_nord",
                role="caseworker",
                case_id=case["id"],
                access=audit.READ,
                fields=["name"],
                route=f"GET /probe/{n}",
            )
    session = WebSession(api, "admin")
    first = session.get("/konten/zugriffsprotokoll?benutzer=cw_nord").text
    assert first.count("<code>GET /probe/") == PAGE_SIZE
    assert f"<code>GET /probe/{PAGE_SIZE + 4}</code>" in first and "<code>GET /probe/4</code>" not in first
    older = first.split('href="/konten/zugriffsprotokoll?')[-1].split('"')[0].replace("&amp;", "&")
    assert "benutzer=cw_nord" in older and "vor=" in older
    second = session.get(f"/konten/zugriffsprotokoll?{older}").text
    assert [f"<code>GET /probe/{n}</code>" in second for n in range(5)] == [True] * 5
    assert "<code>POST /api/v1/cases</code>" in second and "Ältere Einträge" not in second
    assert "Neueste Einträge" in second
