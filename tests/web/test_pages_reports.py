"""The project-group pages over HTTP (SQLite and PostgreSQL): stall dashboard, comparison, exports, roles.

The data: 20 cases on version 1 of the ``intake`` process (8 leave intake after one office
day, 12 only after their deadline, six of those with a structural finding, ten waiting on
the Jobcenter with a reason code) and 20 on version 2, which hands every case over to the
Jobcenter the next day. Every case carries personal-data sentinels (in its data, as actor,
assignee and team, in notes and finding texts); none may appear on any page or export.
Expected figures are what :mod:`engine.reports` and :mod:`engine.compare` compute for the
same data, formatted as the page formats them.
"""

from __future__ import annotations

import copy
import csv
import io
import re
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from api.web.routes.reports import parse_day
from engine import audit
from engine.compare import compare_periods, compare_versions
from engine.report_formats import BOM, render_comparison_csv, render_csv
from engine.report_html import render_comparison_html, render_html
from engine.reports import StallReport, stall_report
from tests.api.client import Api
from tests.factories import STEPS, T0, process_yaml
from tests.web.pages import WebSession

ROOT = Path(__file__).resolve().parents[2]
ACTOR = "sentinel.actor.b73"
SENTINELS = (
    "Zoë Sentinel-Mustermann-X91",  # case data: name
    "Sentinel-Vermerk-K42",  # case data: note (free text)
    ACTOR,  # the actor of every change
    "sentinel.assignee.c55",  # assignee
    "sentinel-team-f37",  # team
    "Sentinel-Wartenotiz-D19",  # the note of a wait
    "Sentinel-Befund-E28",  # a finding's free text
)

HANDOFF_STEPS: dict[str, Any] = copy.deepcopy(STEPS)
HANDOFF_STEPS["intake"]["actions"]["hand_over"] = {
    "title": "An das Jobcenter übergeben",
    "handoff": {"to": "JC", "shares": ["name"], "consent_required": False, "legal_basis": "§ 50 SGB II"},
    "next": "review",
}


def _open(api: Api, version: int) -> int:
    return api.engine.open_case(
        "intake",
        actor=ACTOR,
        version=version,
        data={"name": SENTINELS[0], "note": f"{SENTINELS[1]} wohnt in der Musterstraße 5"},
        assignee=SENTINELS[3],
        team=SENTINELS[4],
    ).id


@pytest.fixture
def data(api: Api) -> Api:
    """The cases described in the module docstring; the clock ends at T0 + 20 days."""
    engine, clock = api.engine, api.clock
    engine.deploy([ROOT / "processes" / "strukturhinweis.yaml"], actor="setup")
    first = [_open(api, 1) for _ in range(20)]
    clock.set(T0 + timedelta(hours=1))
    for case_id in first[:10]:
        engine.wait_on(case_id, "JC", reason="W-AUTH", actor=ACTOR, note=SENTINELS[5])
    clock.set(T0 + timedelta(days=1))
    for case_id in first[:8]:
        engine.fire(case_id, "forward", actor=ACTOR)
    clock.set(T0 + timedelta(days=9))  # Wednesday of the next week: intake (3 office days) is overdue
    for case_id in first[8:14]:
        engine.add_finding(case_id, code="W-APPT", text=f"{SENTINELS[6]}: keine Termine frei", actor=ACTOR)
    for case_id in first[8:]:
        engine.fire(case_id, "forward", actor=ACTOR)
    engine.deploy_text(process_yaml(version=2, steps=HANDOFF_STEPS), actor="setup", file="intake.yaml")
    clock.set(T0 + timedelta(days=10))
    second = [_open(api, 2) for _ in range(20)]
    clock.set(T0 + timedelta(days=11))
    for case_id in second:
        engine.fire(case_id, "hand_over", actor=ACTOR)
    clock.set(T0 + timedelta(days=14))
    for case_id in first[:10] + second:
        engine.fire(case_id, "approve", actor=ACTOR)
    clock.set(T0 + timedelta(days=20))
    api.login_all()
    return api


def _report(api: Api, **filters: Any) -> StallReport:
    return stall_report(api.engine, now=api.clock.now(), **filters)


# --------------------------------------------------------------------------- reading pages


