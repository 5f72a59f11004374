"""Stall detection: which open visits are past their deadline (stalled) or past their warning (at risk).

Architecture decision 8: stall detection is a query over the deadlines stored on the
visits, not a daemon. When a case enters a step the engine stores ``due_at`` (and
``warn_at``) on the visit; a stalled visit is then an open visit with ``due_at < now``,
found through the partial index ``ix_visit_open_due`` (``WHERE left_at IS NULL``).
Calendar arithmetic is done only for the rows returned.

The clock rule (``Engine._clock_stopped``): while a case is paused, or waits on the
client in a step whose definition says so, its deadline clock stands still; the visit
then carries ``paused_since``, and on resume its deadline moves later by the office
days the clock stood still (:meth:`Calendar.extend_deadline`). The stored ``due_at`` of
such a visit is therefore provisional: this module extends it to ``now`` the same way
before judging, so a visit whose clock stopped before its deadline is not reported as
stalled while it waits, and one that was already overdue when it stopped still is.

This is the caseworker's view (it names cases and assignees); the anonymous view for
working groups is :mod:`engine.reports`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from engine import store as st
from engine.calendar import Calendar

if TYPE_CHECKING:
    from engine.cases import Engine

STALLED = "stalled"
AT_RISK = "at_risk"
DEFAULT_LIMIT = 200

_ONE_SECOND = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Stall:
    """An open visit past its deadline (``status == "stalled"``) or past its warning (``"at_risk"``).

    Attributes:
        case_id/visit_id: The case and its current visit.
        process_id/process_version/step: Where the case stands.
        step_title/step_title_en: The step's titles from the case's definition version.
        agency: The agency responsible for the step; ``waiting_on`` whom the case waits on now.
        assignee: The case's caseworker (pseudonym), if assigned.
        entered_at: When the case entered the step.
        due_at: The deadline, extended for any time the clock has stood still up to now.
        warn_at: The warning threshold, extended the same way (None if the step has none).
        overdue_office_days: Office days past the deadline (0 for visits at risk), counted
            like the engine counts excess when a visit closes.
        paused: Whether the case is paused; ``clock_stopped`` whether the visit's deadline
            clock stands still now (paused, or waiting on the client where that stops it).
        reason_code: The last reason code given for a pause or a wait in this visit.
        status: ``stalled`` or ``at_risk``.
    """

    case_id: int
    visit_id: int
    process_id: str
    process_version: int
    step: str
    step_title: str
    step_title_en: str | None
    agency: str | None
    waiting_on: str | None
    assignee: str | None
    entered_at: datetime
    due_at: datetime
    warn_at: datetime | None
    overdue_office_days: int
    paused: bool
    clock_stopped: bool
    reason_code: str | None
    status: str

    @property
    def process_ref(self) -> str:
        """``id@version`` of the case's process."""
        return f"{self.process_id}@{self.process_version}"

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (instants as ISO 8601 text in UTC)."""
        out = asdict(self)
        out["process_ref"] = self.process_ref
        for key in ("entered_at", "due_at", "warn_at"):
            if out[key] is not None:
                out[key] = out[key].isoformat()
        return out


# --------------------------------------------------------------------------- classification


@dataclass(frozen=True, slots=True)
class Judgement:
    """How an open visit stands at an instant: its effective deadlines and its status (None: on time)."""

    status: str | None
    due_at: datetime
    warn_at: datetime | None
    overdue_office_days: int


def judge(
    calendar: Calendar,
    now: datetime,
    due_at: datetime,
    warn_at: datetime | None,
    paused_since: datetime | None,
) -> Judgement:
    """Judge one open visit with a deadline at ``now``, following the engine's clock rule.

    A stopped clock (``paused_since`` set) moves both thresholds later by the office days
    it has stood still so far, exactly as resuming at ``now`` would.
    """
    if paused_since is not None:
        due_at = calendar.extend_deadline(due_at, paused_since, now)
        if warn_at is not None:
            warn_at = calendar.extend_deadline(warn_at, paused_since, now)
    if due_at < now:
        return Judgement(STALLED, due_at, warn_at, calendar.office_days_between(due_at - _ONE_SECOND, now))
    if warn_at is not None and warn_at < now:
        return Judgement(AT_RISK, due_at, warn_at, 0)
    return Judgement(None, due_at, warn_at, 0)


# --------------------------------------------------------------------------- queries

_v = st.visits_t.c
_c = st.cases_t.c
_COLUMNS = (
    _v.id,
    _v.case_id,
    _v.process_id,
    _v.process_version,
    _v.step,
    _v.agency,
    _v.waiting_on,
    _v.entered_at,
    _v.due_at,
    _v.warn_at,
    _v.paused_since,
    _v.reason_code,
    _c.assignee,
    _c.paused,
)


def _filters(
    *, process_id: str | None, step: str | None, agency: str | None, assignee: str | None
) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = []
    if process_id is not None:
        where.append(_v.process_id == process_id)
    if step is not None:
        where.append(_v.step == step)
    if agency is not None:
        where.append(_v.agency == agency)
    if assignee is not None:
        where.append(_c.assignee == assignee)
    return where


def _select(where: Iterable[sa.ColumnElement[bool]]) -> sa.Select[Any]:
    # "left_at IS NULL" verbatim, so that the planner can use the partial index ix_visit_open_due.
    return (
        sa.select(*_COLUMNS)
        .select_from(st.visits_t.join(st.cases_t, _c.id == _v.case_id))
        .where(_v.left_at.is_(None), _v.due_at.is_not(None), *where)
        .order_by(_v.due_at, _v.id)
    )


def overdue(now: datetime, where: Iterable[sa.ColumnElement[bool]] = ()) -> sa.Select[Any]:
    """Open visits whose stored deadline has passed, earliest deadline first (those with a stopped
    clock are still to be judged: their deadline moves by the time it stood still)."""
    return _select([_v.due_at < now, *where])


def warned(now: datetime, where: Iterable[sa.ColumnElement[bool]] = ()) -> sa.Select[Any]:
    """Open visits not yet due whose warning threshold has passed (clock running or stopped)."""
    return _select([_v.due_at >= now, _v.warn_at < now, *where])


# A server-side cursor on PostgreSQL, so that stopping early does not transfer the whole range first.
_STREAM = {"stream_results": True, "max_row_buffer": 500}


def _chunks(result: sa.Result[Any], size: int) -> Iterator[Any]:
    while True:
        rows = result.fetchmany(size)
        if not rows:
            return
        yield from rows


def find_stalls(
    engine: Engine,
    *,
    now: datetime,
    process_id: str | None = None,
    step: str | None = None,
    agency: str | None = None,
    assignee: str | None = None,
    include_at_risk: bool = True,
    limit: int = DEFAULT_LIMIT,
) -> list[Stall]:
    """Open visits that are stalled, then (optionally) those at risk, for caseworkers and team leads.

    Stalled visits come first, most overdue (in office days) first; visits at risk follow,
    nearest deadline first. At most ``limit`` visits are returned in all.

    Args:
        engine: The engine whose store is read.
        now: The instant to judge at (timezone-aware).
        process_id/step/agency/assignee: Optional filters (all must hold).
        include_at_risk: Also list visits past their warning threshold but not yet due.
        limit: The most visits to return.

    Raises:
        ValueError: If ``now`` is naive or ``limit`` is not positive.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if limit <= 0:
        raise ValueError(f"limit must be positive, got {limit}")
    where = _filters(process_id=process_id, step=step, agency=agency, assignee=assignee)
    stalled: list[tuple[Any, Judgement]] = []
    at_risk: list[tuple[Any, Judgement]] = []
    calendars: dict[tuple[str, int], Calendar] = {}

    def calendar_of(row: Any, conn: sa.Connection) -> Calendar:
        key = (row.process_id, row.process_version)
        calendar = calendars.get(key)
        if calendar is None:
            calendar = calendars[key] = engine.registry.get(*key, conn).definition.calendar
        return calendar

    with engine.store.read() as conn:
        # Read in deadline order and stop after `limit` stalled visits: a visit further on is
        # due later, and a stopped clock only moves a deadline later, so none of them is more
        # overdue than those already found.
        result = conn.execute(overdue(now, where), execution_options=_STREAM)
        for row in _chunks(result, 100):
            judgement = judge(calendar_of(row, conn), now, row.due_at, row.warn_at, row.paused_since)
            if judgement.status == STALLED:
                stalled.append((row, judgement))
                if len(stalled) >= limit:
                    break
            elif judgement.status == AT_RISK and include_at_risk:
                at_risk.append((row, judgement))  # clock stopped between warning and deadline
        result.close()
        if include_at_risk and len(stalled) < limit:
            wanted = limit - len(stalled)
            result = conn.execute(warned(now, where), execution_options=_STREAM)
            for row in _chunks(result, max(wanted, 50)):
                judgement = judge(calendar_of(row, conn), now, row.due_at, row.warn_at, row.paused_since)
                if judgement.status == AT_RISK:
                    at_risk.append((row, judgement))
                    if len(at_risk) >= wanted:
                        break
            result.close()
        definitions = {key: engine.registry.get(*key, conn).definition for key in calendars}
    stalled.sort(key=lambda item: (-item[1].overdue_office_days, item[1].due_at, item[0].id))
    at_risk.sort(key=lambda item: (item[1].due_at, item[0].id))
    out = []
    for row, judgement in (stalled + at_risk)[:limit]:
        step_def = definitions[(row.process_id, row.process_version)].steps.get(row.step)
        out.append(
            Stall(
                case_id=row.case_id,
                visit_id=row.id,
                process_id=row.process_id,
                process_version=row.process_version,
                step=row.step,
                step_title=step_def.title if step_def else row.step,
                step_title_en=step_def.title_en if step_def else None,
                agency=row.agency,
                waiting_on=row.waiting_on,
                assignee=row.assignee,
                entered_at=row.entered_at,
                due_at=judgement.due_at,
                warn_at=judgement.warn_at,
                overdue_office_days=judgement.overdue_office_days,
                paused=bool(row.paused),
                clock_stopped=row.paused_since is not None,
                reason_code=row.reason_code,
                status=judgement.status or AT_RISK,
            )
        )
    return out


__all__ = ["AT_RISK", "DEFAULT_LIMIT", "STALLED", "Judgement", "Stall", "find_stalls", "judge"]
