"""Project-group pages: the stall dashboard and the before/after comparison, with CSV and printable exports.

No personal data on any of these pages: everything shown comes from the report objects of
:mod:`engine.reports` and :mod:`engine.compare`, which hold counts, durations and reason
codes only — never case ids, names, case data, caseworkers or the free text of findings —
with small groups suppressed (``min_cell``). The exports are the engine's own renderings
(:mod:`engine.report_formats`, :mod:`engine.report_html`) of the very same report objects.

Coordinators see the same dashboard plus, per optimisation candidate, a button that opens
a ``strukturhinweis`` case from the candidate's anonymous figures (:mod:`engine.structural`);
the project group reads only and may not open cases.

The charts are inline SVG drawn by ``reports/_charts.html`` from the geometry computed
here (label, value and coordinates per bar or point); each one has a ``<title>``, a
``<desc>`` listing its values, and the table with the same figures right after it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from babel.dates import format_date
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import EngineDep
from api.security import CASE_ROLES, REPORT_ROLES
from api.web.changes import logged_change
from api.web.i18n import BERLIN, N_, fmt_number, locale_of, pick
from api.web.session import CsrfChecked, page_for
from api.web.templating import gettext_for, render
from engine.accounts import User
from engine.compare import IMPROVED, INCONCLUSIVE, WORSENED, Comparison, compare_periods, compare_versions
from engine.errors import DefinitionNotFound
from engine.report_formats import render_comparison_csv, render_csv
from engine.report_html import render_comparison_html, render_html
from engine.reports import StallReport, StepStats, stall_report
from engine.scope import ScopedEngine
from engine.structural import STRUCTURAL_PROCESS, open_structural_case

router = APIRouter(include_in_schema=False)

ReportReader = Annotated[User, Depends(page_for(*REPORT_ROLES))]
# Opening a Strukturhinweis opens a case: only a role that both reads reports and works on cases (coordinators).
StructuralOpener = Annotated[User, Depends(page_for(*(REPORT_ROLES & CASE_ROLES)))]

CSV_MEDIA = "text/csv; charset=utf-8"
#: CSV tables of the stall report: German URL name -> engine table name, with the link text.
CSV_TABLES: dict[str, tuple[str, str]] = {
    "schritte": ("steps", N_("Schritte")),
    "kandidaten": ("candidates", N_("Optimierungskandidaten")),
    "uebergaben": ("handoffs", N_("Übergaben")),
    "verlauf": ("trend", N_("Monatlicher Verlauf")),
    "befunde": ("findings", N_("Befunde")),
}
VERDICTS = {
    IMPROVED: N_("verbessert"),
    WORSENED: N_("verschlechtert"),
    INCONCLUSIVE: N_("keine Aussage"),
}
VERSIONS, PERIODS = "versionen", "zeitraeume"
CHART_WIDTH = 820
CHART_BARS = 15
DATE_HINT = N_("Bitte ein Datum wie 31.12.2026 eingeben.")

_GERMAN_DATE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")


# --------------------------------------------------------------------------- dates typed by users


def parse_day(text: str) -> date | None:
    """A day as users type it: German ``TT.MM.JJJJ`` or ISO ``JJJJ-MM-TT`` (what ``<input type=date>`` sends).

    Returns None for an empty text.

    Raises:
        ValueError: Anything else, or a day that does not exist.
    """
    text = text.strip()
    if not text:
        return None
    german = _GERMAN_DATE.match(text)
    if german:
        return date(int(german[3]), int(german[2]), int(german[1]))
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise ValueError(text)
    return date.fromisoformat(text)


def day_start(day: date) -> datetime:
    """The first instant of a Berlin day, in UTC (periods are Berlin days, as in the reports)."""
    return datetime.combine(day, time(), tzinfo=BERLIN).astimezone(UTC)


def today(engine: ScopedEngine) -> date:
    return engine.clock.now().astimezone(BERLIN).date()


# --------------------------------------------------------------------------- charts


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    sublabel: str
    value: str
    y: float
    length: float


@dataclass(frozen=True, slots=True)
class BarChart:
    """Horizontal bars, longest first: the label (and a smaller second line) left, the value after the bar."""

    id: str
    bars: tuple[Bar, ...]
    label_width: int
    row_height: int
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Point:
    x: float
    y: float | None
    label: str
    short: str
    value: str
    tick: bool


@dataclass(frozen=True, slots=True)
class LineChart:
    """A share (0..1) over time; a missing (suppressed) value breaks the line instead of inventing one."""

    id: str
    width: int
    height: int
    left: int
    top: int
    plot_width: int
    plot_height: int
    y_ticks: tuple[tuple[float, str], ...]
    segments: tuple[str, ...]
    points: tuple[Point, ...]


@dataclass(frozen=True, slots=True)
class IntervalRow:
    label: str
    y: float
    low: float
    high: float
    point: float
    verdict: str
    text: str


@dataclass(frozen=True, slots=True)
class IntervalChart:
    """Per step the difference B − A (a dot) with its 95 % interval (a line) around a zero line."""

    id: str
    width: int
    height: int
    label_width: int
    zero_x: float
    top: int
    plot_height: int
    ticks: tuple[tuple[float, str], ...]
    rows: tuple[IntervalRow, ...]


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bar_chart(
    chart_id: str, items: Sequence[tuple[str, str, float]], locale: str, *, decimals: int = 0
) -> BarChart | None:
    """Bars for ``(label, second line, value)`` items with a positive value, in the given order (at most 15)."""
    shown = [item for item in items if item[2] > 0][:CHART_BARS]
    if not shown:
        return None
    label_width, value_room = 340, 80
    row_height = 40 if any(sub for _, sub, _ in shown) else 28
    top = max(value for *_, value in shown)
    plot = CHART_WIDTH - label_width - value_room
    bars = tuple(
        Bar(
            _clip(label),
            _clip(sub, 52),
            fmt_number(value, locale, decimals),
            6 + index * row_height,
            round(max(2.0, plot * value / top), 1),
        )
        for index, (label, sub, value) in enumerate(shown)
    )
    return BarChart(chart_id, bars, label_width, row_height, CHART_WIDTH, 12 + row_height * len(bars))


def _nice_ceiling(value: float) -> float:
    """A round upper bound above ``value`` (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= value)


