"""The stall report for working groups, project groups and the steering group.

Per process, version, step and agency: visits, completed visits, median and p90 dwell
(office days and calendar seconds), overrun share, visits stalled now, total excess
office days and the most frequent reason codes; per handoff (agency A hands a case to
agency B) the dwell of the receiving visit; a monthly trend; structural findings
counted by code; and a ranked list of optimisation candidates, each with the rules
that made it one. German texts with English in parallel fields.

**No personal data** (primer §7.5): the report holds counts, durations and codes only,
never case ids, case data, names, caseworkers or the free text of findings.
**Small cells are suppressed**: a group (step, handoff, month, finding code) with fewer
than ``min_cell`` visits keeps its identity but loses all its figures (None, flagged
``suppressed``); inside a group that is shown, a count between 1 and ``min_cell - 1``
is hidden likewise, together with the figures derived from it (``suppressed_fields``
names them). Nothing is dropped silently.

How it is computed (architecture decision 8): SQL aggregations over the stored visits,
whose ``office_days``, ``overran`` and ``excess_office_days`` the engine sets when a
visit closes, so no calendar arithmetic runs per visit. SQLite has no percentile
aggregate and sorts for every GROUP BY, so the report makes one pass over the visits
for almost everything:

1. *cells*: one GROUP BY over the visits of the selected steps, on a single integer
   (step number, office days, open, overran) plus the handoff origin and the reason
   code, gives the counts, the excess, the office-day histograms (so the office-day
   percentiles are exact: office days are integers) and, collected per cell, the dwell
   of each completed visit in milliseconds (so the percentiles in seconds are exact to
   the millisecond, from values sorted in Python). The step number comes from a join
   with a small temporary table of the selected steps, which also applies the process
   and agency filters and leaves out final steps (their visits have no dwell); grouping
   on one integer instead of three text columns is what makes SQLite's sort cheap.
2. the monthly trend (one more GROUP BY, on the UTC hour of leaving; each hour is put
   into its Berlin month in Python), the visits stalled now (partial index
   ``ix_visit_open_due``) and the findings (a small table).

The dialect-specific SQL (dwell in milliseconds, collecting values, the hour of an
instant) lives in the ``_*_sql`` functions below.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from engine import store as st
from engine.definition import ProcessDefinition, StepDef
from engine.durations import Duration, DurationUnit
from engine.dwell import percentile
from engine.errors import DefinitionNotFound
from engine.stalls import STALLED, judge
from engine.taxonomy import Taxonomy

if TYPE_CHECKING:
    from engine.cases import Engine

BERLIN = ZoneInfo("Europe/Berlin")
DEFAULT_MIN_CELL = 5
TOP_REASONS = 3

# Layout of the packed cell key: step number | office days | open | overran.
_OD_SPAN = 1 << 15  # office days 0..32766; 32767 = no dwell (open visit)
_NO_VALUE = (1 << 15) - 1


# --------------------------------------------------------------------------- the report


@dataclass(frozen=True, slots=True)
class ReasonCount:
    """How often a reason code was given in a group (the last pause/wait reason of each visit)."""

    code: str
    label: str
    label_en: str
    count: int | None
    suppressed: bool = False


@dataclass(frozen=True, slots=True)
class StepStats:
    """Figures of one step of one process version, for the visits the report covers.

    Attributes:
        visits: Visits entered in the period (open and closed).
        completed: Visits left (closed with a dwell time).
        open: Visits still open.
        median_office_days/p90_office_days: Dwell of completed visits in office days.
        median_seconds/p90_seconds: Dwell of completed visits in calendar seconds.
        overran: Completed visits that left after their deadline; ``overrun_share`` = overran / completed.
        stalled_now: Open visits past their deadline at the report's instant.
        excess_office_days: Office days past the deadline, summed over the completed visits.
        top_reasons: The most frequent reason codes of the group's visits.
        suppressed: True if the whole group has fewer than ``min_cell`` visits.
        suppressed_fields: Figures hidden because they rest on fewer than ``min_cell`` visits.
    """

    process_id: str
    process_version: int
    step: str
    title: str
    title_en: str | None
    agency: str | None
    agency_name: str | None
    expected: str | None
    expected_en: str | None
    visits: int | None
    completed: int | None
    open: int | None
    median_office_days: float | None
    p90_office_days: float | None
    median_seconds: float | None
    p90_seconds: float | None
    overran: int | None
    overrun_share: float | None
    stalled_now: int | None
    excess_office_days: int | None
    top_reasons: tuple[ReasonCount, ...] = ()
    suppressed: bool = False
    suppressed_fields: tuple[str, ...] = ()

    @property
    def process_ref(self) -> str:
        return f"{self.process_id}@{self.process_version}"


@dataclass(frozen=True, slots=True)
class HandoffStats:
    """Visits that began with a handoff from ``from_agency`` to ``to_agency``: how long the receiver took."""

    from_agency: str
    to_agency: str | None
    visits: int | None
    completed: int | None
    median_office_days: float | None
    p90_office_days: float | None
    median_seconds: float | None
    p90_seconds: float | None
    suppressed: bool = False
    suppressed_fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MonthStats:
    """Visits completed in one month (``YYYY-MM`` of leaving, Europe/Berlin)."""

    month: str
    completed: int | None
    overran: int | None
    overrun_share: float | None
    excess_office_days: int | None
    suppressed: bool = False
    suppressed_fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FindingCount:
    """Structural findings of one code at one step (counts only: finding texts are free text)."""

    process_id: str
    process_version: int
    step: str
    agency: str | None
    code: str
    label: str
    label_en: str
    count: int | None
    suppressed: bool = False


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule that makes a step an optimisation candidate, stated in German and English."""

    code: str
    text: str
    text_en: str


