"""Worklists: cases by filters, in a stable order, a page at a time (keyset pagination).

A page is asked for with the sort key and the position after which it starts
(:class:`Position`: the last row's sort value and case id), so paging stays correct
while cases are being opened and changed, and costs the same on page 1 and page 1,000.
The API turns a position into an opaque cursor. ``team`` restricts the list to one
team's cases (a caseworker's view).

``due`` selects cases by how their current visit stands against its deadline, judged
exactly as the stall list judges it (:func:`engine.stalls.judge`): ``overdue`` (past the
deadline), ``at_risk`` (past the warning threshold, not yet due) or ``on_time`` (anything
else, ended cases included). SQL decides every case whose deadline clock runs; only a
visit whose clock stands still now (paused, or waiting on the client where that stops the
clock) can move to a later state once its deadlines are extended to now, so those few rows
are read as candidates and judged in Python, and a page is filled from the rows that pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from engine.calendar import Calendar
from engine.case import OPEN, Case
from engine.registry import Registry
from engine.stalls import AT_RISK, STALLED, judge
from engine.store import Store, UTCDateTime, cases_t, load_cases, visits_t

#: Sort keys; a leading ``-`` means descending. Cases without a deadline sort after all others.
SORT_KEYS = ("id", "opened_at", "updated_at", "due_at")
#: Values of the ``due`` filter.
OVERDUE = "overdue"
ON_TIME = "on_time"
DUE_STATES = (OVERDUE, AT_RISK, ON_TIME)
_NO_DEADLINE = datetime(9999, 12, 31, tzinfo=UTC)
# How a visit stands, in the order a stopped clock can move it: overdue -> at risk -> on time.
_RANK = {STALLED: 0, AT_RISK: 1, None: 2}
_BY_STATE = {OVERDUE: 0, AT_RISK: 1, ON_TIME: 2}


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page ended: the last case's sort value (ISO text for times) and its id."""

    sort: str
    value: str | int
    case_id: int


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a worklist; ``next`` is None on the last page."""

    cases: list[Case]
    next: Position | None


def _sort_column(key: str) -> Any:
    c = cases_t.c
    if key == "due_at":
        return sa.func.coalesce(c.due_at, sa.literal(_NO_DEADLINE, UTCDateTime))
    return c[key]


def _value_of(case: Case, key: str) -> str | int:
    if key == "id":
        return case.id
    value = getattr(case, key)
    return (value if value is not None else _NO_DEADLINE).isoformat()


def list_page(
    store: Store,
    *,
    now: datetime,
    process_id: str | None = None,
    step: str | None = None,
    status: str | None = None,
    assignee: str | None = None,
    waiting_on: str | None = None,
    agency: str | None = None,
    overdue: bool | None = None,
    due: str | None = None,
    registry: Registry | None = None,
    team_only: bool = False,
    team: str | None = None,
    sort: str = "id",
    after: Position | None = None,
    limit: int = 50,
) -> Page:
    """A page of cases matching every given filter.

    Args:
        now: The instant ``overdue`` and ``due`` judge at.
        agency: The agency of the case's current step.
        overdue: True: as ``due="overdue"``; False: every case that is not overdue.
        due: ``overdue``, ``at_risk`` or ``on_time`` (see the module docstring).
        registry: The deployed definitions, whose calendars judge visits with a stopped
            clock; required with ``overdue`` or ``due``.
        team_only: Only the cases of ``team`` (None: cases without a team).
        team: See ``team_only``.
        sort: One of :data:`SORT_KEYS`, optionally prefixed with ``-`` for descending.
        after: Where the previous page ended (must use the same ``sort``).
        limit: Page size.

    Raises:
        ValueError: Unknown sort key or ``due`` value, a position from another sort order, or
            ``overdue``/``due`` without a ``registry``.
    """
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    if key not in SORT_KEYS:
        raise ValueError(f"unknown sort key '{sort}'")
    c = cases_t.c
    where: list[Any] = [
        column == value
        for column, value in (
            (c.process_id, process_id),
            (c.step, step),
            (c.status, status),
            (c.assignee, assignee),
            (c.waiting_on, waiting_on),
        )
        if value is not None
    ]
    if team_only:
        where.append(c.team == team if team is not None else c.team.is_(None))
    if agency is not None:
        where.append(c.visit_id.in_(sa.select(visits_t.c.id).where(visits_t.c.agency == agency)))
    wanted = _wanted_ranks(overdue, due)
    if wanted is not None:
        if registry is None:
            raise ValueError("filtering by deadline needs the registry (for the calendars)")
        if not wanted:
            return Page([], None)
        where.append(_due_where(wanted, now))
    column = _sort_column(key)
    if after is not None:
        if after.sort != sort:
            raise ValueError("the cursor belongs to another sort order")
        value: Any = after.value if key == "id" else datetime.fromisoformat(str(after.value))
        bound = sa.literal(value, sa.Integer if key == "id" else UTCDateTime)
        if descending:
            where.append(sa.or_(column < bound, sa.and_(column == bound, c.id < after.case_id)))
        else:
            where.append(sa.or_(column > bound, sa.and_(column == bound, c.id > after.case_id)))
    order = [column.desc(), c.id.desc()] if descending else [column.asc(), c.id.asc()]
    with store.read() as conn:
        if wanted is None:
            ids = list(conn.execute(sa.select(c.id).where(*where).order_by(*order).limit(limit + 1)).scalars())
        else:
            assert registry is not None
            ids = _judged_ids(conn, registry, where, order, wanted, now, limit + 1)
        more = len(ids) > limit
        ids = ids[:limit]
        by_id = {case.id: case for case in load_cases(conn, [c.id.in_(ids)], limit=max(len(ids), 1))} if ids else {}
    cases = [by_id[i] for i in ids]
    following = Position(sort, _value_of(cases[-1], key), cases[-1].id) if more and cases else None
    return Page(cases, following)


def _wanted_ranks(overdue: bool | None, due: str | None) -> set[int] | None:
    """The deadline states (ranks of :data:`_RANK`) the filters let through; None: no such filter."""
    if due is not None and due not in _BY_STATE:
        raise ValueError(f"unknown due state '{due}'; use one of {', '.join(DUE_STATES)}")
    wanted: set[int] | None = None
    if overdue is not None:
        wanted = {0} if overdue else {1, 2}
    if due is not None:
        wanted = {_BY_STATE[due]} & (wanted if wanted is not None else {0, 1, 2})
    return wanted


def _visit_open() -> Any:
    """An open case in an open visit with a deadline: the only visits a deadline state applies to."""
    v = visits_t.c
    # Never NULL: without a joined visit "due_at IS NOT NULL" is false, so the AND is false (and its NOT true).
    return sa.and_(v.due_at.is_not(None), cases_t.c.status == OPEN, v.left_at.is_(None))


def _stored_states(now: datetime) -> tuple[Any, Any, Any]:
    """How each case stands by the stored deadlines: overdue, at risk, on time (exactly one holds)."""
    v = visits_t.c
    late = sa.and_(_visit_open(), v.due_at < now)
    warned = sa.and_(_visit_open(), v.due_at >= now, v.warn_at.is_not(None), v.warn_at < now)
    return late, warned, sa.not_(sa.or_(late, warned))


def _due_where(wanted: set[int], now: datetime) -> Any:
    """Cases that are in a wanted state, or may get there once a stopped clock extends their deadlines."""
    stopped = visits_t.c.paused_since.is_not(None)
    parts = []
    for rank, stored in enumerate(_stored_states(now)):
        if rank in wanted:
            parts.append(stored)
        elif any(w > rank for w in wanted):
            parts.append(sa.and_(stored, stopped))
    return sa.or_(*parts) if parts else sa.false()


def _judged_ids(
    conn: sa.Connection,
    registry: Registry,
    where: list[Any],
    order: list[Any],
    wanted: set[int],
    now: datetime,
    count: int,
) -> list[int]:
    """The first ``count`` case ids in ``order`` that pass ``where`` and, judged now, are in a wanted state."""
    c, v = cases_t.c, visits_t.c
    query = (
        sa.select(c.id, c.process_id, c.process_version, v.due_at, v.warn_at, v.paused_since, _visit_open())
        .select_from(cases_t.outerjoin(visits_t, v.id == c.visit_id))
        .where(*where)
        .order_by(*order)
    )
    calendars: dict[tuple[str, int], Calendar] = {}
    ids: list[int] = []
    result = conn.execute(query, execution_options={"stream_results": True, "max_row_buffer": 500})
    try:
        while len(ids) < count:
            rows = result.fetchmany(max(count, 50))
            if not rows:
                break
            for case_id, process_id, version, due_at, warn_at, paused_since, visit_open in rows:
                if paused_since is not None and visit_open:
                    # The clock stands still: judge with the deadlines extended to now, as the stall list does.
                    key = (process_id, version)
                    calendar = calendars.get(key)
                    if calendar is None:
                        calendar = calendars[key] = registry.get(process_id, version, conn).definition.calendar
                    if _RANK[judge(calendar, now, due_at, warn_at, paused_since).status] not in wanted:
                        continue
                ids.append(case_id)
                if len(ids) == count:
                    break
    finally:
        result.close()
    return ids


__all__ = ["DUE_STATES", "ON_TIME", "OVERDUE", "SORT_KEYS", "Page", "Position", "list_page"]