def line_chart(chart_id: str, items: Sequence[tuple[str, str, float | None]], locale: str) -> LineChart | None:
    """A line of shares (0..1) over ``(label, short label for the axis, share)`` items; None for fewer than two."""
    if len(items) < 2:
        return None
    left, top, bottom, plot_w, plot_h = 60, 15, 40, CHART_WIDTH - 90, 220
    shares = [share for *_, share in items if share is not None]
    ceiling = min(1.0, _nice_ceiling(max(shares) * 1.1)) if shares and max(shares) > 0 else 0.1
    step = plot_w / (len(items) - 1)
    every = max(1, math.ceil(len(items) / 12))
    points = []
    for index, (label, short, share) in enumerate(items):
        y = None if share is None else round(top + plot_h * (1 - share / ceiling), 1)
        value = "" if share is None else fmt_number(share * 100, locale, 1) + " %"
        tick = index % every == 0 or index == len(items) - 1
        points.append(Point(round(left + index * step, 1), y, label, short, value, tick))
    segments: list[str] = []
    current: list[str] = []
    for point in points:
        if point.y is None:
            if len(current) > 1:
                segments.append(" ".join(current))
            current = []
            continue
        current.append(f"{point.x},{point.y}")
    if len(current) > 1:
        segments.append(" ".join(current))
    ticks = tuple(
        (round(top + plot_h * (1 - fraction), 1), fmt_number(ceiling * fraction * 100, locale, 0) + " %")
        for fraction in (0.0, 0.5, 1.0)
    )
    return LineChart(
        chart_id, CHART_WIDTH, top + plot_h + bottom, left, top, plot_w, plot_h, ticks, tuple(segments), tuple(points)
    )