@dataclass(frozen=True, slots=True)
class CandidateRules:
    """Thresholds of the candidate rules (defaults follow the issue's examples)."""

    min_overrun_share: float = 0.25
    min_completed: int = 10
    p90_factor: float = 2.0
    min_stalled_now: int = 5

    def stated(self) -> tuple[Rule, ...]:
        share = _percent_de(self.min_overrun_share)
        factor_de = f"{self.p90_factor:g}".replace(".", ",")
        return (
            Rule(
                "overrun-share",
                f"Überschreitungsquote ≥ {share} und ≥ {self.min_completed} abgeschlossene Besuche",
                f"overrun share ≥ {self.min_overrun_share:.0%} with ≥ {self.min_completed} completed visits",
            ),
            Rule(
                "p90-over-expected",
                f"p90 der Verweildauer > {factor_de}× erwartete Dauer (in Arbeitstagen)",
                f"p90 dwell > {self.p90_factor:g}× the expected duration (in office days)",
            ),
            Rule(
                "stalled-now",
                f"≥ {self.min_stalled_now} Besuche jetzt über der Frist",
                f"≥ {self.min_stalled_now} visits past their deadline now",
            ),
        )


@dataclass(frozen=True, slots=True)
class Candidate:
    """A step worth a structural look, ranked by its total excess office days."""

    rank: int
    process_id: str
    process_version: int
    step: str
    title: str
    title_en: str | None
    agency: str | None
    excess_office_days: int | None
    overrun_share: float | None
    p90_office_days: float | None
    stalled_now: int | None
    rules: tuple[Rule, ...]


@dataclass(frozen=True, slots=True)
class ReportFilters:
    """What the report covers: a process, visits entered within [period_from, period_to), an agency."""

    process_id: str | None = None
    period_from: datetime | None = None
    period_to: datetime | None = None
    agency: str | None = None


@dataclass(frozen=True, slots=True)
class StallReport:
    """The stall report; ``as_dict()`` gives plain JSON-ready data."""

    generated_at: datetime
    filters: ReportFilters
    min_cell: int
    steps: tuple[StepStats, ...]
    handoffs: tuple[HandoffStats, ...]
    trend: tuple[MonthStats, ...]
    findings: tuple[FindingCount, ...]
    candidates: tuple[Candidate, ...]
    rules: tuple[Rule, ...]
    notes: tuple[Rule, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        """The report as plain data (instants as ISO 8601 text, UTC)."""
        plain: dict[str, Any] = _plain(asdict(self))
        return plain


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, float):
        return round(value, 6)
    return value


# --------------------------------------------------------------------------- statistics


