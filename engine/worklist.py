"""Worklists: cases by filters, in a stable order, a page at a time (keyset pagination).

A page is asked for with the sort key and the position after which it starts
(:class:`Position`: the last row's sort value and case id), so paging stays correct
while cases are being opened and changed, and costs the same on page 1 and page 1,000.
The API turns a position into an opaque cursor. ``team`` restricts the list to one
team's cases (a caseworker's view).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from engine.case import OPEN, Case
from engine.store import Store, UTCDateTime, cases_t, load_cases, visits_t

#: Sort keys; a leading ``-`` means descending. Cases without a deadline sort after all others.
SORT_KEYS = ("id", "opened_at", "updated_at", "due_at")
_NO_DEADLINE = datetime(9999, 12, 31, tzinfo=UTC)


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
    team_only: bool = False,
    team: str | None = None,
    sort: str = "id",
    after: Position | None = None,
    limit: int = 50,
) -> Page:
    """A page of cases matching every given filter.

    Args:
        now: For ``overdue`` (open, with a deadline before ``now``).
        agency: The agency of the case's current step.
        team_only: Only the cases of ``team`` (None: cases without a team).
        team: See ``team_only``.
        sort: One of :data:`SORT_KEYS`, optionally prefixed with ``-`` for descending.
        after: Where the previous page ended (must use the same ``sort``).
        limit: Page size.

    Raises:
        ValueError: Unknown sort key, or a position from another sort order.
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
    if overdue is not None:
        late = sa.and_(c.status == OPEN, c.due_at.is_not(None), c.due_at < now)
        where.append(late if overdue else sa.not_(late))
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
        ids = list(conn.execute(sa.select(c.id).where(*where).order_by(*order).limit(limit + 1)).scalars())
        more = len(ids) > limit
        ids = ids[:limit]
        by_id = {case.id: case for case in load_cases(conn, [c.id.in_(ids)], limit=max(len(ids), 1))} if ids else {}
    cases = [by_id[i] for i in ids]
    following = Position(sort, _value_of(cases[-1], key), cases[-1].id) if more and cases else None
    return Page(cases, following)


__all__ = ["SORT_KEYS", "Page", "Position", "list_page"]
