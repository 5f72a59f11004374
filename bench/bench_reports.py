"""Stall report and stall list against one plain aggregate query, at 100,000 cases.

The data: every definition in ``processes/`` is deployed, then ``--cases`` cases
(100,000 by default) are written straight into the tables in bulk, spread over
``--months`` months: each case walks its process from the start step, choosing
among the forward actions of each step (the first one likeliest), with dwell
times drawn log-normally around the step's expected duration (median 0.6× the
expected time, a fifth or so overrun; steps waiting on an embassy, a course
provider or the foreigners' authority are slower), a pause with a reason code in
about one visit in ten, and deadlines, office days, overrun and excess office days
computed with the definition's own calendar exactly as ``Engine`` computes them.
Cases still in a step at the end of the period stay open there. About ten events
per case are written too (opened, fired, paused, resumed), so the database has the
size the issue asks for (~100,000 cases, ~1,000,000 events, ~600,000 visits).

Writing the rows directly rather than through ``engine.simulation.simulate``
is a matter of time: the simulator drives every change through the engine (the
right thing for realism) at about 70 cases per second on this kind of machine, so
100,000 cases would take half an hour; the report only reads ``kf_visit`` (and
``kf_case`` for the stall list), whose rows are the same either way.

Timed, interleaved round by round, best of ``--rounds`` (wall clock; for SQLite the CPU time
of this process too, which is steadier on a busy machine):

``baseline``  ``SELECT step, count(*), avg(office_days) FROM kf_visit GROUP BY step``
``report``    ``engine.reports.stall_report(engine, now=...)``: everything, medians and p90 included
``stalls``    ``engine.stalls.find_stalls(engine, now=...)`` (default limit)

Targets (issue #3 §9): report ≤ 5× baseline and < 1 s on SQLite; stalls < 50 ms.

Run: ``python bench/bench_reports.py [--cases 100000] [--backend sqlite|postgres|all]
[--database FILE] [--pg-schema NAME]`` (``--database`` keeps and reuses a SQLite file,
``--pg-schema`` a PostgreSQL schema, between runs; PostgreSQL at ``$KIMFLOW_BENCH_POSTGRES_URL``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine import Engine, FixedClock  # noqa: E402
from engine import store as st  # noqa: E402
from engine.definition import ProcessDefinition, StepDef  # noqa: E402
from engine.simulation import PAUSE_REASONS, SLOW_AGENCIES, duration_days  # noqa: E402

PG_URL = os.environ.get("KIMFLOW_BENCH_POSTGRES_URL", "postgresql+psycopg://127.0.0.1:5432/test")
START = datetime(2025, 1, 6, 7, tzinfo=UTC)  # Monday 08:00 in Berlin
TARGET_RATIO = 5.0
TARGET_REPORT_SQLITE = 1.0
TARGET_STALLS = 0.050
BASELINE_SQL = "SELECT step, count(*), avg(office_days) FROM kf_visit GROUP BY step"
_BERLIN = ZoneInfo("Europe/Berlin")
_CHUNK = 20_000
_CASEWORKERS = tuple(f"cm{n:02d}" for n in range(1, 41))


# --------------------------------------------------------------------------- data


@dataclass
class Generated:
    cases: int = 0
    visits: int = 0
    open_visits: int = 0
    events: int = 0
    seconds: float = 0.0


_DEFAULTS: dict[str, dict[str, Any]] = {
    "kf_case": {},
    "kf_visit": {
        "left_at": None,
        "due_at": None,
        "warn_at": None,
        "overran": None,
        "office_days": None,
        "excess_office_days": None,
        "reason_code": None,
        "handoff_from": None,
        "paused_seconds": 0,
    },
    "kf_event": {"action": None, "from_step": None, "to_step": None},
}


class _Writer:
    """Buffers rows per table and flushes them in chunks inside one transaction."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.rows: dict[str, list[dict[str, Any]]] = {"kf_case": [], "kf_visit": [], "kf_event": []}
        self.tables = {"kf_case": st.cases_t, "kf_visit": st.visits_t, "kf_event": st.events_t}

    def add(self, table: str, row: dict[str, Any]) -> None:
        rows = self.rows[table]
        rows.append({**_DEFAULTS[table], **row})  # executemany needs the same keys in every row
        if len(rows) >= _CHUNK:
            self.flush(table)

    def flush(self, table: str | None = None) -> None:
        for name in [table] if table else list(self.rows):
            if self.rows[name]:
                self.conn.execute(sa.insert(self.tables[name]), self.rows[name])
                self.rows[name] = []