def percentile_of_counts(counts: Sequence[tuple[float, int]], q: float) -> float | None:
    """The q-quantile (linear interpolation at ``(n - 1) * q``) of values given as ascending (value, count)."""
    n = sum(c for _, c in counts)
    if n == 0:
        return None
    position = (n - 1) * q
    low = math.floor(position)
    high = min(low + 1, n - 1)
    values = _values_at(counts, (low, high))
    return values[low] + (values[high] - values[low]) * (position - low)


def _values_at(counts: Sequence[tuple[float, int]], ranks: Iterable[int]) -> dict[int, float]:
    wanted = sorted(set(ranks))
    out: dict[int, float] = {}
    seen = 0
    i = 0
    for value, count in counts:
        while i < len(wanted) and wanted[i] < seen + count:
            out[wanted[i]] = value
            i += 1
        seen += count
        if i == len(wanted):
            break
    return out


def expected_office_days(duration: Duration | None) -> float | None:
    """A step's expected duration in office days (calendar units converted approximately: 5 per week)."""
    if duration is None:
        return None
    per_unit = {
        DurationUnit.OFFICE_DAYS: 1.0,
        DurationUnit.WORKING_DAYS: 5 / 6,
        DurationUnit.CALENDAR_DAYS: 5 / 7,
        DurationUnit.WEEKS: 5.0,
        DurationUnit.MONTHS: 21.0,  # 252 office days a year / 12
        DurationUnit.YEARS: 252.0,
    }
    return duration.amount * per_unit[duration.unit]


def _percent_de(share: float) -> str:
    return f"{share * 100:g} %".replace(".", ",")


# --------------------------------------------------------------------------- dialect-specific SQL


def _milliseconds_sql(dialect: str) -> Any:
    """Dwell ``left_at - entered_at`` in whole milliseconds.

    Not :func:`engine.dwell.dwell_seconds_expression` (exact to the microsecond through
    ``strftime``, four text conversions per visit): this runs over every visit, and
    ``julianday`` costs a fraction of that; its error is below 0.1 ms.
    """
    v = st.visits_t.c
    if dialect == "postgresql":
        return sa.cast(sa.func.round(sa.extract("epoch", v.left_at - v.entered_at) * 1000), sa.BigInteger)
    return sa.cast(
        sa.func.round((sa.func.julianday(v.left_at) - sa.func.julianday(v.entered_at)) * 86_400_000.0), sa.Integer
    )


def _collect_sql(value: Any, dialect: str) -> Any:
    """All non-null values of a group: a list on PostgreSQL, comma-separated text on SQLite (see :func:`_values`)."""
    if dialect == "postgresql":
        return sa.func.array_agg(value)
    return sa.func.group_concat(value)


def _values(collected: Any) -> list[int]:
    if collected is None:
        return []
    if isinstance(collected, str):
        return list(map(int, collected.split(",")))
    return [int(x) for x in collected if x is not None]


def _hour_sql(column: Any, dialect: str) -> Any:
    """The UTC hour of an instant (a datetime on PostgreSQL, ``YYYY-MM-DD HH`` text on SQLite).

    Grouping by hour keeps the monthly trend exact in Europe/Berlin without any time-zone
    rules in SQL: Berlin's offset is whole hours, so an hour lies in one Berlin month,
    which :func:`_berlin_month` assigns with ``zoneinfo``.
    """
    if dialect == "postgresql":
        return sa.func.date_trunc("hour", column)
    return sa.func.substr(column, 1, 13)  # SQLite stores UTC as 'YYYY-MM-DD HH:MM:SS.ffffff'


def _berlin_month(hour: datetime | str) -> str:
    if isinstance(hour, str):
        hour = datetime.fromisoformat(hour + ":00").replace(tzinfo=UTC)
    return hour.astimezone(BERLIN).strftime("%Y-%m")


def _not_indexed(column: Any, dialect: str) -> Any:
    """``column`` in a form no index can serve: on SQLite this keeps ``kf_visit`` the outer loop of a
    join with a small table, one sequential scan, instead of a look-up through ``ix_visit_process_step``
    for every row of the small table."""
    return column.concat("") if dialect == "sqlite" else column


# --------------------------------------------------------------------------- temporary tables