class _Tables(HTMLParser):
    """The tables of a page by caption: rows of cell texts (header cells included, visually hidden text left out)."""

    VOID = frozenset({"input", "br", "img", "meta", "link", "hr", "col"})

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._caption: list[str] | None = None
        self._caption_text = ""
        self._rows: list[list[str]] | None = None
        self._cell: list[str] | None = None
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.VOID:
            return
        if self._hidden or ("class", "visually-hidden") in attrs:
            self._hidden += 1
        if tag == "table":
            self._rows, self._caption_text = [], ""
        elif tag == "caption":
            self._caption = []
        elif tag == "tr" and self._rows is not None:
            self._rows.append([])
        elif tag in ("td", "th") and self._rows is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        if self._hidden:
            self._hidden -= 1
        if tag in ("td", "th") and self._cell is not None and self._rows is not None:
            self._rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "caption" and self._caption is not None:
            self._caption_text = " ".join("".join(self._caption).split())
            self._caption = None
        elif tag == "table" and self._rows is not None:
            self.tables[self._caption_text] = self._rows
            self._rows = None

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        if self._cell is not None:
            self._cell.append(data)
        elif self._caption is not None:
            self._caption.append(data)


def tables(html: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def table(html: str, caption_start: str) -> list[list[str]]:
    found = [rows for caption, rows in tables(html).items() if caption.startswith(caption_start)]
    assert found, f"no table '{caption_start}…' in {list(tables(html))}"
    return found[0]


def step_rows(html: str) -> list[list[str]]:
    """The rows of the per-process tables of all steps, in page order (without their header rows)."""
    return [row for caption, rows in tables(html).items() if caption.startswith("Schritte: ") for row in rows[1:]]


def figure(html: str, key: str) -> str:
    match = re.search(rf'<dd id="kz-{key}">(.*?)</dd>', html, re.S)
    assert match, key
    return re.sub(r"<[^>]+>", "", match.group(1)).replace("&nbsp;", " ").replace("\xa0", " ").strip()


def percent(row: Any) -> str:
    if row.suppressed or "overrun_share" in row.suppressed_fields:
        return "—"
    return "–" if row.overrun_share is None else de(row.overrun_share * 100, 1) + " %"


def de(value: float | int | None, decimals: int = 0) -> str:
    """A figure as the German page shows it."""
    if value is None:
        return "—"
    text = f"{value:,.{decimals}f}"
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def cell(row: Any, name: str, decimals: int = 0) -> str:
    """A figure of a report row as the page shows it: "—" suppressed, "–" none, else the German number."""
    value = getattr(row, name)
    if row.suppressed or name in row.suppressed_fields:
        return "—"
    return "–" if value is None else de(value, decimals)


# --------------------------------------------------------------------------- the dashboard


def test_dashboard_figures_equal_the_engine_report(data: Api) -> None:
    page = WebSession(data, "projektgruppe").get("/auswertung")
    assert page.status_code == 200, page.text
    report = _report(data)
    shown = [s for s in report.steps if not s.suppressed]
    assert figure(page.text, "besuche") == de(sum(s.visits or 0 for s in shown))
    assert figure(page.text, "abgeschlossen") == de(sum(s.completed or 0 for s in shown))
    assert figure(page.text, "jetzt") == de(sum(s.stalled_now or 0 for s in shown))
    assert figure(page.text, "ueberschreitung") == de(sum(s.excess_office_days or 0 for s in shown))
    with_share = [s for s in shown if s.overran is not None and s.completed]
    share = sum(s.overran or 0 for s in with_share) / sum(s.completed or 0 for s in with_share)
    assert figure(page.text, "quote") == de(share * 100, 1) + " %"

    rows = step_rows(page.text)
    assert len(rows) == len(report.steps)
    for row, step in zip(rows, report.steps, strict=True):
        assert row[0].startswith(step.title)
        assert row[2:7] == [
            cell(step, "visits"),
            cell(step, "completed"),
            cell(step, "open"),
            cell(step, "median_office_days", 1),
            cell(step, "p90_office_days", 1),
        ]

    intake_v1 = next(s for s in report.steps if (s.step, s.process_version) == ("intake", 1))
    [candidate] = [c for c in report.candidates if c.process_version == 1]
    candidates = table(page.text, "Optimierungskandidaten")[1:]
    assert (candidates[0][0], candidates[0][1].split(" ")[0], candidates[0][3]) == (
        str(candidate.rank),
        "Erfassung",
        de(candidate.excess_office_days),
    )
    assert "Überschreitungsquote ≥ 25 % und ≥ 10 abgeschlossene Besuche" in candidates[0][7]
    assert intake_v1.excess_office_days and intake_v1.excess_office_days > 0


def test_dashboard_shows_the_charts_each_with_its_table(data: Api) -> None:
    page = WebSession(data, "projektgruppe").get("/auswertung").text
    for chart_id in ("chart-steps", "chart-agencies", "chart-handoffs"):
        assert f'aria-labelledby="{chart_id}-t {chart_id}-d"' in page
        assert f'<title id="{chart_id}-t">' in page
    report = _report(data)
    [handoff] = report.handoffs
    rows = table(page, "Wartezeiten nach Übergaben")
    assert rows[1] == [
        "KIM-Case Management → Jobcenter",
        de(handoff.visits),
        de(handoff.completed),
        de(handoff.median_office_days, 1),
        de(handoff.p90_office_days, 1),
    ]
    by_agency = table(page, "Überschreitung in Arbeitstagen nach Stelle")
    assert by_agency[1][0] == "KIM-Case Management"
    assert by_agency[1][3] == de(sum(s.excess_office_days or 0 for s in report.steps if s.agency == "KIM-CM"))
    trend = table(page, "Abgeschlossene Besuche")
    assert [r[1:] for r in trend[1:]] == [
        [cell(m, "completed"), cell(m, "overran"), percent(m), cell(m, "excess_office_days")] for m in report.trend
    ]
    reasons = table(page, "Häufigste Stockungsursachen")
    assert [reasons[1][1], reasons[1][3]] == ["W-AUTH", "10"]
    findings = table(page, "Strukturelle Befunde")
    [finding] = report.findings
    assert findings[1][3:] == [finding.code, finding.label, "6"]


def test_small_groups_are_suppressed_and_the_page_says_so(data: Api) -> None:
    page = WebSession(data, "projektgruppe").get("/auswertung").text
    assert "Gruppen mit weniger als 5 Besuchen werden nicht gezeigt" in page
    # Strukturhinweis has no visits at all, and the review step of version 2 only the 20 handoffs:
    # a step with fewer than 5 visits is marked and shows no figures.
    engine_suppressed = [s for s in _report(data).steps if s.suppressed]
    marked = [r for r in step_rows(page) if "unterdrückt" in r[0]]
    assert len(marked) == len(engine_suppressed)
    for row in marked:
        assert set(row[2:]) == {"—"}


def test_filters_narrow_the_report_like_the_engine(data: Api) -> None:
    session = WebSession(data, "projektgruppe")
    page = session.get("/auswertung?prozess=intake&von=12.03.2026&bis=2026-03-31")
    assert page.status_code == 200
    report = _report(data, process_id="intake", period_from=parse_day("12.03.2026"), period_to=parse_day("2026-03-31"))
    shown = [s for s in report.steps if not s.suppressed]
    assert figure(page.text, "besuche") == de(sum(s.visits or 0 for s in shown)) == "40"
    assert 'value="2026-03-12"' in page.text  # a German date comes back in the date field's own format
    wrong = session.get("/auswertung?von=31.02.2026&bis=01.01.2026&prozess=gibtsnicht")
    assert wrong.status_code == 422
    assert "Bitte ein Datum wie 31.12.2026 eingeben." in wrong.text
    assert "Diesen Prozess gibt es nicht." in wrong.text
    assert 'aria-invalid="true" aria-describedby="f-von-error"' in wrong.text
    assert 'id="f-von-error"' in wrong.text
    backwards = session.get("/auswertung?von=2026-04-01&bis=2026-03-01")
    assert backwards.status_code == 422 and "Das Ende des Zeitraums liegt vor seinem Anfang." in backwards.text


def test_csv_exports_are_german_spreadsheet_downloads(data: Api) -> None:
    session = WebSession(data, "projektgruppe")
    report = _report(data, process_id="intake")
    for name, table_name in (
        ("schritte", "steps"),
        ("kandidaten", "candidates"),
        ("uebergaben", "handoffs"),
        ("verlauf", "trend"),
        ("befunde", "findings"),
    ):
        response = session.get(f"/auswertung/export.csv?prozess=intake&tabelle={name}")
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        assert response.headers["content-disposition"] == f'attachment; filename="stillstandsbericht-{name}.csv"'
        assert response.content.decode("utf-8") == render_csv(report, table=table_name, decimal_comma=True)
        assert response.text.startswith(BOM)
    rows = list(csv.reader(io.StringIO(session.get("/auswertung/export.csv").text[1:]), delimiter=";"))
    assert rows[0][:3] == ["Prozess", "Version", "Schritt"]
    assert session.get("/auswertung/export.csv?tabelle=gibtsnicht").status_code == 422


def test_printable_report_is_the_engines_html_page(data: Api) -> None:
    session = WebSession(data, "projektgruppe")
    dashboard = session.get("/auswertung?prozess=intake").text
    assert 'href="/auswertung/druck?prozess=intake"' in dashboard
    assert 'href="/auswertung/export.csv?prozess=intake&amp;tabelle=schritte"' in dashboard
    printed = session.get("/auswertung/druck?prozess=intake")
    assert printed.status_code == 200 and printed.headers["content-type"].startswith("text/html")
    assert printed.text == render_html(_report(data, process_id="intake"))


# --------------------------------------------------------------------------- the comparison


def test_comparison_of_two_versions_matches_the_engine(data: Api) -> None:
    session = WebSession(data, "projektgruppe")
    query = "prozess=intake&art=versionen&version_a=1&version_b=2"
    page = session.get(f"/auswertung/vergleich?{query}")
    assert page.status_code == 200, page.text
    comparison = compare_versions(data.engine, "intake", 1, 2)
    rows = table(page.text, "Vergleich je Schritt")[2:]
    assert [r[0] for r in rows] == [s.title for s in comparison.steps]
    intake = next(s for s in comparison.steps if s.step == "intake")
    row = rows[[s.step for s in comparison.steps].index("intake")]
    assert row[1:3] == [de(intake.a.completed), de(intake.a.median_office_days, 1)]
    assert row[4:6] == [de(intake.b.completed), de(intake.b.median_office_days, 1)]
    assert row[7] == de(intake.median_difference, 1)
    assert intake.interval is not None
    assert row[8] == f"{de(intake.interval[0], 1)} bis {de(intake.interval[1], 1)}"
    verdicts = {"improved": "verbessert", "worsened": "verschlechtert", "inconclusive": "keine Aussage"}
    assert row[9].startswith(verdicts[intake.verdict or ""])
    assert 'id="seite-a">Version 1<' in page.text and 'id="seite-b">Version 2<' in page.text
    assert "Bootstrap" in page.text and 'aria-labelledby="chart-compare-t chart-compare-d"' in page.text

    exported = session.get(f"/auswertung/vergleich/export.csv?{query}")
    assert exported.headers["content-type"] == "text/csv; charset=utf-8"
    assert exported.headers["content-disposition"] == 'attachment; filename="vergleich-intake.csv"'
    assert exported.content.decode("utf-8") == render_comparison_csv(comparison, decimal_comma=True)
    printed = session.get(f"/auswertung/vergleich/druck?{query}")
    assert printed.headers["content-type"].startswith("text/html")
    assert printed.text == render_comparison_html(comparison)


def test_comparison_of_two_periods_warns_about_small_samples(data: Api) -> None:
    session = WebSession(data, "projektgruppe")
    page = session.get(
        "/auswertung/vergleich?prozess=intake&art=zeitraeume&a_von=02.03.2026&a_bis=08.03.2026"
        "&b_von=2026-03-09&b_bis=2026-03-31"
    )
    assert page.status_code == 200
    comparison = compare_periods(
        data.engine,
        "intake",
        (parse_day("2026-03-02"), parse_day("2026-03-08")),
        (parse_day("2026-03-09"), parse_day("2026-03-31")),
    )
    review = next(s for s in comparison.steps if s.step == "review")
    assert any(w.code == "small-sample" for w in review.warnings)
    assert "Zu wenige abgeschlossene Besuche" in page.text
    assert "Vorsicht bei" in page.text
    assert 'id="seite-a">02.03.2026 – 08.03.2026<' in page.text


def test_comparison_form_starts_empty_and_explains_mistakes(data: Api) -> None:
    session = WebSession(data, "projektgruppe")
    empty = session.get("/auswertung/vergleich")
    assert empty.status_code == 200 and "Vergleich je Schritt" not in empty.text
    assert 'name="a_von" value="' in empty.text
    same = session.get("/auswertung/vergleich?prozess=intake&art=versionen&version_a=2&version_b=2")
    assert same.status_code == 422 and "Bitte zwei verschiedene Versionen wählen." in same.text
    missing = session.get("/auswertung/vergleich?prozess=intake&art=versionen&version_a=1&version_b=7")
    assert missing.status_code == 422 and "Diese Version ist für den Prozess nicht bereitgestellt." in missing.text
    dates = session.get("/auswertung/vergleich?prozess=intake&art=zeitraeume&a_von=gestern")
    assert dates.status_code == 422
    assert "Bitte ein Datum wie 31.12.2026 eingeben." in dates.text and "Bitte ein Datum angeben." in dates.text
    assert session.get("/auswertung/vergleich/export.csv").status_code == 422


# --------------------------------------------------------------------------- no personal data


def test_no_personal_data_on_any_report_page_or_export(data: Api) -> None:
    comparisons = (
        "prozess=intake&art=versionen&version_a=1&version_b=2",
        "prozess=intake&art=zeitraeume&a_von=2026-03-01&a_bis=2026-03-10&b_von=2026-03-11&b_bis=2026-03-31",
    )
    urls = [
        "/auswertung",
        "/auswertung?prozess=intake",
        "/auswertung/druck",
        *(
            f"/auswertung/export.csv?tabelle={t}"
            for t in ("schritte", "kandidaten", "uebergaben", "verlauf", "befunde")
        ),
        "/auswertung/vergleich",
        *(f"/auswertung/vergleich?{q}" for q in comparisons),
        *(f"/auswertung/vergleich/export.csv?{q}" for q in comparisons),
        *(f"/auswertung/vergleich/druck?{q}" for q in comparisons),
    ]
    assert _report(data).findings, "the findings are there, counted"
    for user in ("projektgruppe", "koordination"):
        session = WebSession(data, user)
        for url in urls:
            response = session.get(url)
            assert response.status_code == 200, (user, url)
            text = response.content.decode("utf-8").lower()
            for sentinel in SENTINELS:
                assert sentinel.lower() not in text, f"{sentinel!r} leaked into {url} for {user}"
            if user == "projektgruppe":
                assert "/faelle/" not in text, f"a case link on {url}"


# --------------------------------------------------------------------------- roles


def test_only_report_roles_see_the_report_pages(data: Api) -> None:
    urls = (
        "/auswertung",
        "/auswertung/vergleich",
        "/auswertung/export.csv",
        "/auswertung/druck",
        "/auswertung/vergleich/export.csv?prozess=intake&art=versionen&version_a=1&version_b=2",
    )
    for user in ("cw_nord", "admin"):
        session = WebSession(data, user)
        for url in urls:
            refused = session.get(url)
            assert refused.status_code == 403, (user, url)
            assert "Kein Zugriff" in refused.text and "text/html" in refused.headers["content-type"]
    data.client.cookies.clear()
    anonymous = data.client.get("/auswertung", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/anmelden")


def test_projectgroup_reaches_no_case_page(data: Api) -> None:
    case_id = data.engine.list_cases(limit=1)[0].id
    session = WebSession(data, "projektgruppe")
    for url in ("/faelle", "/faelle/neu", f"/faelle/{case_id}", "/faelle/1", "/prozesse"):
        response = session.get(url)
        assert response.status_code == 403, (url, response.status_code)
        assert "Kein Zugriff" in response.text
        assert SENTINELS[0].lower() not in response.text.lower()


def test_projectgroup_sees_no_structural_button_and_may_not_open_one(data: Api) -> None:
    session = WebSession(data, "projektgruppe")
    page = session.get("/auswertung").text
    assert "Strukturhinweis eröffnen" not in page
    form = {"kandidat_prozess": "intake", "kandidat_version": "1", "kandidat_schritt": "intake"}
    assert session.post("/auswertung/strukturhinweis", form).status_code == 403
    assert not data.engine.list_cases(process_id="strukturhinweis")


def test_coordinator_opens_a_structural_case_from_a_candidate(data: Api) -> None:
    session = WebSession(data, "koordination")
    page = session.get("/auswertung?prozess=intake").text
    assert page.count("Strukturhinweis eröffnen</button>") == len(_report(data, process_id="intake").candidates)
    form = {"prozess": "intake", "kandidat_prozess": "intake", "kandidat_version": "1", "kandidat_schritt": "intake"}
    assert session.post("/auswertung/strukturhinweis", form, csrf=False).status_code == 403
    opened = session.post("/auswertung/strukturhinweis", form)
    assert opened.status_code == 303, opened.text
    [case] = data.engine.list_cases(process_id="strukturhinweis")
    assert opened.headers["location"] == f"/auswertung?prozess=intake&strukturhinweis={case.id}#kandidaten"
    assert (case.data["prozess_id"], case.data["prozess_version"], case.data["schritt_id"]) == ("intake", 1, "intake")
    assert case.data["ursache"] == "W-AUTH"
    assert not any(s.lower() in str(case.data).lower() for s in SENTINELS)
    [entry] = audit.entries(data.engine.store, case_id=case.id)
    assert (entry.actor, entry.access, entry.route) == ("koordination", "change", "POST /auswertung/strukturhinweis")
    after = session.get(opened.headers["location"].split("#")[0]).text
    assert f'href="/faelle/{case.id}"' in after
    not_a_candidate = {**form, "kandidat_schritt": "review"}
    refused = session.post("/auswertung/strukturhinweis", not_a_candidate)
    assert refused.status_code == 409 and "kein Optimierungskandidat mehr" in refused.text