class _Events:
    """Appends the events of one case (those before the end of the data) with consecutive ``seq``."""

    def __init__(self, writer: _Writer, case_id: int, actor: str, end: datetime) -> None:
        self.writer, self.case_id, self.actor, self.end = writer, case_id, actor, end
        self.seq = 0

    def __call__(self, kind: str, at: datetime, step: str, to_step: str | None = None, **values: Any) -> None:
        if at >= self.end:
            return
        self.seq += 1
        row = {"case_id": self.case_id, "seq": self.seq, "at": at, "actor": self.actor, "kind": kind}
        row.update({"from_step": step, "to_step": to_step or step, "changes": {}, "detail": {}})
        row.update(values)
        self.writer.add("kf_event", row)


def _office_hours(when: datetime, rng: random.Random) -> datetime:
    """``when`` moved into office hours (Mon–Fri 08:00–16:00 Berlin)."""
    local = when.astimezone(_BERLIN)
    day = local.date()
    if 8 <= local.hour < 16 and day.weekday() < 5:
        return when
    if local.hour >= 16:
        day += timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    minute = rng.randrange(8 * 60)
    return datetime(day.year, day.month, day.day, 8 + minute // 60, minute % 60, tzinfo=_BERLIN).astimezone(UTC)


def _dwell(step: StepDef, rng: random.Random, slow_steps: frozenset[str]) -> timedelta:
    expected = duration_days(step.expected)
    slow = step.waiting_on in SLOW_AGENCIES or step.agency in SLOW_AGENCIES or step.id in slow_steps
    median, sigma = (0.9, 0.8) if slow else (0.6, 0.6)
    return timedelta(days=max(rng.lognormvariate(math.log(median * expected), sigma), 1 / 24))


def generate(
    engine: Engine, *, cases: int, months: int, seed: int, horizon: int = 6, start: datetime = START
) -> Generated:
    """Write ``cases`` synthetic cases of the deployed processes into the engine's tables in bulk.

    Cases open during the first ``months`` months; the data end ``horizon`` months later (the
    report's "now"), so early cases have run their course and late ones are still open.
    """
    began = time.perf_counter()
    rng = random.Random(seed)
    registry = engine.registry
    definitions: list[ProcessDefinition] = [
        registry.get(pid, registry.latest_version(pid)).definition
        for pid in sorted({d.process_id for d in registry.list()})
    ]
    # Two steps per process that stall much more often: the optimisation candidates to find.
    slow_steps = {d.id: frozenset(rng.sample([s.id for s in d.steps.values() if not s.final], 2)) for d in definitions}
    span = timedelta(days=30.4 * months).total_seconds()
    end = start + timedelta(days=30.4 * (months + horizon))
    summary = Generated()
    with engine.store.transaction() as conn:
        first_case = (conn.execute(sa.select(sa.func.max(st.cases_t.c.id))).scalar() or 0) + 1
        writer = _Writer(conn)
        for n in range(cases):
            case_id = first_case + n
            definition = rng.choice(definitions)
            calendar = definition.calendar
            opened = _office_hours(start + timedelta(seconds=rng.uniform(0, span)), rng)
            assignee = rng.choice(_CASEWORKERS)
            event = _Events(writer, case_id, assignee, end)
            step = definition.steps[definition.start]
            event("opened", opened, step.id)
            event("assigned", opened + timedelta(minutes=rng.randrange(5, 240)), step.id)
            entered, handoff_from = opened, None
            status, closed_at, due_case = "open", None, None
            for _ in range(16):
                visit: dict[str, Any] = {
                    "case_id": case_id,
                    "process_id": definition.id,
                    "process_version": definition.version,
                    "step": step.id,
                    "agency": step.agency,
                    "waiting_on": step.waiting_on,
                    "entered_at": entered,
                    "handoff_from": handoff_from,
                }
                summary.visits += 1
                if step.final:  # the engine "leaves" a final step as it enters it, without dwell
                    writer.add("kf_visit", {**visit, "left_at": entered})
                    status, closed_at, due_case = "completed", entered, None
                    break
                due_at = calendar.due_at(entered, step.expected) if step.expected else None
                warn_at = calendar.due_at(entered, step.warn_after) if step.warn_after else None
                left = _office_hours(entered + _dwell(step, rng, slow_steps[definition.id]), rng)
                if rng.random() < 0.1:  # a pause with a reason code; the deadlines move by its office days
                    reason = rng.choice(step.stall_causes or PAUSE_REASONS)
                    paused_at = entered + (left - entered) * rng.random()
                    resumed_at = paused_at + timedelta(days=rng.lognormvariate(math.log(10), 0.7))
                    left += resumed_at - paused_at
                    if due_at is not None:
                        due_at = calendar.extend_deadline(due_at, paused_at, resumed_at)
                    if warn_at is not None:
                        warn_at = calendar.extend_deadline(warn_at, paused_at, resumed_at)
                    visit.update(paused_seconds=int((resumed_at - paused_at).total_seconds()), reason_code=reason)
                    event("paused", paused_at, step.id, detail={"reason": reason})
                    event("resumed", resumed_at, step.id)
                elif step.stall_causes and rng.random() < 0.3:  # waiting on someone, clock running
                    visit["reason_code"] = rng.choice(step.stall_causes)
                    event("waiting", entered + (left - entered) * rng.random() / 2, step.id)
                # Actions that record data without leaving the step.
                staying = [a for a in step.actions.values() if a.next is None and not a.system_only]
                for _ in range(rng.choice((0, 1, 1, 2)) if staying else 0):
                    at = entered + (left - entered) * rng.random()
                    event("fired", at, step.id, action=rng.choice(staying).name)
                visit.update(due_at=due_at, warn_at=warn_at)
                if left >= end:
                    writer.add("kf_visit", visit)
                    summary.open_visits += 1
                    due_case = due_at
                    break
                overran = due_at is not None and left > due_at
                excess = calendar.office_days_between(due_at - timedelta(seconds=1), left) if overran else 0
                visit.update(
                    left_at=left,
                    overran=overran if due_at is not None else None,
                    office_days=calendar.office_days_between(entered, left),
                    excess_office_days=excess if due_at is not None else None,
                )
                writer.add("kf_visit", visit)
                forward = [a for a in step.actions.values() if a.next is not None and not a.system_only]
                if not forward:
                    break
                action = rng.choices(forward, [4.0] + [1.0] * (len(forward) - 1))[0]
                if action.handoff is not None and action.handoff.consent_required:
                    event("consent_recorded", left - timedelta(hours=1), step.id)
                event("fired", left, step.id, action.next, action=action.name)
                handoff_from = action.handoff.from_agency if action.handoff is not None else None
                step, entered = definition.steps[action.next], left  # type: ignore[index]
            summary.events += event.seq
            writer.add(
                "kf_case",
                {
                    "id": case_id,
                    "process_id": definition.id,
                    "process_version": definition.version,
                    "step": step.id,
                    "status": status,
                    "version": max(event.seq, 1),
                    "data": {},
                    "assignee": assignee,
                    "waiting_on": step.waiting_on,
                    "opened_at": opened,
                    "updated_at": entered,
                    "closed_at": closed_at,
                    "due_at": due_case,
                    "step_entered_at": entered,
                },
            )
            summary.cases += 1
        writer.flush()
    with engine.store.transaction() as conn:
        conn.exec_driver_sql("ANALYZE")
    summary.seconds = time.perf_counter() - began
    return summary


# --------------------------------------------------------------------------- timing


def _baseline(engine: Engine) -> Callable[[], Any]:
    def run() -> Any:
        with engine.store.read() as conn:  # the same kind of read transaction the report uses
            return conn.exec_driver_sql(BASELINE_SQL).all()

    return run


def _timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """(wall-clock seconds, CPU seconds of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


@contextlib.contextmanager
def _database(backend: str, keep: str | None) -> Iterator[tuple[str, bool]]:
    """Yields (url, exists): a fresh SQLite file or PostgreSQL schema, or the kept file/schema."""
    if backend == "sqlite":
        if keep:
            path = Path(keep).resolve()
            yield f"sqlite:///{path}", path.exists()
            return
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.db", False
        return
    schema = keep or f"kf_bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(PG_URL, poolclass=sa.NullPool)
    with admin.begin() as conn:
        exists = conn.execute(
            sa.text(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = :s AND table_name = 'kf_visit'"
            ),
            {"s": schema},
        ).scalar()
        conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}", bool(exists)
    finally:
        if not keep:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def run_backend(
    backend: str, *, cases: int, months: int, horizon: int, rounds: int, seed: int, keep: str | None
) -> dict[str, Any]:
    from engine.reports import stall_report
    from engine.stalls import find_stalls

    with _database(backend, keep) as (url, exists):
        clock = FixedClock(START)
        engine = Engine(url, clock=clock)
        generated = None
        if not exists:
            engine.upgrade_schema()
            engine.deploy([ROOT / "processes"], actor="bench")
            generated = generate(engine, cases=cases, months=months, horizon=horizon, seed=seed)
            print(
                f"[{backend}] generated {generated.cases:,} cases, {generated.visits:,} visits "
                f"({generated.open_visits:,} open), {generated.events:,} events in {generated.seconds:.1f} s",
                flush=True,
            )
        now = START + timedelta(days=30.4 * (months + horizon))
        baseline = _baseline(engine)

        def report() -> Any:
            return stall_report(engine, now=now)

        def stalls() -> Any:
            return find_stalls(engine, now=now)

        for fn in (baseline, report, stalls):  # warm caches (definitions, calendars, page cache)
            fn()
        times: dict[str, list[float]] = {"baseline": [], "report": [], "stalls": []}
        cpu: dict[str, list[float]] = {"baseline": [], "report": [], "stalls": []}
        for _ in range(rounds):
            for name, fn in (("baseline", baseline), ("report", report), ("stalls", stalls)):
                wall_s, cpu_s = _timed(fn)
                times[name].append(wall_s)
                cpu[name].append(cpu_s)
        with engine.store.read() as conn:
            counts = {
                t: conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar()
                for t in ("kf_case", "kf_visit", "kf_event")
            }
        result_report = stall_report(engine, now=now)
        found = find_stalls(engine, now=now)
        engine.store.dispose()
    best = {name: min(values) for name, values in times.items()}
    median = {name: statistics.median(values) for name, values in times.items()}
    best_cpu = {name: min(values) for name, values in cpu.items()}
    ratio = best["report"] / best["baseline"]
    checks = {
        "report_ratio": ratio <= TARGET_RATIO,
        "stalls": best["stalls"] < TARGET_STALLS,
    }
    if backend == "sqlite":
        checks["report_abs"] = best["report"] < TARGET_REPORT_SQLITE
    return {
        "backend": backend,
        "rows": counts,
        "best_seconds": best,
        "median_seconds": median,
        "best_cpu_seconds": best_cpu,
        "report_over_baseline": round(ratio, 2),
        # On PostgreSQL the server's CPU is not in this process: the CPU ratio is for SQLite.
        "report_over_baseline_cpu": round(best_cpu["report"] / best_cpu["baseline"], 2),
        "stalls_returned": len(found),
        "report_groups": len(result_report.steps),
        "candidates": len(result_report.candidates),
        "targets_met": checks,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=12, help="months during which cases open")
    parser.add_argument("--horizon", type=int, default=6, help="months after that until the report's 'now'")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seed", type=int, default=20260302)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "all"), default="sqlite")
    parser.add_argument("--database", help="SQLite file to keep and reuse (generated if missing)")
    parser.add_argument("--pg-schema", help="PostgreSQL schema to keep and reuse (generated if missing)")
    args = parser.parse_args(argv)
    backends = ["sqlite", "postgres"] if args.backend == "all" else [args.backend]
    ok = True
    for backend in backends:
        result = run_backend(
            backend,
            cases=args.cases,
            months=args.months,
            horizon=args.horizon,
            rounds=args.rounds,
            seed=args.seed,
            keep=args.database if backend == "sqlite" else args.pg_schema,
        )
        best = result["best_seconds"]
        print(
            f"[{backend}] baseline GROUP BY {best['baseline'] * 1000:.1f} ms | "
            f"stall_report {best['report'] * 1000:.1f} ms = {result['report_over_baseline']:.2f}x "
            f"(target <= {TARGET_RATIO:.0f}x"
            + (f", < {TARGET_REPORT_SQLITE:.0f} s" if backend == "sqlite" else "")
            + f") | find_stalls {best['stalls'] * 1000:.1f} ms (target < {TARGET_STALLS * 1000:.0f} ms)"
        )
        print(json.dumps(result, indent=2))
        ok = ok and all(result["targets_met"].values())
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