# --------------------------------------------------------------------------- the temporary step table

_tmp = sa.MetaData()
_groups_t = sa.Table(
    "kf_tmp_report_step",
    _tmp,
    # step first: the most selective column, so the probe per visit compares least
    sa.Column("step", sa.String(64), primary_key=True),
    sa.Column("process_version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("process_id", sa.String(64), primary_key=True),
    sa.Column("gid", sa.Integer, nullable=False),
    prefixes=["TEMPORARY"],
    sqlite_with_rowid=False,
)


# --------------------------------------------------------------------------- gathering


@dataclass
class _Group:
    """What the queries found about one step (process, version, step)."""

    gid: int
    definition: ProcessDefinition
    step: StepDef
    visits: int = 0
    completed: int = 0
    open: int = 0
    overran: int = 0
    excess: int = 0
    stalled_now: int = 0
    office_days: Counter[int] = field(default_factory=Counter)
    milliseconds: list[int] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)


def _instant(value: date | datetime | None, *, end: bool) -> datetime | None:
    """A period bound as a UTC instant; a date means its start in Berlin (``end``: the start of the next day)."""
    if value is None or isinstance(value, datetime):
        if isinstance(value, datetime) and value.tzinfo is None:
            raise ValueError("period bounds must be timezone-aware datetimes or dates")
        return value
    day = value + timedelta(days=1) if end else value
    return datetime.combine(day, time(), tzinfo=BERLIN).astimezone(UTC)


def _catalog(engine: Engine, conn: sa.Connection, filters: ReportFilters) -> list[_Group]:
    """The non-final steps of every deployed version the filters select, numbered."""
    d = st.definitions_t.c
    query = sa.select(d.process_id, d.version).order_by(d.process_id, d.version)
    if filters.process_id is not None:
        query = query.where(d.process_id == filters.process_id)
    refs = conn.execute(query).all()
    if filters.process_id is not None and not refs:
        raise DefinitionNotFound(filters.process_id)
    groups: list[_Group] = []
    for process_id, version in refs:
        definition = engine.registry.get(process_id, version, conn).definition
        for step in definition.steps.values():
            if step.final or (filters.agency is not None and step.agency != filters.agency):
                continue
            groups.append(_Group(len(groups), definition, step))
    return groups


def _period(column: Any, filters: ReportFilters) -> list[Any]:
    where = []
    if filters.period_from is not None:
        where.append(column >= filters.period_from)
    if filters.period_to is not None:
        where.append(column < filters.period_to)
    return where


def _visit_filters(filters: ReportFilters) -> list[Any]:
    v = st.visits_t.c
    where = _period(v.entered_at, filters)
    if filters.process_id is not None:
        where.append(v.process_id == filters.process_id)
    if filters.agency is not None:
        where.append(v.agency == filters.agency)
    return where


def _step_join(dialect: str) -> Any:
    v, g = st.visits_t.c, _groups_t.c
    return st.visits_t.join(
        _groups_t,
        sa.and_(
            g.process_id == _not_indexed(v.process_id, dialect),
            g.process_version == v.process_version,
            g.step == v.step,
        ),
    )


@dataclass
class _Handoff:
    visits: int = 0
    completed: int = 0
    office_days: Counter[int] = field(default_factory=Counter)
    milliseconds: list[int] = field(default_factory=list)