def interval_chart(
    chart_id: str, items: Sequence[tuple[str, float, float, float, str]], locale: str
) -> IntervalChart | None:
    """Dots with interval lines for ``(label, difference, low, high, verdict)``, symmetric around zero."""
    if not items:
        return None
    label_width, right, top, row_h, bottom = 320, 30, 10, 30, 34
    plot_w = CHART_WIDTH - label_width - right
    extent = _nice_ceiling(max(max(abs(low), abs(high), abs(d)) for _, d, low, high, _ in items))
    zero = label_width + plot_w / 2

    def x(value: float) -> float:
        return round(zero + plot_w / 2 * value / extent, 1)

    rows = tuple(
        IntervalRow(
            _clip(label, 36),
            top + index * row_h + row_h / 2,
            x(low),
            x(high),
            x(difference),
            verdict,
            f"{fmt_number(difference, locale, 1)} ({fmt_number(low, locale, 1)} … {fmt_number(high, locale, 1)})",
        )
        for index, (label, difference, low, high, verdict) in enumerate(items)
    )
    plot_h = row_h * len(rows)
    ticks = tuple((x(v), fmt_number(v, locale, 1)) for v in (-extent, -extent / 2, 0.0, extent / 2, extent))
    return IntervalChart(chart_id, CHART_WIDTH, top + plot_h + bottom, label_width, zero, top, plot_h, ticks, rows)


def month_label(month: str, locale: str, *, short: bool = False) -> str:
    """``2026-03`` as ``März 2026`` (``March 2026`` in English), or short for an axis: ``03/26``."""
    year, number = month.split("-")
    if short:
        return f"{number}/{year[2:]}"
    return format_date(date(int(year), int(number), 1), "MMMM yyyy", locale=locale)


# --------------------------------------------------------------------------- the dashboard's filters


@dataclass
class Filters:
    """The dashboard's filters as typed (for the form and the export links), parsed, and their errors."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    process_id: str | None = None
    period_from: date | None = None
    period_to: date | None = None

    def query(self) -> str:
        """The filters as a query string for links (empty values left out)."""
        return urlencode({k: v for k, v in self.values.items() if v})


def process_titles(engine: ScopedEngine) -> dict[str, tuple[str, str | None]]:
    """Every deployed process's title (German, English) from its newest version, by id."""
    newest = {d.process_id: d.version for d in engine.registry.list()}
    titles = {}
    for process_id, version in sorted(newest.items()):
        definition = engine.process(process_id, version)
        titles[process_id] = (definition.title, definition.title_en)
    return titles


def read_filters(engine: ScopedEngine, prozess: str, von: str, bis: str) -> Filters:
    filters = Filters({"prozess": prozess.strip(), "von": von.strip(), "bis": bis.strip()})
    if filters.values["prozess"]:
        if filters.values["prozess"] not in process_titles(engine):
            filters.errors["prozess"] = N_("Diesen Prozess gibt es nicht.")
        else:
            filters.process_id = filters.values["prozess"]
    for name, attribute in (("von", "period_from"), ("bis", "period_to")):
        try:
            day = parse_day(filters.values[name])
        except ValueError:
            filters.errors[name] = DATE_HINT
            continue
        setattr(filters, attribute, day)
        if day is not None:
            filters.values[name] = day.isoformat()  # what <input type=date> shows, whatever was typed
    if filters.period_from and filters.period_to and filters.period_to < filters.period_from:
        filters.errors["bis"] = N_("Das Ende des Zeitraums liegt vor seinem Anfang.")
    return filters


def dashboard_filters(
    engine: EngineDep,
    prozess: Annotated[str, Query(max_length=64)] = "",
    von: Annotated[str, Query(max_length=20)] = "",
    bis: Annotated[str, Query(max_length=20)] = "",
) -> Filters:
    return read_filters(engine, prozess, von, bis)


DashboardFilters = Annotated[Filters, Depends(dashboard_filters)]


def build_report(engine: ScopedEngine, filters: Filters) -> StallReport:
    return stall_report(
        engine,
        now=engine.clock.now(),
        process_id=filters.process_id,
        period_from=filters.period_from,
        period_to=filters.period_to,
    )


# --------------------------------------------------------------------------- what the dashboard shows


@dataclass(frozen=True, slots=True)
class Summary:
    """Totals over the steps not suppressed (as the printable report states them)."""

    visits: int
    completed: int
    overrun_share: float | None
    stalled_now: int
    excess_office_days: int
    suppressed_steps: int


