"""The stall report for working groups (``engine.reports``) and its formats, on SQLite and PostgreSQL.

Every expected figure below is worked out by hand from the instants the cases move at.
Cases open on Monday 2026-03-02 08:00 UTC (09:00 Berlin). The intake step expects 3 office
days (deadline: end of Thursday 05.03., 23:00 UTC) and warns after 2; early March 2026 has
no public holiday in NRW. Office days of a visit count the office days d with
entered-day < d <= left-day (Berlin), so leaving on Tuesday after entering on Monday is 1.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import re
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from api.cli_reports import register
from engine import DefinitionNotFound, Engine, FixedClock
from engine.compare import IMPROVED, INCONCLUSIVE, compare_versions
from engine.report_formats import BOM, TABLES, render_comparison_csv, render_csv, render_json
from engine.report_html import render_comparison_html, render_html
from engine.reports import StallReport, stall_report
from tests.factories import STEPS, process_yaml

ACTOR = "koordination"
MONDAY = datetime(2026, 3, 2, 8, tzinfo=UTC)
NOW = datetime(2026, 3, 9, 12, tzinfo=UTC)  # Monday a week later

REPORT_STEPS: dict[str, Any] = copy.deepcopy(STEPS)
REPORT_STEPS["intake"]["actions"]["hand_over"] = {
    "title": "An das Jobcenter übergeben",
    "handoff": {"to": "JC", "shares": ["name"], "consent_required": False, "legal_basis": "§ 50 SGB II"},
    "next": "review",
}
PROCESS = process_yaml(steps=REPORT_STEPS)

# When each of six cases leaves intake, and its expected dwell: (office days, seconds, overran, excess).
LEAVES = [
    (datetime(2026, 3, 3, 8, tzinfo=UTC), 1, 86_400, False, 0),
    (datetime(2026, 3, 4, 8, tzinfo=UTC), 2, 172_800, False, 0),
    (datetime(2026, 3, 5, 8, tzinfo=UTC), 3, 259_200, False, 0),
    (datetime(2026, 3, 5, 20, tzinfo=UTC), 3, 302_400, False, 0),  # 21:00 Berlin, still Thursday
    (datetime(2026, 3, 6, 8, tzinfo=UTC), 4, 345_600, True, 1),  # Friday is past the deadline
    (datetime(2026, 3, 9, 8, tzinfo=UTC), 5, 604_800, True, 2),  # Friday and Monday
]

SENTINELS = ("Zoë Sentinel-Mustermann", "sentinel.caseworker", "sentinel.actor", "Sentinel-Befund")


@pytest.fixture
def deployed(engine: Engine) -> Engine:
    engine.deploy_text(PROCESS, actor=ACTOR)
    return engine


def _open(engine: Engine, clock: FixedClock, at: datetime = MONDAY, **kwargs: Any) -> int:
    clock.set(at)
    kwargs.setdefault("data", {"name": "Beispiel"})
    return engine.open_case(kwargs.pop("process", "intake"), actor=kwargs.pop("actor", ACTOR), **kwargs).id


def _fire(engine: Engine, clock: FixedClock, case_id: int, action: str, at: datetime, actor: str = ACTOR) -> None:
    clock.set(at)
    engine.fire(case_id, action, actor=actor)


def _week(engine: Engine, clock: FixedClock) -> list[int]:
    """Seven cases: six leave intake at LEAVES, the seventh is still there (stalled at NOW)."""
    ids = [_open(engine, clock) for _ in range(7)]
    clock.set(MONDAY + timedelta(hours=1))
    engine.wait_on(ids[1], "ABH", reason="W-DOC", actor=ACTOR)
    engine.wait_on(ids[6], "JC", reason="W-AUTH", actor=ACTOR)
    for case_id, (at, *_) in zip(ids, LEAVES, strict=False):
        _fire(engine, clock, case_id, "forward", at)
    return ids


def _step(report: StallReport, step: str, process: str = "intake") -> Any:
    [found] = [s for s in report.steps if s.step == step and s.process_id == process]
    return found


# --------------------------------------------------------------------------- figures


def test_step_figures_match_the_hand_computation(deployed: Engine, clock: FixedClock) -> None:
    _week(deployed, clock)
    report = stall_report(deployed, now=NOW, min_cell=1)
    intake = _step(report, "intake")
    assert (intake.visits, intake.completed, intake.open) == (7, 6, 1)
    # office days 1, 2, 3, 3, 4, 5: median at position 2.5, p90 at 4.5
    assert (intake.median_office_days, intake.p90_office_days) == (3.0, 4.5)
    # seconds 86400, 172800, 259200, 302400, 345600, 604800
    assert intake.median_seconds == pytest.approx((259_200 + 302_400) / 2, abs=1e-3)
    assert intake.p90_seconds == pytest.approx(345_600 + 0.5 * (604_800 - 345_600), abs=1e-3)
    assert (intake.overran, intake.excess_office_days) == (2, 3)
    assert intake.overrun_share == pytest.approx(2 / 6)
    assert intake.stalled_now == 1
    assert [(r.code, r.count) for r in intake.top_reasons] == [("W-AUTH", 1), ("W-DOC", 1)]
    assert intake.top_reasons[0].label and intake.top_reasons[0].label_en
    assert (intake.title, intake.agency, intake.expected) == ("Erfassung", "KIM-CM", "3 Arbeitstage")
    assert intake.suppressed is False
    review = _step(report, "review")
    assert (review.visits, review.completed, review.open, review.stalled_now) == (6, 0, 6, 0)
    assert review.median_office_days is None and review.overrun_share is None
    assert {s.step for s in report.steps} == {"intake", "review"}  # final steps have no dwell


def test_the_monthly_trend_counts_completed_visits_by_berlin_month(deployed: Engine, clock: FixedClock) -> None:
    _week(deployed, clock)
    report = stall_report(deployed, now=NOW, min_cell=1)
    assert [(m.month, m.completed, m.overran, m.excess_office_days) for m in report.trend] == [("2026-03", 6, 2, 3)]


def test_a_month_ends_at_midnight_in_berlin_not_in_utc(deployed: Engine, clock: FixedClock) -> None:
    """23:30 local time still belongs to the month; 00:30 local time, still the old month in UTC, does not."""
    leaves = [
        (datetime(2026, 1, 20, 8, tzinfo=UTC), datetime(2026, 1, 31, 22, 30, tzinfo=UTC)),  # 23:30 CET: January
        (datetime(2026, 1, 20, 8, tzinfo=UTC), datetime(2026, 1, 31, 23, 30, tzinfo=UTC)),  # 00:30 CET: February
        (datetime(2026, 3, 20, 8, tzinfo=UTC), datetime(2026, 3, 31, 21, 30, tzinfo=UTC)),  # 23:30 CEST: March
        (datetime(2026, 3, 20, 8, tzinfo=UTC), datetime(2026, 3, 31, 22, 30, tzinfo=UTC)),  # 00:30 CEST: April
        (datetime(2026, 10, 20, 8, tzinfo=UTC), datetime(2026, 10, 31, 22, 30, tzinfo=UTC)),  # 23:30 CET: October
        (datetime(2026, 10, 20, 8, tzinfo=UTC), datetime(2026, 10, 31, 23, 30, tzinfo=UTC)),  # 00:30 CET: November
    ]
    for opened, left in leaves:
        _fire(deployed, clock, _open(deployed, clock, opened), "forward", left)
    report = stall_report(deployed, now=datetime(2026, 12, 1, tzinfo=UTC), min_cell=1)
    assert [(m.month, m.completed) for m in report.trend] == [
        ("2026-01", 1),
        ("2026-02", 1),
        ("2026-03", 1),
        ("2026-04", 1),
        ("2026-10", 1),
        ("2026-11", 1),
    ]


def test_handoffs_report_how_long_the_receiving_agency_took(deployed: Engine, clock: FixedClock) -> None:
    ids = [_open(deployed, clock) for _ in range(3)]
    for case_id in ids:
        _fire(deployed, clock, case_id, "hand_over", datetime(2026, 3, 3, 8, tzinfo=UTC))
    for case_id, day in zip(ids, (4, 5, 6), strict=True):  # review took 1, 2 and 3 office days
        _fire(deployed, clock, case_id, "approve", datetime(2026, 3, day, 8, tzinfo=UTC))
    open_one = _open(deployed, clock)
    _fire(deployed, clock, open_one, "hand_over", datetime(2026, 3, 3, 8, tzinfo=UTC))
    [handoff] = stall_report(deployed, now=NOW, min_cell=1).handoffs
    assert (handoff.from_agency, handoff.to_agency, handoff.visits, handoff.completed) == ("KIM-CM", "JC", 4, 3)
    assert (handoff.median_office_days, handoff.p90_office_days) == (2.0, pytest.approx(2.8))
    assert handoff.median_seconds == pytest.approx(172_800, abs=1e-3)
    assert handoff.p90_seconds == pytest.approx(172_800 + 0.8 * 86_400, abs=1e-3)


def test_findings_are_counted_by_code_without_their_text(deployed: Engine, clock: FixedClock) -> None:
    ids = _week(deployed, clock)
    clock.set(NOW)
    deployed.add_finding(ids[6], code="W-AUTH", text="Sentinel-Befund: keine Termine frei", actor=ACTOR)
    [finding] = stall_report(deployed, now=NOW, min_cell=1).findings
    assert (finding.process_id, finding.step, finding.agency, finding.code, finding.count) == (
        "intake",
        "intake",
        "KIM-CM",
        "W-AUTH",
        1,
    )
    assert "text" not in finding.__dataclass_fields__


def test_optimisation_candidates_are_ranked_and_state_their_rule(deployed: Engine, clock: FixedClock) -> None:
    ids = [_open(deployed, clock) for _ in range(20)]
    for i, case_id in enumerate(ids):  # 14 leave after 1 office day, 6 after 5 (2 days of excess each)
        _fire(deployed, clock, case_id, "forward", LEAVES[0][0] if i < 14 else LEAVES[5][0])
    report = stall_report(deployed, now=NOW)
    [candidate] = report.candidates
    assert (candidate.rank, candidate.step, candidate.excess_office_days) == (1, "intake", 12)
    assert candidate.overrun_share == pytest.approx(0.3)
    assert [r.code for r in candidate.rules] == ["overrun-share"]
    assert candidate.rules[0].text == "Überschreitungsquote ≥ 25 % und ≥ 10 abgeschlossene Besuche"
    assert candidate.rules[0].text_en.startswith("overrun share ≥ 25%")
    assert {r.code for r in report.rules} == {"overrun-share", "p90-over-expected", "stalled-now"}


# --------------------------------------------------------------------------- suppression and filters


def test_small_cells_are_suppressed_not_dropped(deployed: Engine, clock: FixedClock) -> None:
    _week(deployed, clock)
    deployed.deploy_text(process_yaml(id="klein", title="Klein", steps=REPORT_STEPS), actor=ACTOR)
    for _ in range(4):
        _open(deployed, clock, process="klein")
    report = stall_report(deployed, now=NOW)  # min_cell 5
    small = _step(report, "intake", process="klein")
    assert small.suppressed is True
    assert (small.visits, small.completed, small.median_office_days, small.stalled_now) == (None, None, None, None)
    assert (small.title, small.agency) == ("Erfassung", "KIM-CM")  # the group is still listed
    intake = _step(report, "intake")
    assert (intake.visits, intake.completed, intake.median_office_days) == (7, 6, 3.0)
    # 1 open, 2 overran, 1 stalled now: counts below 5 are hidden, with what derives from them
    assert (intake.open, intake.overran, intake.overrun_share, intake.excess_office_days, intake.stalled_now) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert set(intake.suppressed_fields) == {"open", "overran", "overrun_share", "excess_office_days", "stalled_now"}
    reasons = [(r.code, r.count, r.suppressed) for r in intake.top_reasons]
    assert reasons == [("W-AUTH", None, True), ("W-DOC", None, True)]
    assert [(m.month, m.completed, m.overran, m.suppressed) for m in report.trend] == [("2026-03", 6, None, False)]
    review = _step(report, "review")
    assert (review.visits, review.completed, review.stalled_now) == (6, 0, 0)  # zero reveals no one


def test_min_cell_is_configurable(deployed: Engine, clock: FixedClock) -> None:
    _week(deployed, clock)
    report = stall_report(deployed, now=NOW, min_cell=7)
    intake, review = _step(report, "intake"), _step(report, "review")
    assert (intake.suppressed, intake.visits, intake.completed, intake.median_seconds) == (False, 7, None, None)
    assert review.suppressed is True
    assert report.trend[0].suppressed is True
    with pytest.raises(ValueError, match="min_cell"):
        stall_report(deployed, now=NOW, min_cell=0)


def test_filters_by_period_process_and_agency(deployed: Engine, clock: FixedClock) -> None:
    _week(deployed, clock)
    later = [_open(deployed, clock, datetime(2026, 3, 10, 8, tzinfo=UTC)) for _ in range(2)]
    now = datetime(2026, 3, 20, tzinfo=UTC)
    everything = stall_report(deployed, now=now, min_cell=1)
    assert _step(everything, "intake").visits == 9
    first_week = stall_report(deployed, now=now, min_cell=1, period_from=date(2026, 3, 2), period_to=date(2026, 3, 9))
    assert _step(first_week, "intake").visits == 7
    assert first_week.filters.period_to == datetime(2026, 3, 9, 23, tzinfo=UTC)  # the end day is included
    second = stall_report(deployed, now=now, min_cell=1, period_from=datetime(2026, 3, 10, tzinfo=UTC))
    assert (_step(second, "intake").visits, _step(second, "review").visits) == (len(later), 0)
    jobcenter = stall_report(deployed, now=now, min_cell=1, agency="JC")
    assert [s.step for s in jobcenter.steps] == ["review"]
    assert stall_report(deployed, now=now, process_id="intake").filters.process_id == "intake"
    with pytest.raises(DefinitionNotFound):
        stall_report(deployed, now=now, process_id="unbekannt")


# --------------------------------------------------------------------------- no personal data, formats


def _sentinel_report(engine: Engine, clock: FixedClock) -> StallReport:
    ids = [
        _open(engine, clock, data={"name": SENTINELS[0]}, assignee=SENTINELS[1], actor=SENTINELS[2]) for _ in range(7)
    ]
    for case_id, (at, *_) in zip(ids, LEAVES, strict=False):
        _fire(engine, clock, case_id, "forward", at, actor=SENTINELS[2])
    clock.set(NOW)
    engine.add_finding(ids[6], code="W-APPT", text=f"{SENTINELS[3]}: keine Termine frei", actor=SENTINELS[2])
    return stall_report(engine, now=NOW, min_cell=1)


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def test_no_personal_data_in_any_format(deployed: Engine, clock: FixedClock) -> None:
    report = _sentinel_report(deployed, clock)
    assert report.findings  # the finding is there, counted
    outputs = {
        "json": render_json(report),
        "html": render_html(report),
        **{f"csv-{t}": render_csv(report, table=t) for t in TABLES},
    }
    for name, text in outputs.items():
        for sentinel in SENTINELS:
            assert sentinel.lower() not in text.lower(), f"{sentinel!r} leaked into {name}"
    data = json.loads(outputs["json"])
    assert not _keys(data) & {"case_id", "visit_id", "assignee", "actor", "data", "created_by", "note"}
    assert not _keys(data["findings"]) & {"text", "created_by"}


def test_csv_is_for_german_spreadsheets(deployed: Engine, clock: FixedClock) -> None:
    _week(deployed, clock)
    report = stall_report(deployed, now=NOW, min_cell=1)
    text = render_csv(report, decimal_comma=True)
    assert text.startswith(BOM)
    rows = list(csv.reader(io.StringIO(text[len(BOM) :]), delimiter=";"))
    header, intake = rows[0], next(r for r in rows[1:] if r[2] == "intake")
    assert header[:3] == ["Prozess", "Version", "Schritt"]
    assert "Median Verweildauer (Arbeitstage)" in header and "Überschreitungsquote (%)" in header
    column = dict(zip(header, intake, strict=True))
    assert column["Median Verweildauer (Arbeitstage)"] == "3,0"
    assert column["p90 Verweildauer (Arbeitstage)"] == "4,5"
    assert column["Überschreitungsquote (%)"] == "33,3"
    assert column["Median Verweildauer (Sekunden)"] == "280800"
    assert column["Unterdrückt"] == "nein"
    plain_rows = csv.reader(io.StringIO(render_csv(report)[len(BOM) :]), delimiter=";")
    plain = dict(zip(header, next(r for r in plain_rows if r[2] == "intake"), strict=True))
    assert plain["p90 Verweildauer (Arbeitstage)"] == "4.5"
    assert "\r\n" in text
    with pytest.raises(ValueError, match="unknown table"):
        render_csv(report, table="personen")


def test_suppressed_cells_are_empty_and_flagged_in_csv(deployed: Engine, clock: FixedClock) -> None:
    _week(deployed, clock)
    rows = list(csv.reader(io.StringIO(render_csv(stall_report(deployed, now=NOW))[1:]), delimiter=";"))
    column = dict(zip(rows[0], next(r for r in rows[1:] if r[2] == "intake"), strict=True))
    assert column["Jetzt über der Frist"] == ""
    assert "stalled_now" in column["Unterdrückte Felder"]


def test_html_is_a_self_contained_accessible_page(deployed: Engine, clock: FixedClock) -> None:
    _week(deployed, clock)
    html = render_html(stall_report(deployed, now=NOW, min_cell=1))
    assert html.startswith("<!DOCTYPE html>") and '<html lang="de">' in html
    for external in ("<script", "<link", "src=", "url(", "@import"):
        assert external not in html
    assert set(re.findall(r"https?://[^\"' >]+", html)) <= {"http://www.w3.org/2000/svg"}  # the SVG namespace only
    assert html.count("<svg") == 1  # the bars; a single month draws no trend line
    assert '<svg role="img" aria-labelledby="chart-excess-t chart-excess-d"' in html
    assert '<desc id="chart-excess-d">Erfassung (intake@1): 3 Arbeitstage</desc>' in html
    assert "<caption>" in html and '<th scope="col">' in html and '<th scope="row">' in html
    assert "@media print" in html
    assert 'lang="en"' in html
    assert "Überschreitungsquote ≥ 25 %" in html  # the candidate rules are stated


def test_html_trend_chart_has_a_text_alternative(deployed: Engine, clock: FixedClock) -> None:
    for month in (1, 2, 3):
        case_id = _open(deployed, clock, datetime(2026, month, 2, 8, tzinfo=UTC))
        _fire(deployed, clock, case_id, "forward", datetime(2026, month, 10, 8, tzinfo=UTC))
    html = render_html(stall_report(deployed, now=NOW, min_cell=1))
    assert '<svg role="img" aria-labelledby="chart-trend-t chart-trend-d"' in html
    assert '<desc id="chart-trend-d">2026-01: 100,0 %; 2026-02: 100,0 %; 2026-03: 100,0 %</desc>' in html


# --------------------------------------------------------------------------- before/after


def test_compare_versions_detects_a_clear_improvement_and_warns_on_small_samples(
    deployed: Engine, clock: FixedClock
) -> None:
    faster = copy.deepcopy(REPORT_STEPS)
    faster["intake"]["expected"] = "2 Arbeitstage"
    faster["intake"]["warn_after"] = "1 Arbeitstag"
    deployed.deploy_text(process_yaml(version=2, steps=faster), actor=ACTOR)
    old = [_open(deployed, clock, version=1) for _ in range(24)]
    new = [_open(deployed, clock, version=2) for _ in range(24)]
    for i, case_id in enumerate(old):  # 4, 5 or 6 office days (Fri, Mon, Tue)
        _fire(deployed, clock, case_id, "forward", datetime(2026, 3, (6, 9, 10)[i % 3], 8, tzinfo=UTC))
    for i, case_id in enumerate(new):  # 1 or 2 office days
        _fire(deployed, clock, case_id, "forward", datetime(2026, 3, (3, 4)[i % 2], 8, tzinfo=UTC))
    comparison = compare_versions(deployed, "intake", 1, 2)
    intake = next(s for s in comparison.steps if s.step == "intake")
    assert (intake.a.completed, intake.b.completed) == (24, 24)
    assert (intake.a.median_office_days, intake.b.median_office_days) == (5.0, 1.5)
    assert intake.median_difference == -3.5
    assert intake.interval is not None and intake.interval[1] < 0
    assert (intake.verdict, intake.warnings) == (IMPROVED, ())
    assert compare_versions(deployed, "intake", 1, 2) == comparison  # seeded: the same interval every time
    review = next(s for s in comparison.steps if s.step == "review")
    assert review.verdict is None and "small-sample" in {w.code for w in review.warnings}
    few = compare_versions(deployed, "intake", 1, 2, period_to=MONDAY + timedelta(hours=1), min_cell=1)
    assert next(s for s in few.steps if s.step == "intake").verdict == IMPROVED
    small = compare_versions(deployed, "intake", 1, 2, min_sample=25)
    first = next(s for s in small.steps if s.step == "intake")
    assert first.verdict == INCONCLUSIVE and [w.code for w in first.warnings] == ["small-sample"]
    for text in (render_json(comparison), render_comparison_csv(comparison, decimal_comma=True)):
        assert "-3,5" in text or "-3.5" in text
    html = render_comparison_html(comparison)
    assert '<html lang="de">' in html and "verbessert" in html


# --------------------------------------------------------------------------- command line


class _Balance(HTMLParser):
    """Checks that every non-void element is closed in order."""

    VOID = frozenset({"meta", "br", "circle", "line", "rect", "polyline"})

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: Any) -> None:
        pass

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.open[-1:] or 'nothing'}")
        else:
            self.open.pop()


def test_html_elements_are_balanced(deployed: Engine, clock: FixedClock) -> None:
    _week(deployed, clock)
    report = stall_report(deployed, now=NOW)
    for page in (render_html(report), render_comparison_html(compare_versions(deployed, "intake", 1, 1))):
        checker = _Balance()
        checker.feed(page)
        assert (checker.errors, checker.open) == ([], [])


def _cli(engine: Engine) -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """kimflow (test)."""

    register(app, lambda: engine)
    return app


def test_the_command_line_lists_stalls_and_writes_reports(deployed: Engine, clock: FixedClock, tmp_path: Any) -> None:
    _week(deployed, clock)
    clock.set(NOW)
    app, runner = _cli(deployed), CliRunner()
    listing = runner.invoke(app, ["stalls"])
    assert listing.exit_code == 0, listing.output
    assert "1 überfällig" in listing.output and "Erfassung" in listing.output
    as_json = runner.invoke(app, ["stalls", "--format", "json", "--now", "2026-03-09T13:00"])
    assert [s["status"] for s in json.loads(as_json.output)] == ["stalled"]
    target = tmp_path / "bericht.csv"
    written = runner.invoke(app, ["report", "stalls", "--format", "csv", "--decimal-comma", "-o", str(target)])
    assert written.exit_code == 0, written.output
    assert target.read_text(encoding="utf-8").startswith(BOM + "Prozess;Version;Schritt")
    page = runner.invoke(app, ["report", "stalls", "--format", "html", "--process", "intake", "--min-cell", "1"])
    assert page.output.startswith("<!DOCTYPE html>")
    text = runner.invoke(app, ["report", "stalls", "--from", "2026-03-02", "--to", "2026-03-08"])
    assert text.exit_code == 0 and "Optimierungskandidaten" in text.output
    compared = runner.invoke(app, ["report", "compare", "--process", "intake", "--versions", "1", "1"])
    assert compared.exit_code == 0 and "Vergleich intake" in compared.output
    usage = runner.invoke(app, ["report", "compare", "--process", "intake"])
    assert usage.exit_code == 2
    bad_day = runner.invoke(app, ["report", "stalls", "--from", "02.03.2026"])
    assert bad_day.exit_code == 2