def _gather_cells(
    conn: sa.Connection, groups: list[_Group], filters: ReportFilters, dialect: str
) -> dict[tuple[str, str | None], _Handoff]:
    """The one pass over the visits (see the module docstring); returns the handoffs by (from, to)."""
    v, g = st.visits_t.c, _groups_t.c
    key = sa.cast(g.gid, sa.BigInteger) * _OD_SPAN + sa.func.coalesce(v.office_days, _NO_VALUE)
    key = key * 4 + sa.case((v.left_at.is_(None), 2), else_=0) + sa.func.coalesce(sa.cast(v.overran, sa.Integer), 0)
    key = key.label("k")
    dwell = sa.case((v.office_days.is_not(None), _milliseconds_sql(dialect)), else_=None)
    query = (
        sa.select(
            key,
            v.handoff_from,
            v.reason_code,
            sa.func.count(),
            sa.func.sum(v.excess_office_days),
            _collect_sql(dwell, dialect),
        )
        .select_from(_step_join(dialect))
        .where(*_period(v.entered_at, filters))
        .group_by(key, v.handoff_from, v.reason_code)
    )
    handoffs: dict[tuple[str, str | None], _Handoff] = defaultdict(_Handoff)
    for packed, origin, code, count, excess, collected in conn.execute(query):
        flags = packed & 3
        rest = packed >> 2
        office_days = rest % _OD_SPAN
        group = groups[rest // _OD_SPAN]
        dwell_ms = _values(collected)
        group.visits += count
        if flags & 2:
            group.open += count
        if code is not None:
            group.reasons[code] += count
        handoff = handoffs[(origin, group.step.agency)] if origin is not None else None
        if handoff is not None:
            handoff.visits += count
        if office_days == _NO_VALUE:  # open, or left without a dwell time (the last visit of an imported case)
            continue
        group.completed += count
        group.excess += excess or 0
        if flags & 1:
            group.overran += count
        group.office_days[office_days] += count
        group.milliseconds.extend(dwell_ms)
        if handoff is not None:
            handoff.completed += count
            handoff.office_days[office_days] += count
            handoff.milliseconds.extend(dwell_ms)
    return handoffs


def _gather_stalled(
    engine: Engine, conn: sa.Connection, groups: list[_Group], filters: ReportFilters, now: datetime
) -> None:
    v = st.visits_t.c
    index = {(g.definition.id, g.definition.version, g.step.id): g for g in groups}
    where = [v.left_at.is_(None), v.due_at < now, *_visit_filters(filters)]
    running = (
        sa.select(v.process_id, v.process_version, v.step, sa.func.count())
        .where(*where, v.paused_since.is_(None))
        .group_by(v.process_id, v.process_version, v.step)
    )
    for process_id, version, step, count in conn.execute(running):
        group = index.get((process_id, version, step))
        if group is not None:
            group.stalled_now += count
    stopped = sa.select(v.process_id, v.process_version, v.step, v.due_at, v.warn_at, v.paused_since).where(
        *where, v.paused_since.is_not(None)
    )
    for process_id, version, step, due_at, warn_at, since in conn.execute(stopped):
        group = index.get((process_id, version, step))
        if group is not None and judge(group.definition.calendar, now, due_at, warn_at, since).status == STALLED:
            group.stalled_now += 1


def _gather_trend(conn: sa.Connection, filters: ReportFilters, dialect: str) -> list[tuple[str, int, int, int]]:
    v = st.visits_t.c
    hour = _hour_sql(v.left_at, dialect).label("hour")
    query = (
        sa.select(
            hour,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(sa.cast(v.overran, sa.Integer)), 0),
            sa.func.coalesce(sa.func.sum(v.excess_office_days), 0),
        )
        .where(v.office_days.is_not(None), *_visit_filters(filters))
        .group_by(hour)
    )
    months: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for at, count, overran, excess in conn.execute(query):
        month = months[_berlin_month(at)]
        month[0] += count
        month[1] += int(overran)
        month[2] += int(excess)
    return [(m, *months[m]) for m in sorted(months)]  # type: ignore[misc]


def _gather_findings(
    conn: sa.Connection, filters: ReportFilters, steps: set[tuple[str, int, str]]
) -> list[tuple[str, int, str, str | None, str, int]]:
    f, v = st.findings_t.c, st.visits_t.c
    query = (
        sa.select(f.process_id, f.process_version, f.step, f.agency, f.code, sa.func.count())
        .select_from(st.findings_t.join(st.visits_t, v.id == f.visit_id))
        .where(*_period(v.entered_at, filters))
        .group_by(f.process_id, f.process_version, f.step, f.agency, f.code)
        .order_by(f.process_id, f.process_version, f.step, f.code)
    )
    if filters.process_id is not None:
        query = query.where(f.process_id == filters.process_id)
    if filters.agency is not None:
        query = query.where(f.agency == filters.agency)
    # Only columns of the finding are read: its text (free text of a caseworker) never leaves the database.
    return [(p, v, s, a, c, int(n)) for p, v, s, a, c, n in conn.execute(query) if (p, v, s) in steps]


# --------------------------------------------------------------------------- assembling