def summarise(report: StallReport) -> Summary:
    shown = [s for s in report.steps if not s.suppressed]
    # The share counts only steps whose overrun count is shown, so hidden counts do not dilute it.
    with_share = [s for s in shown if s.overran is not None and s.completed]
    completed = sum(s.completed or 0 for s in with_share)
    overran = sum(s.overran or 0 for s in with_share)
    return Summary(
        visits=sum(s.visits or 0 for s in shown),
        completed=sum(s.completed or 0 for s in shown),
        overrun_share=overran / completed if completed else None,
        stalled_now=sum(s.stalled_now or 0 for s in shown),
        excess_office_days=sum(s.excess_office_days or 0 for s in shown),
        suppressed_steps=len(report.steps) - len(shown),
    )


@dataclass(frozen=True, slots=True)
class AgencyExcess:
    code: str
    name: str
    excess_office_days: int
    steps: int


@dataclass(frozen=True, slots=True)
class ReasonRow:
    step: StepStats
    code: str
    label: str
    label_en: str
    count: int | None


@dataclass
class Dashboard:
    report: StallReport
    summary: Summary
    steps: dict[tuple[str, int, str], StepStats]
    agency_names: dict[str, str]
    excess_steps: list[StepStats]
    excess_agencies: list[AgencyExcess]
    reasons: list[ReasonRow]
    steps_by_process: list[tuple[tuple[str, int], list[StepStats]]]
    step_chart: BarChart | None
    agency_chart: BarChart | None
    trend_chart: LineChart | None
    handoff_chart: BarChart | None


def build_dashboard(
    report: StallReport, titles: dict[str, tuple[str, str | None]], locale: str, gettext: Any
) -> Dashboard:
    def process_title(process_id: str) -> str:
        de, en = titles.get(process_id, (process_id, None))
        return pick(de, en, locale)

    steps = {(s.process_id, s.process_version, s.step): s for s in report.steps}
    agency_names: dict[str, str] = {}
    for s in report.steps:
        if s.agency and s.agency_name:
            agency_names.setdefault(s.agency, s.agency_name)
    excess_steps = sorted(
        (s for s in report.steps if not s.suppressed and s.excess_office_days),
        key=lambda s: (-(s.excess_office_days or 0), s.process_id, s.process_version, s.step),
    )
    by_agency: dict[str, list[int]] = {}
    for s in report.steps:
        if not s.suppressed and s.excess_office_days is not None:
            total = by_agency.setdefault(s.agency or "", [0, 0])
            total[0] += s.excess_office_days
            total[1] += 1
    excess_agencies = sorted(
        (AgencyExcess(code, agency_names.get(code, code), excess, n) for code, (excess, n) in by_agency.items()),
        key=lambda a: (-a.excess_office_days, a.code),
    )
    reasons = [
        ReasonRow(s, r.code, r.label, r.label_en, r.count)
        for s in report.steps
        if not s.suppressed
        for r in s.top_reasons
    ]

    by_process: dict[tuple[str, int], list[StepStats]] = {}
    for s in report.steps:
        by_process.setdefault((s.process_id, s.process_version), []).append(s)

    def handoff_label(code: str | None) -> str:
        return agency_names.get(code or "", code or "–")

    return Dashboard(
        report=report,
        summary=summarise(report),
        steps=steps,
        agency_names=agency_names,
        excess_steps=excess_steps,
        excess_agencies=[a for a in excess_agencies if a.excess_office_days > 0],
        reasons=reasons,
        steps_by_process=list(by_process.items()),
        step_chart=bar_chart(
            "chart-steps",
            [
                (pick(s.title, s.title_en, locale), process_title(s.process_id), float(s.excess_office_days or 0))
                for s in excess_steps
            ],
            locale,
        ),
        agency_chart=bar_chart(
            "chart-agencies",
            [(a.name, a.code, float(a.excess_office_days)) for a in excess_agencies],
            locale,
        ),
        trend_chart=line_chart(
            "chart-trend",
            [
                (month_label(m.month, locale), month_label(m.month, locale, short=True), m.overrun_share)
                for m in report.trend
            ],
            locale,
        ),
        handoff_chart=bar_chart(
            "chart-handoffs",
            [
                (
                    handoff_label(h.to_agency),
                    gettext("übergeben von %(agency)s") % {"agency": handoff_label(h.from_agency)},
                    h.median_office_days,
                )
                for h in sorted(report.handoffs, key=lambda h: -(h.median_office_days or 0))
                if h.median_office_days is not None
            ],
            locale,
            decimals=1,
        ),
    )


