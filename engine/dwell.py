"""Dwell time per step: how long cases stayed in each step of a process, in calendar time.

A visit *has a dwell time* when it was left: by an action that moved the case on, or
by closing or cancelling the case. Its dwell time is ``left_at - entered_at`` in
seconds (UTC instants, so daylight-saving changes count as the hours they are). The
stored sign that a visit was left is ``office_days IS NOT NULL``: the engine sets it
whenever it closes a visit (``Engine._leave``), and never for

* visits that are still open (``left_at IS NULL``),
* visits of final steps (entered and "left" at the same instant; the case ended there),
* the last visit of a case imported from an event log (the case's last event closes
  the case, so no dwell time is counted for it; see :mod:`engine.xes`).

A real zero-second visit (two events at the same instant, common in logs whose
timestamps are dates) does count, with dwell 0.

Per step the report gives the number of such visits, the mean, the median and the
90th percentile. Percentiles interpolate linearly between order statistics (numpy's
default method): the p-quantile of sorted values ``x[0..n-1]`` is taken at position
``(n - 1) * p``.

The dwell seconds are computed in SQL per backend, exactly to the microsecond (no
``julianday`` rounding): on PostgreSQL from the interval, on SQLite from the stored
``YYYY-MM-DD HH:MM:SS.ffffff`` text (whole seconds via ``strftime('%s')`` plus the
fraction). Only one float per visit crosses the driver; sorting and the statistics
are done in Python because SQLite has no percentile aggregate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from engine import store as st
from engine.errors import DefinitionNotFound

if TYPE_CHECKING:
    from engine.cases import Engine


@dataclass(frozen=True, slots=True)
class StepDwell:
    """Dwell-time figures of one step (seconds, calendar time).

    Attributes:
        step: Step id.
        title: German title of the step (from the newest version that has the step).
        visits: Number of visits with a dwell time.
        mean_seconds/median_seconds/p90_seconds: The statistics; None when ``visits`` is 0.
    """

    step: str
    title: str
    visits: int
    mean_seconds: float | None
    median_seconds: float | None
    p90_seconds: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q``-quantile of ascending ``ordered`` by linear interpolation at position ``(n - 1) * q``.

    Raises:
        ValueError: If ``ordered`` is empty or ``q`` is outside [0, 1].
    """
    if not ordered:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must be within [0, 1], got {q}")
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    fraction = position - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def summarise(values: Sequence[float]) -> tuple[int, float | None, float | None, float | None]:
    """``(count, mean, median, p90)`` of dwell times in seconds (None figures for no values)."""
    if not values:
        return 0, None, None, None
    ordered = sorted(values)
    return len(ordered), math.fsum(ordered) / len(ordered), percentile(ordered, 0.5), percentile(ordered, 0.9)


def dwell_seconds_expression(dialect: str) -> sa.ColumnElement[float]:
    """SQL for ``left_at - entered_at`` in seconds (float, exact to the microsecond) on ``dialect``."""
    v = st.visits_t.c
    if dialect == "postgresql":
        return sa.cast(sa.extract("epoch", v.left_at - v.entered_at), sa.Float)
    if dialect == "sqlite":
        # SQLAlchemy stores UTC as 'YYYY-MM-DD HH:MM:SS.ffffff'; characters from 20 on are the fraction.
        def whole(column: Any) -> Any:
            return sa.cast(sa.func.strftime("%s", column), sa.Integer)

        def fraction(column: Any) -> Any:
            return sa.cast(sa.func.substr(column, 20), sa.Float)

        return sa.cast(
            (whole(v.left_at) - whole(v.entered_at)) + (fraction(v.left_at) - fraction(v.entered_at)), sa.Float
        )
    raise NotImplementedError(f"no dwell-time SQL for the {dialect} backend")


def dwell_report(engine: Engine, process_id: str, *, version: int | None = None) -> list[StepDwell]:
    """Per step of a process: visits with a dwell time, mean, median and p90 dwell in seconds.

    Steps come in the order of the newest deployed version (final steps left out, as they
    have no dwell), followed by steps that only older versions have. Steps without any
    visit with a dwell time are listed with ``visits == 0`` and None figures.

    Args:
        engine: The engine whose store is read.
        process_id: The process.
        version: Only visits of cases on this version; all versions by default.

    Raises:
        DefinitionNotFound: If the process (or that version) is not deployed.
    """
    versions = _versions(engine, process_id)
    if not versions or (version is not None and version not in versions):
        raise DefinitionNotFound(process_id, version)
    titles: dict[str, str] = {}
    order: list[str] = []
    for v in sorted(versions if version is None else [version], reverse=True):
        for step in engine.registry.get(process_id, v).definition.steps.values():
            if not step.final and step.id not in titles:
                titles[step.id] = step.title
                order.append(step.id)
    v = st.visits_t.c
    seconds = dwell_seconds_expression(engine.store.dialect)
    query = sa.select(v.step, seconds).where(
        v.process_id == process_id, v.left_at.is_not(None), v.office_days.is_not(None)
    )
    if version is not None:
        query = query.where(v.process_version == version)
    by_step: dict[str, list[float]] = {}
    with engine.store.read() as conn:
        for step, value in conn.execute(query):
            values = by_step.get(step)
            if values is None:
                values = by_step[step] = []
            values.append(value)
    for step in by_step:
        if step not in titles:  # visits of a step no deployed version declares (should not happen)
            titles[step] = step
            order.append(step)
    return [StepDwell(step, titles[step], *summarise(by_step.get(step, ()))) for step in order]


def dwell_report_json(engine: Engine, process_id: str, *, version: int | None = None) -> dict[str, Any]:
    """The report as ``{"process": id, "steps": [{"step", "title", "visits", "mean_seconds", ...}]}``."""
    steps = dwell_report(engine, process_id, version=version)
    out: dict[str, Any] = {"process": process_id}
    if version is not None:
        out["version"] = version
    out["steps"] = [s.as_dict() for s in steps]
    return out


def _versions(engine: Engine, process_id: str) -> list[int]:
    d = st.definitions_t.c
    with engine.store.read() as conn:
        return [int(r[0]) for r in conn.execute(sa.select(d.version).where(d.process_id == process_id))]


__all__ = ["StepDwell", "dwell_report", "dwell_report_json", "dwell_seconds_expression", "percentile", "summarise"]