class _Cells:
    """The suppression rule: counts of 1 .. min_cell-1 are hidden; 0 is shown (it reveals no one)."""

    def __init__(self, min_cell: int) -> None:
        self.min_cell = min_cell

    def small(self, n: int) -> bool:
        return 0 < n < self.min_cell


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _step_stats(group: _Group, cells: _Cells, taxonomy: Taxonomy) -> StepStats:
    step, definition = group.step, group.definition
    base: dict[str, Any] = {
        "process_id": definition.id,
        "process_version": definition.version,
        "step": step.id,
        "title": step.title,
        "title_en": step.title_en,
        "agency": step.agency,
        "agency_name": definition.agencies.get(step.agency) if step.agency else None,
        "expected": step.expected.german() if step.expected else None,
        "expected_en": step.expected.english() if step.expected else None,
    }
    if cells.small(group.visits):
        nothing: dict[str, Any] = dict.fromkeys(
            (
                "visits",
                "completed",
                "open",
                "median_office_days",
                "p90_office_days",
                "median_seconds",
                "p90_seconds",
                "overran",
                "overrun_share",
                "stalled_now",
                "excess_office_days",
            ),
        )
        return StepStats(**base, **nothing, suppressed=True)
    hidden: list[str] = []
    figures: dict[str, Any] = {
        "visits": group.visits,
        "completed": group.completed,
        "open": group.open,
        **_dwell_figures(group.office_days, group.milliseconds),
        "overran": group.overran,
        "overrun_share": _share(group.overran, group.completed),
        "stalled_now": group.stalled_now,
        "excess_office_days": group.excess,
    }
    if cells.small(group.completed):
        hidden += ["completed", "median_office_days", "p90_office_days", "median_seconds", "p90_seconds"]
    if cells.small(group.open):
        hidden.append("open")
    if cells.small(group.overran) or "completed" in hidden:
        hidden += ["overran", "overrun_share", "excess_office_days"]
    if cells.small(group.stalled_now):
        hidden.append("stalled_now")
    for name in hidden:
        figures[name] = None
    reasons = tuple(
        ReasonCount(
            code,
            taxonomy.label(code),
            taxonomy.label(code, english=True),
            None if cells.small(n) else n,
            cells.small(n),
        )
        for code, n in sorted(group.reasons.items(), key=lambda item: (-item[1], item[0]))[:TOP_REASONS]
    )
    return StepStats(**base, **figures, top_reasons=reasons, suppressed_fields=tuple(dict.fromkeys(hidden)))


def _dwell_figures(office_days: Counter[int], milliseconds: list[int]) -> dict[str, Any]:
    """Median and p90 of the dwell in office days (from the histogram) and in seconds (exact to the ms)."""
    counts = sorted(office_days.items())
    ordered = sorted(milliseconds)
    return {
        "median_office_days": percentile_of_counts(counts, 0.5),
        "p90_office_days": percentile_of_counts(counts, 0.9),
        "median_seconds": round(percentile(ordered, 0.5) / 1000, 3) if ordered else None,
        "p90_seconds": round(percentile(ordered, 0.9) / 1000, 3) if ordered else None,
    }


def _handoff_stats(key: tuple[str, str | None], item: _Handoff, cells: _Cells) -> HandoffStats:
    origin, receiver = key
    if cells.small(item.visits):
        return HandoffStats(origin, receiver, None, None, None, None, None, None, suppressed=True)
    if cells.small(item.completed):
        hidden = ("completed", "median_office_days", "p90_office_days", "median_seconds", "p90_seconds")
        return HandoffStats(origin, receiver, item.visits, None, None, None, None, None, suppressed_fields=hidden)
    return HandoffStats(
        origin, receiver, item.visits, item.completed, **_dwell_figures(item.office_days, item.milliseconds)
    )


def _month_stats(month: str, completed: int, overran: int, excess: int, cells: _Cells) -> MonthStats:
    if cells.small(completed):
        return MonthStats(month, None, None, None, None, suppressed=True)
    if cells.small(overran):
        return MonthStats(
            month, completed, None, None, None, suppressed_fields=("overran", "overrun_share", "excess_office_days")
        )
    return MonthStats(month, completed, overran, _share(overran, completed), excess)