def _render_dashboard(
    request: Request,
    engine: ScopedEngine,
    user: User,
    filters: Filters,
    *,
    status_code: int = 200,
    flash: dict[str, str] | None = None,
    opened: int | None = None,
) -> HTMLResponse:
    locale = locale_of(request)
    titles = process_titles(engine)
    dashboard = None
    if not filters.errors:
        dashboard = build_dashboard(build_report(engine, filters), titles, locale, gettext_for(request))
    elif status_code == 200:
        status_code = 422
    return render(
        request,
        "reports/dashboard.html",
        status_code=status_code,
        filters=filters,
        processes=titles,
        dashboard=dashboard,
        csv_tables=CSV_TABLES,
        may_open_cases=user.role in CASE_ROLES,
        structural_deployed=STRUCTURAL_PROCESS in titles,
        opened=opened,
        flash=flash,
        month=lambda value: month_label(value, locale),
    )


# --------------------------------------------------------------------------- dashboard routes


@router.get("/auswertung")
def dashboard(
    request: Request,
    user: ReportReader,
    engine: EngineDep,
    filters: DashboardFilters,
    strukturhinweis: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> Response:
    """The stall dashboard: figures, optimisation candidates, charts with their tables, reasons, findings."""
    opened = strukturhinweis if user.role in CASE_ROLES else None
    return _render_dashboard(request, engine, user, filters, opened=opened)


def _export_headers(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


@router.get("/auswertung/export.csv")
def dashboard_csv(
    request: Request,
    user: ReportReader,
    engine: EngineDep,
    filters: DashboardFilters,
    tabelle: Annotated[str, Query(max_length=20)] = "schritte",
) -> Response:
    """One table of the report as CSV for German spreadsheets (``;``, decimal comma, BOM), as a download."""
    if tabelle not in CSV_TABLES:
        filters.errors["tabelle"] = N_("Diese Tabelle gibt es nicht.")
    if filters.errors:
        return _render_dashboard(request, engine, user, filters, status_code=422)
    body = render_csv(build_report(engine, filters), table=CSV_TABLES[tabelle][0], decimal_comma=True)
    return Response(body, media_type=CSV_MEDIA, headers=_export_headers(f"stillstandsbericht-{tabelle}.csv"))


@router.get("/auswertung/druck")
def dashboard_print(request: Request, user: ReportReader, engine: EngineDep, filters: DashboardFilters) -> Response:
    """The printable stall report (the engine's self-contained HTML page)."""
    if filters.errors:
        return _render_dashboard(request, engine, user, filters)
    return HTMLResponse(render_html(build_report(engine, filters)))


@router.post("/auswertung/strukturhinweis", dependencies=[CsrfChecked])
def open_structural(
    request: Request,
    user: StructuralOpener,
    engine: EngineDep,
    kandidat_prozess: Annotated[str, Form(max_length=64)],
    kandidat_version: Annotated[int, Form(ge=1)],
    kandidat_schritt: Annotated[str, Form(max_length=64)],
    prozess: Annotated[str, Form(max_length=64)] = "",
    von: Annotated[str, Form(max_length=20)] = "",
    bis: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Open a Strukturhinweis case from a candidate of the report with these filters (coordinators only).

    The candidate is named by process, version and step, not by its rank, so that a report
    that changed since the page was shown cannot open a case for another step. The opening
    is written to the access log in the case's own transaction, as the API's changes are.
    """
    filters = read_filters(engine, prozess, von, bis)
    if filters.errors:
        return _render_dashboard(request, engine, user, filters)
    report = build_report(engine, filters)
    identity = (kandidat_prozess, kandidat_version, kandidat_schritt)
    candidate = next((c for c in report.candidates if (c.process_id, c.process_version, c.step) == identity), None)
    _ = gettext_for(request)
    if candidate is None:
        text = _("Dieser Schritt ist in der aktuellen Auswertung kein Optimierungskandidat mehr.")
        return _render_dashboard(request, engine, user, filters, status_code=409, flash={"kind": "error", "text": text})
    try:
        case = logged_change(
            request,
            user,
            engine,
            None,
            ["prozess_id", "prozess_version", "schritt_id", "stelle", "ursache", "fallzahl"],
            lambda: open_structural_case(engine, report, candidate.rank, actor=user.name, team=user.team),
        )
    except DefinitionNotFound:
        text = _("Der Prozess „Strukturhinweis“ ist nicht bereitgestellt; bitte zuerst bereitstellen.")
        return _render_dashboard(request, engine, user, filters, status_code=409, flash={"kind": "error", "text": text})
    query = filters.query()
    target = f"/auswertung?{query + '&' if query else ''}strukturhinweis={case.id}#kandidaten"
    return RedirectResponse(target, status_code=303)


# --------------------------------------------------------------------------- the comparison


@dataclass
class CompareForm:
    """The comparison's form as typed, parsed, and its errors; ``ready`` once it was submitted without errors."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    submitted: bool = False
    process_id: str | None = None
    kind: str = PERIODS
    version_a: int | None = None
    version_b: int | None = None
    period_a: tuple[date, date] | None = None
    period_b: tuple[date, date] | None = None

    @property
    def ready(self) -> bool:
        return self.submitted and not self.errors

    def query(self) -> str:
        return urlencode({k: v for k, v in self.values.items() if v})


def _versions(engine: ScopedEngine) -> dict[str, list[int]]:
    versions: dict[str, list[int]] = {}
    for deployment in engine.registry.list():
        versions.setdefault(deployment.process_id, []).append(deployment.version)
    return versions


def _compare_defaults(engine: ScopedEngine, versions: dict[str, list[int]], process_id: str) -> dict[str, str]:
    """Sensible starting values: the newest two versions, the last half year against the half year before."""
    end = today(engine)
    newest = versions.get(process_id, [1])
    return {
        "prozess": process_id,
        "art": PERIODS,
        "version_a": str(newest[-2] if len(newest) > 1 else newest[-1]),
        "version_b": str(newest[-1]),
        "a_von": (end - timedelta(days=365)).isoformat(),
        "a_bis": (end - timedelta(days=183)).isoformat(),
        "b_von": (end - timedelta(days=182)).isoformat(),
        "b_bis": end.isoformat(),
    }


def read_compare_form(engine: ScopedEngine, raw: dict[str, str]) -> CompareForm:
    """Parse the form; without a process it is not submitted yet and gets sensible defaults."""
    versions = _versions(engine)
    if not raw.get("prozess"):
        first = next(iter(sorted(p for p in versions if p != STRUCTURAL_PROCESS)), next(iter(versions), ""))
        return CompareForm(_compare_defaults(engine, versions, first))
    form = CompareForm({k: v.strip() for k, v in raw.items()}, submitted=True)
    values, errors = form.values, form.errors
    form.kind = VERSIONS if values.get("art") == VERSIONS else PERIODS
    values["art"] = form.kind
    # The fields of the other kind are not used; fill the empty ones so the form offers them ready to switch.
    unused = ("a_von", "a_bis", "b_von", "b_bis") if form.kind == VERSIONS else ("version_a", "version_b")
    defaults = _compare_defaults(engine, versions, values["prozess"])
    for name in unused:
        values[name] = values.get(name) or defaults[name]
    if values["prozess"] not in versions:
        errors["prozess"] = N_("Diesen Prozess gibt es nicht.")
        return form
    form.process_id = values["prozess"]
    if form.kind == VERSIONS:
        deployed = versions[form.process_id]
        for name in ("version_a", "version_b"):
            text = values.get(name, "")
            if not text.isdigit() or int(text) not in deployed:
                errors[name] = N_("Diese Version ist für den Prozess nicht bereitgestellt.")
            else:
                setattr(form, name, int(text))
        if not errors and form.version_a == form.version_b:
            errors["version_b"] = N_("Bitte zwei verschiedene Versionen wählen.")
        return form
    for side in ("a", "b"):
        days: list[date | None] = []
        for bound in ("von", "bis"):
            name = f"{side}_{bound}"
            try:
                day = parse_day(values.get(name, ""))
            except ValueError:
                errors[name] = DATE_HINT
                day = None
            else:
                if day is None:
                    errors[name] = N_("Bitte ein Datum angeben.")
                else:
                    values[name] = day.isoformat()
            days.append(day)
        start, end = days
        if start and end:
            if end < start:
                errors[f"{side}_bis"] = N_("Das Ende des Zeitraums liegt vor seinem Anfang.")
            else:
                setattr(form, f"period_{side}", (start, end))
    return form


def compare(engine: ScopedEngine, form: CompareForm) -> Comparison:
    assert form.ready and form.process_id is not None
    if form.kind == VERSIONS:
        assert form.version_a is not None and form.version_b is not None
        return compare_versions(engine, form.process_id, form.version_a, form.version_b)
    assert form.period_a is not None and form.period_b is not None
    return compare_periods(engine, form.process_id, form.period_a, form.period_b)


def compare_params(
    prozess: Annotated[str, Query(max_length=64)] = "",
    art: Annotated[str, Query(max_length=20)] = "",
    version_a: Annotated[str, Query(max_length=10)] = "",
    version_b: Annotated[str, Query(max_length=10)] = "",
    a_von: Annotated[str, Query(max_length=20)] = "",
    a_bis: Annotated[str, Query(max_length=20)] = "",
    b_von: Annotated[str, Query(max_length=20)] = "",
    b_bis: Annotated[str, Query(max_length=20)] = "",
) -> dict[str, str]:
    return {
        "prozess": prozess,
        "art": art,
        "version_a": version_a,
        "version_b": version_b,
        "a_von": a_von,
        "a_bis": a_bis,
        "b_von": b_von,
        "b_bis": b_bis,
    }


CompareParams = Annotated[dict[str, str], Depends(compare_params)]


def _side_label(form: CompareForm, side: str, locale: str, _: Any) -> str:
    """What a side is, in the page's language: ``Version 2`` or ``01.01.2026 – 30.06.2026``."""
    if form.kind == VERSIONS:
        return str(_("Version %(v)s") % {"v": getattr(form, f"version_{side}")})
    start, end = getattr(form, f"period_{side}")
    fmt = "dd.MM.yyyy" if locale == "de" else "medium"
    return f"{format_date(start, fmt, locale=locale)} – {format_date(end, fmt, locale=locale)}"


def _render_compare(request: Request, engine: ScopedEngine, form: CompareForm) -> HTMLResponse:
    locale = locale_of(request)
    _ = gettext_for(request)
    comparison = chart = None
    labels = ("", "")
    if form.ready:
        comparison = compare(engine, form)
        labels = (_side_label(form, "a", locale, _), _side_label(form, "b", locale, _))
        chart = interval_chart(
            "chart-compare",
            [
                (pick(s.title, s.title_en, locale), s.median_difference, s.interval[0], s.interval[1], s.verdict or "")
                for s in comparison.steps
                if s.median_difference is not None and s.interval is not None
            ],
            locale,
        )
    return render(
        request,
        "reports/compare.html",
        status_code=422 if form.errors else 200,
        form=form,
        versions=_versions(engine),
        processes=process_titles(engine),
        comparison=comparison,
        labels=labels,
        chart=chart,
        verdicts=VERDICTS,
        kinds=(VERSIONS, PERIODS),
    )


@router.get("/auswertung/vergleich")
def comparison_page(request: Request, _: ReportReader, engine: EngineDep, params: CompareParams) -> Response:
    """Before/after: two versions of a process, or two periods, step by step with a bootstrap interval."""
    return _render_compare(request, engine, read_compare_form(engine, params))


@router.get("/auswertung/vergleich/export.csv")
def comparison_csv(request: Request, _: ReportReader, engine: EngineDep, params: CompareParams) -> Response:
    """The comparison as CSV for German spreadsheets, as a download."""
    form = read_compare_form(engine, params)
    if not form.ready:
        form.errors.setdefault("prozess", N_("Bitte einen Prozess wählen."))
        return _render_compare(request, engine, form)
    body = render_comparison_csv(compare(engine, form), decimal_comma=True)
    return Response(body, media_type=CSV_MEDIA, headers=_export_headers(f"vergleich-{form.process_id}.csv"))


@router.get("/auswertung/vergleich/druck")
def comparison_print(request: Request, _: ReportReader, engine: EngineDep, params: CompareParams) -> Response:
    """The printable comparison (the engine's self-contained HTML page)."""
    form = read_compare_form(engine, params)
    if not form.ready:
        form.errors.setdefault("prozess", N_("Bitte einen Prozess wählen."))
        return _render_compare(request, engine, form)
    return HTMLResponse(render_comparison_html(compare(engine, form)))


__all__ = ["bar_chart", "day_start", "interval_chart", "line_chart", "parse_day", "router"]