def _candidates(
    steps: Sequence[StepStats], groups: Mapping[tuple[str, int, str], _Group], rules: CandidateRules
) -> tuple[Candidate, ...]:
    overrun, p90_rule, stalled_rule = rules.stated()
    found = []
    for s in steps:
        if s.suppressed:
            continue
        matched: list[Rule] = []
        if (
            s.overrun_share is not None
            and s.completed is not None
            and s.completed >= rules.min_completed
            and s.overrun_share >= rules.min_overrun_share
        ):
            matched.append(overrun)
        expected = expected_office_days(groups[(s.process_id, s.process_version, s.step)].step.expected)
        if s.p90_office_days is not None and expected and s.p90_office_days > rules.p90_factor * expected:
            matched.append(p90_rule)
        if s.stalled_now is not None and s.stalled_now >= rules.min_stalled_now:
            matched.append(stalled_rule)
        if matched:
            found.append((s, tuple(matched)))
    found.sort(
        key=lambda item: (
            -(item[0].excess_office_days or 0),
            -(item[0].stalled_now or 0),
            item[0].process_id,
            item[0].process_version,
            item[0].step,
        )
    )
    return tuple(
        Candidate(
            rank,
            s.process_id,
            s.process_version,
            s.step,
            s.title,
            s.title_en,
            s.agency,
            s.excess_office_days,
            s.overrun_share,
            s.p90_office_days,
            s.stalled_now,
            matched,
        )
        for rank, (s, matched) in enumerate(found, start=1)
    )


_NOTES = (
    Rule(
        "no-personal-data",
        "Der Bericht enthält keine personenbezogenen Daten: keine Fallnummern, Namen, Falldaten, "
        "Fallbearbeitenden oder Freitexte.",
        "The report holds no personal data: no case numbers, names, case data, caseworkers or free text.",
    ),
    Rule(
        "suppression",
        "Gruppen mit weniger als {k} Besuchen und Zählungen von 1 bis {k1} sind unterdrückt (—), "
        "ebenso daraus abgeleitete Werte.",
        "Groups with fewer than {k} visits and counts of 1 to {k1} are suppressed (—), "
        "as are figures derived from them.",
    ),
    Rule(
        "dwell",
        "Verweildauer: vom Eintritt in den Schritt bis zum Verlassen (abgeschlossene Besuche); Median und p90 "
        "linear interpoliert; Arbeitstage nach dem Kalender des Prozesses.",
        "Dwell: from entering a step to leaving it (completed visits); median and p90 by linear interpolation; "
        "office days in the process's calendar.",
    ),
)


def stall_report(
    engine: Engine,
    *,
    now: datetime,
    process_id: str | None = None,
    period_from: date | datetime | None = None,
    period_to: date | datetime | None = None,
    agency: str | None = None,
    min_cell: int = DEFAULT_MIN_CELL,
    rules: CandidateRules | None = None,
) -> StallReport:
    """The stall report over the visits entered within the period (all visits by default).

    Args:
        engine: The engine whose store is read.
        now: The report's instant ("stalled now" is judged at it); timezone-aware.
        process_id: Only this process (all its versions).
        period_from/period_to: Visits entered from ``period_from`` (inclusive) until
            ``period_to`` (exclusive); a ``date`` means that day in Europe/Berlin, and a
            ``period_to`` date is included.
        agency: Only steps of this agency (code).
        min_cell: Cells with fewer visits are suppressed (at least 1).
        rules: Thresholds of the candidate rules.

    Raises:
        DefinitionNotFound: If ``process_id`` is not deployed.
        ValueError: If ``now`` or a period bound is naive, or ``min_cell`` < 1.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if min_cell < 1:
        raise ValueError(f"min_cell must be at least 1, got {min_cell}")
    rules = rules or CandidateRules()
    filters = ReportFilters(process_id, _instant(period_from, end=False), _instant(period_to, end=True), agency)
    dialect = engine.store.dialect
    cells = _Cells(min_cell)
    with engine.store.read() as conn:
        groups = _catalog(engine, conn, filters)
        steps_selected = {(g.definition.id, g.definition.version, g.step.id) for g in groups}
        handoffs: dict[tuple[str, str | None], _Handoff] = {}
        trend: list[tuple[str, int, int, int]] = []
        findings: list[tuple[str, int, str, str | None, str, int]] = []
        if groups:
            _groups_t.create(conn)
            try:
                conn.execute(
                    sa.insert(_groups_t),
                    [
                        {
                            "process_id": g.definition.id,
                            "process_version": g.definition.version,
                            "step": g.step.id,
                            "gid": g.gid,
                        }
                        for g in groups
                    ],
                )
                handoffs = _gather_cells(conn, groups, filters, dialect)
            finally:
                _groups_t.drop(conn)
            _gather_stalled(engine, conn, groups, filters, now)
            trend = _gather_trend(conn, filters, dialect)
            findings = _gather_findings(conn, filters, steps_selected)
    taxonomy = engine.taxonomy
    index = {(g.definition.id, g.definition.version, g.step.id): g for g in groups}
    steps = [_step_stats(group, cells, taxonomy) for group in groups]
    k = min_cell
    notes = tuple(Rule(n.code, n.text.format(k=k, k1=k - 1), n.text_en.format(k=k, k1=k - 1)) for n in _NOTES)
    return StallReport(
        generated_at=now,
        filters=filters,
        min_cell=min_cell,
        steps=tuple(steps),
        handoffs=tuple(
            _handoff_stats(key, handoffs[key], cells)
            for key in sorted(handoffs, key=lambda key: (key[0], key[1] or ""))
        ),
        trend=tuple(_month_stats(m, c, o, e, cells) for m, c, o, e in trend),
        findings=tuple(
            FindingCount(
                p,
                ver,
                s,
                a,
                code,
                taxonomy.label(code),
                taxonomy.label(code, english=True),
                None if cells.small(n) else n,
                cells.small(n),
            )
            for p, ver, s, a, code, n in findings
        ),
        candidates=_candidates(steps, index, rules),
        rules=rules.stated(),
        notes=notes,
    )


# --------------------------------------------------------------------------- dwell samples (for comparisons)


@dataclass(frozen=True, slots=True)
class DwellSample:
    """The dwell of one step's visits in office days, as ascending ``(office days, count)`` pairs.

    Attributes:
        visits: All visits (open ones included).
        office_days: The completed visits' dwell as a histogram.
        overran: Completed visits that overran their deadline.
    """

    visits: int
    office_days: tuple[tuple[int, int], ...]
    overran: int

    @property
    def completed(self) -> int:
        return sum(count for _, count in self.office_days)


def dwell_samples(
    engine: Engine,
    process_id: str,
    *,
    version: int | None = None,
    period_from: date | datetime | None = None,
    period_to: date | datetime | None = None,
) -> dict[str, DwellSample]:
    """Per step of a process (one version or all): visits and the office-day dwell histogram.

    The period selects visits entered within it, as in :func:`stall_report`.
    """
    v = st.visits_t.c
    window = ReportFilters(None, _instant(period_from, end=False), _instant(period_to, end=True))
    query = (
        sa.select(
            v.step,
            v.office_days,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(sa.cast(v.overran, sa.Integer)), 0),
        )
        .where(
            v.process_id == process_id,
            *_period(v.entered_at, window),
        )
        .group_by(v.step, v.office_days)
    )
    if version is not None:
        query = query.where(v.process_version == version)
    visits: Counter[str] = Counter()
    overran: Counter[str] = Counter()
    histograms: dict[str, list[tuple[int, int]]] = defaultdict(list)
    with engine.store.read() as conn:
        for step, office_days, count, late in conn.execute(query):
            visits[step] += count
            if office_days is not None:
                histograms[step].append((office_days, count))
                overran[step] += late
    return {step: DwellSample(visits[step], tuple(sorted(histograms.get(step, ()))), overran[step]) for step in visits}


__all__ = [
    "DEFAULT_MIN_CELL",
    "Candidate",
    "CandidateRules",
    "DwellSample",
    "FindingCount",
    "HandoffStats",
    "MonthStats",
    "ReasonCount",
    "ReportFilters",
    "Rule",
    "StallReport",
    "StepStats",
    "dwell_samples",
    "expected_office_days",
    "percentile_of_counts",
    "stall_report",
]
