"""Durable advances per second: ``Engine.fire`` against the raw database drivers.

One *advance* is one action fired on one case in its own committed transaction.
Three ways of doing it are timed in the same run, on the same machine, round by
round and chunk by chunk (interleaved, so background noise hits all of them alike):

``engine``
    ``Engine.fire(case_id, action, actor=...)`` through the public API.

``raw`` (the baseline of the target)
    The plain driver (``sqlite3`` / ``psycopg``) on its own tables equivalent to
    ``kf_case`` and ``kf_event`` (same columns, types and indexes): per advance
    ``SELECT`` the case, ``UPDATE`` it (version-checked), ``INSERT`` an event,
    ``COMMIT``.

``raw-full`` (for diagnosis, not a target)
    The plain driver issuing the statement set the engine issues for this
    process on the engine's own tables (``SELECT`` case, close the step visit,
    insert the next visit, ``UPDATE`` case, ``INSERT`` event, ``COMMIT``). The
    gap engine → raw-full is the Python cost (engine logic + SQLAlchemy); the
    gap raw-full → raw is what the richer data model (visits, more indexes)
    costs in I/O.

SQLite: a file in a temporary directory, WAL, ``synchronous=FULL``, ``BEGIN
IMMEDIATE`` (the engine's settings; the raw connections set the same pragmas).
PostgreSQL: the engine's tables in a fresh schema ``kf_bench_<hex>`` created by
``Engine.upgrade_schema()``, the raw tables in another fresh schema; both are
dropped afterwards.

Run: ``python bench/bench_advance.py [--quick] [--backend sqlite|postgres|all]``.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PG_URL = os.environ.get("KIMFLOW_BENCH_POSTGRES_URL", "postgresql+psycopg://127.0.0.1:5432/test")
TARGET_SQLITE = 0.50

#: A cycle a <-> b that can advance forever, with a final step reachable from both.
DEFINITION = """\
schema_version: 1
id: bench_zyklus
version: 1
title: Benchmark-Zyklus
title_en: Benchmark cycle
agencies:
  KIM-CM: KIM-Case Management
  JC: Jobcenter
data:
  notiz:
    type: string
    label: Notiz
  termin:
    type: date
    label: Termin
  kinder:
    type: integer
    label: Kinder
    minimum: 0
start: schritt_a
steps:
  schritt_a:
    title: Schritt A
    agency: KIM-CM
    expected: 5 Arbeitstage
    warn_after: 3 Arbeitstage
    actions:
      weiter_b:
        title: Weiter zu B
        next: schritt_b
  schritt_b:
    title: Schritt B
    agency: KIM-CM
    waiting_on: JC
    expected: 2 Wochen
    actions:
      zurueck_a:
        title: Zurück zu A
        next: schritt_a
      abschliessen:
        title: Abschließen
        next: erledigt
  erledigt:
    title: Erledigt
    final: true
    outcome: erledigt
"""
PROCESS = "bench_zyklus"
CASE_DATA = {"notiz": "Erstgespräch geführt, Unterlagen angefordert", "termin": "2026-05-12", "kinder": 2}
ACTOR = "bench"
STEP_A, STEP_B = "schritt_a", "schritt_b"
ACTION_AB, ACTION_BA = "weiter_b", "zurueck_a"

CASE_COLUMNS = (
    "id", "process_id", "process_version", "step", "status", "version", "data", "opened_at", "updated_at",
    "assignee", "waiting_on", "paused", "pause_reason", "outcome", "closed_at", "parent_id", "child_name",
    "due_at", "visit_id",
)  # fmt: skip
SELECT_COLUMNS = ", ".join(CASE_COLUMNS)
EVENT_INSERT_COLUMNS = "case_id, seq, at, actor, kind, action, from_step, to_step, changes, detail"

# Raw baseline tables: the columns, types and indexes of kf_case and kf_event.
RAW_DDL_SQLITE = """
CREATE TABLE raw_case (
    id INTEGER NOT NULL PRIMARY KEY, process_id VARCHAR(64) NOT NULL, process_version INTEGER NOT NULL,
    step VARCHAR(64) NOT NULL, status VARCHAR(16) NOT NULL, version INTEGER NOT NULL, data JSON NOT NULL,
    assignee VARCHAR(128), waiting_on VARCHAR(20), paused BOOLEAN NOT NULL, pause_reason VARCHAR(64),
    outcome VARCHAR(64), opened_at DATETIME NOT NULL, updated_at DATETIME NOT NULL, closed_at DATETIME,
    due_at DATETIME, visit_id INTEGER, parent_id INTEGER, child_name VARCHAR(64));
CREATE INDEX ix_raw_case_process_step ON raw_case (process_id, step);
CREATE INDEX ix_raw_case_assignee ON raw_case (assignee);
CREATE INDEX ix_raw_case_parent_id ON raw_case (parent_id);
CREATE INDEX ix_raw_case_status ON raw_case (status);
CREATE TABLE raw_event (
    id INTEGER NOT NULL PRIMARY KEY, case_id INTEGER NOT NULL, seq INTEGER NOT NULL, at DATETIME NOT NULL,
    actor VARCHAR(128) NOT NULL, kind VARCHAR(32) NOT NULL, action VARCHAR(64), from_step VARCHAR(64),
    to_step VARCHAR(64), changes JSON NOT NULL, detail JSON NOT NULL,
    CONSTRAINT uq_raw_event_case_seq UNIQUE (case_id, seq));
"""
RAW_DDL_PG = (
    RAW_DDL_SQLITE.replace("id INTEGER NOT NULL PRIMARY KEY", "id SERIAL NOT NULL PRIMARY KEY")
    .replace("JSON NOT NULL", "JSONB NOT NULL")
    .replace("DATETIME", "TIMESTAMP WITH TIME ZONE")
)


def _sqlite_ts(value: datetime) -> str:
    """How SQLAlchemy stores a UTC datetime in SQLite (naive, microseconds)."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _now() -> datetime:
    return datetime.now(UTC)


def _flip(step: str) -> tuple[str, str, str | None]:
    """(action, next step, waiting_on of the next step) for a case standing in ``step``."""
    if step == STEP_A:
        return ACTION_AB, STEP_B, "JC"
    return ACTION_BA, STEP_A, None


# --------------------------------------------------------------------------- setups


class Setup:
    """One backend: the engine, its cases, and the raw connections; closes everything."""

    def __init__(self, backend: str, cases: int) -> None:
        self.backend = backend
        self.ncases = cases
        self.cleanups: list[Callable[[], None]] = []
        self.engine: Any = None
        self.case_ids: list[int] = []
        self.at_a: list[bool] = []
        self.raw: Any = None
        self.raw_ids: list[int] = []
        self.full: Any = None  # raw connection to the engine's own tables

    def close(self) -> None:
        for cleanup in reversed(self.cleanups):
            with contextlib.suppress(Exception):
                cleanup()

    # ---- engine
    def _open_engine(self, url: str) -> None:
        from engine.cases import Engine

        engine = Engine(url)
        self.cleanups.append(engine.store.dispose)
        engine.upgrade_schema()
        engine.deploy_text(DEFINITION, actor=ACTOR, file="bench_zyklus.yaml")
        self.engine = engine
        self.case_ids = [engine.open_case(PROCESS, actor=ACTOR, data=CASE_DATA).id for _ in range(self.ncases)]
        self.at_a = [True] * self.ncases

    def start(self) -> None:
        if self.backend == "sqlite":
            self._start_sqlite()
        else:
            self._start_postgres()

    def _start_sqlite(self) -> None:
        import sqlite3

        tmp = tempfile.TemporaryDirectory(prefix="kf_bench_")
        self.cleanups.append(tmp.cleanup)
        path = Path(tmp.name) / "engine.db"
        self._open_engine(f"sqlite:///{path}")

        def connect(file: Path) -> sqlite3.Connection:
            conn = sqlite3.connect(file, isolation_level=None, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            self.cleanups.append(conn.close)
            return conn

        self.full = connect(path)
        raw = connect(Path(tmp.name) / "raw.db")
        raw.executescript(RAW_DDL_SQLITE)
        now = _sqlite_ts(_now())
        data = json.dumps(CASE_DATA)
        raw.execute("BEGIN IMMEDIATE")
        for _ in range(self.ncases):
            cur = raw.execute(
                "INSERT INTO raw_case (process_id, process_version, step, status, version, data, paused,"
                " opened_at, updated_at) VALUES (?, 1, ?, 'open', 1, ?, 0, ?, ?)",
                (PROCESS, STEP_A, data, now, now),
            )
            self.raw_ids.append(int(cur.lastrowid))  # type: ignore[arg-type]
        raw.execute("COMMIT")
        self.raw = raw

    def _start_postgres(self) -> None:
        import psycopg

        base = PG_URL.replace("postgresql+psycopg://", "postgresql://")
        admin = psycopg.connect(base, autocommit=True)
        self.cleanups.append(admin.close)
        tag = uuid.uuid4().hex[:10]
        engine_schema, raw_schema = f"kf_bench_{tag}", f"kf_bench_raw_{tag}"
        for schema in (engine_schema, raw_schema):
            admin.execute(f"CREATE SCHEMA {schema}")
            self.cleanups.append(lambda s=schema: admin.execute(f"DROP SCHEMA IF EXISTS {s} CASCADE"))
        sep = "&" if "?" in PG_URL else "?"
        self._open_engine(f"{PG_URL}{sep}options=-csearch_path%3D{engine_schema}")

        def connect(schema: str) -> psycopg.Connection:
            conn = psycopg.connect(base, options=f"-csearch_path={schema}")
            self.cleanups.append(conn.close)
            return conn

        self.full = connect(engine_schema)
        raw = connect(raw_schema)
        raw.execute(RAW_DDL_PG)
        now = _now()
        data = json.dumps(CASE_DATA)
        for _ in range(self.ncases):
            row = raw.execute(
                "INSERT INTO raw_case (process_id, process_version, step, status, version, data, paused,"
                " opened_at, updated_at) VALUES (%s, 1, %s, 'open', 1, %s::jsonb, false, %s, %s) RETURNING id",
                (PROCESS, STEP_A, data, now, now),
            ).fetchone()
            self.raw_ids.append(int(row[0]))  # type: ignore[index]
        raw.commit()
        self.raw = raw


# --------------------------------------------------------------------------- the three loops


def run_engine(setup: Setup, count: int, offset: int) -> float:
    """Fire ``count`` actions round-robin through ``Engine.fire``; returns seconds."""
    fire, ids, at_a, n = setup.engine.fire, setup.case_ids, setup.at_a, len(setup.case_ids)
    start = time.perf_counter()
    for i in range(offset, offset + count):
        k = i % n
        fire(ids[k], ACTION_AB if at_a[k] else ACTION_BA, actor=ACTOR)
        at_a[k] = not at_a[k]
    return time.perf_counter() - start


def run_raw(setup: Setup, count: int, offset: int) -> float:
    """The baseline: SELECT case, UPDATE case, INSERT event, COMMIT, with the raw driver."""
    conn, ids, n = setup.raw, setup.raw_ids, len(setup.raw_ids)
    sqlite = setup.backend == "sqlite"
    p = "?" if sqlite else "%s"
    select = f"SELECT {SELECT_COLUMNS} FROM raw_case WHERE id = {p}"
    update = (
        f"UPDATE raw_case SET step = {p}, waiting_on = {p}, version = {p}, data = {p}, updated_at = {p}"
        f" WHERE id = {p} AND version = {p}"
    )
    insert = f"INSERT INTO raw_event ({EVENT_INSERT_COLUMNS}) VALUES ({', '.join([p] * 10)})"
    if not sqlite:
        update = update.replace(f"data = {p}", f"data = {p}::jsonb")
        insert = insert.replace(f"{p}, {p})", f"{p}::jsonb, {p}::jsonb)")
    ts = _sqlite_ts if sqlite else (lambda d: d)
    start = time.perf_counter()
    for i in range(offset, offset + count):
        case_id = ids[i % n]
        if sqlite:
            conn.execute("BEGIN IMMEDIATE")
        row = conn.execute(select, (case_id,)).fetchone()
        step, version = row[3], row[5]
        data = json.loads(row[6]) if isinstance(row[6], str) else row[6]
        action, new_step, waiting_on = _flip(step)
        now = ts(_now())
        cur = conn.execute(update, (new_step, waiting_on, version + 1, json.dumps(data), now, case_id, version))
        if cur.rowcount != 1:
            raise RuntimeError("raw baseline: concurrent update")
        conn.execute(insert, (case_id, version + 1, now, ACTOR, "fired", action, step, new_step, "{}", "{}"))
        conn.commit() if not sqlite else conn.execute("COMMIT")
    return time.perf_counter() - start


#: The case columns the engine's UPDATE writes (all changeable ones, as engine/store.py does).
CASE_MUTABLE = (
    "step", "status", "version", "data", "assignee", "waiting_on", "paused", "pause_reason", "outcome",
    "closed_at", "due_at", "visit_id", "updated_at", "step_entered_at",
)  # fmt: skip


def _columns(setup: Setup, table: str) -> list[str]:
    """The columns the engine's migrations created (the schema evolves; raw-full follows it)."""
    if setup.backend == "sqlite":
        return [row[1] for row in setup.full.execute(f"PRAGMA table_info({table})")]
    rows = setup.full.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s AND table_schema = current_schema()",
        (table,),
    ).fetchall()
    setup.full.commit()
    return [row[0] for row in rows]


def run_raw_full(setup: Setup, count: int, offset: int) -> float:
    """The engine's statement set for this process, issued with the raw driver on the engine's tables.

    Mirrors what ``Engine.fire`` sends for this process (see the statement list in
    the output): read the case, close the visit, insert the next visit, update every
    changeable case column (version-checked), insert the event, commit. It keeps the
    engine's invariants (version, step, visit, event seq), so the engine carries on
    with the same cases afterwards. Deadlines are plain ``now + days`` here, not the
    engine's office-day calendar: that arithmetic counts as engine (Python) cost.
    """
    conn, ids, at_a, n = setup.full, setup.case_ids, setup.at_a, len(setup.case_ids)
    sqlite = setup.backend == "sqlite"
    p = "?" if sqlite else "%s"
    case_cols, visit_cols = _columns(setup, "kf_case"), _columns(setup, "kf_visit")
    read = [c for c in (*CASE_COLUMNS, "step_entered_at") if c in case_cols]
    at = {name: i for i, name in enumerate(read)}
    mutable = [c for c in CASE_MUTABLE if c in case_cols]
    office = "office_days" in visit_cols and "excess_office_days" in visit_cols
    select = f"SELECT {', '.join(read)} FROM kf_case WHERE id = {p}"
    close_visit = (
        f"UPDATE kf_visit SET left_at = {p}, overran = {p}"
        + (f", office_days = {p}, excess_office_days = {p}" if office else "")
        + f" WHERE id = {p}"
    )
    insert_visit = (
        "INSERT INTO kf_visit (case_id, process_id, process_version, step, agency, waiting_on, entered_at,"
        f" left_at, due_at, warn_at, paused_seconds) VALUES ({', '.join([p] * 11)}) RETURNING id"
    )
    json_p = p if sqlite else f"{p}::jsonb"
    update = (
        "UPDATE kf_case SET "
        + ", ".join(f"{c} = {json_p if c == 'data' else p}" for c in mutable)
        + f" WHERE id = {p} AND version = {p}"
    )
    insert_event = f"INSERT INTO kf_event ({EVENT_INSERT_COLUMNS}) VALUES ({', '.join([p] * 8)}, {json_p}, {json_p})"
    ts = _sqlite_ts if sqlite else (lambda d: d)
    start = time.perf_counter()
    for i in range(offset, offset + count):
        k = i % n
        case_id = ids[k]
        if sqlite:
            conn.execute("BEGIN IMMEDIATE")
        row = list(conn.execute(select, (case_id,)).fetchone())
        step, version, visit_id, due_at = row[at["step"]], row[at["version"]], row[at["visit_id"]], row[at["due_at"]]
        data = json.loads(row[at["data"]]) if isinstance(row[at["data"]], str) else row[at["data"]]
        action, new_step, waiting_on = _flip(step)
        moment = _now()
        now = ts(moment)
        new_due = ts(moment + (timedelta(days=7) if new_step == STEP_A else timedelta(days=14)))
        warn = ts(moment + timedelta(days=4)) if new_step == STEP_A else None
        overran = None if due_at is None else (now > due_at)
        conn.execute(close_visit, (now, overran, 0, 0, visit_id) if office else (now, overran, visit_id))
        cur = conn.execute(
            insert_visit, (case_id, PROCESS, 1, new_step, "KIM-CM", waiting_on, now, None, new_due, warn, 0)
        )
        new_visit = cur.fetchone()[0]
        values = dict(zip(read, row, strict=True))
        values.update(
            step=new_step, version=version + 1, data=json.dumps(data), waiting_on=waiting_on, updated_at=now,
            due_at=new_due, visit_id=new_visit, step_entered_at=now,
        )  # fmt: skip
        cur = conn.execute(update, (*(values[c] for c in mutable), case_id, version))
        if cur.rowcount != 1:
            raise RuntimeError("raw-full: concurrent update")
        conn.execute(insert_event, (case_id, version + 1, now, ACTOR, "fired", action, step, new_step, "{}", "{}"))
        conn.commit() if not sqlite else conn.execute("COMMIT")
        at_a[k] = not at_a[k]
    return time.perf_counter() - start


# --------------------------------------------------------------------------- measuring


def statements_per_advance(setup: Setup) -> list[str]:
    """The SQL one ``Engine.fire`` sends on SQLite (first words), from the driver's trace callback.

    The trace sees every statement, also those the store runs on the DBAPI cursor
    directly (which SQLAlchemy's cursor events would miss).
    """
    import sqlalchemy as sa

    seen: list[str] = []
    traced: list[Any] = []

    def on_checkout(dbapi_connection: Any, *_args: Any) -> None:
        dbapi_connection.set_trace_callback(lambda sql: seen.append(" ".join(sql.split()[:3])))
        traced.append(dbapi_connection)

    sa_engine = setup.engine.store.engine
    sa.event.listen(sa_engine, "checkout", on_checkout)
    try:
        run_engine(setup, 1, 0)
    finally:
        sa.event.remove(sa_engine, "checkout", on_checkout)
        for dbapi_connection in traced:
            dbapi_connection.set_trace_callback(None)
    return seen


def measure_backend(
    backend: str, *, cases: int, count: int, warmup: int, rounds: int, chunks: int = 10
) -> dict[str, Any]:
    setup = Setup(backend, cases)
    try:
        t0 = time.perf_counter()
        setup.start()
        setup_s = time.perf_counter() - t0
        statements = statements_per_advance(setup) if backend == "sqlite" else []
        offset = 1
        loops = (("engine", run_engine), ("raw", run_raw), ("raw_full", run_raw_full))
        for _name, fn in loops:
            fn(setup, warmup, offset)
            offset += warmup
        # Each round is cut into chunks run in turn (engine, raw, raw-full, engine, ...), so
        # a change of background load during a round hits all three alike.
        chunk = max(1, count // chunks)
        rates: dict[str, list[float]] = {name: [] for name, _ in loops}
        for _ in range(rounds):
            spent = dict.fromkeys(rates, 0.0)
            done = 0
            while done < count:
                size = min(chunk, count - done)
                for name, fn in loops:
                    spent[name] += fn(setup, size, offset)
                    offset += size
                done += size
            for name in rates:
                rates[name].append(count / spent[name])
        med = {name: statistics.median(values) for name, values in rates.items()}
        return {
            "backend": backend,
            "cases": cases,
            "count": count,
            "rounds": rounds,
            "setup_s": setup_s,
            "rates": rates,
            "engine": med["engine"],
            "raw": med["raw"],
            "raw_full": med["raw_full"],
            "ratio": med["engine"] / med["raw"],
            "statements": statements,
        }
    finally:
        setup.close()


def profile_engine(*, cases: int, count: int, top: int = 15) -> dict[str, Any]:
    """cProfile ``count`` engine advances on SQLite; the top entries and a breakdown by package."""
    setup = Setup("sqlite", cases)
    try:
        setup.start()
        run_engine(setup, min(count, 500), 0)
        profiler = cProfile.Profile()
        profiler.enable()
        run_engine(setup, count, 500)
        profiler.disable()
    finally:
        setup.close()

    def listing(order: str) -> str:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(top)
        text = out.getvalue()
        text = text[text.index("   ncalls") :] if "   ncalls" in text else text
        for p in sys.path:
            if p and "site-packages" in p:
                text = text.replace(p + os.sep, "")
        return text.replace(str(Path(sys.prefix)), "<py>").replace(str(ROOT) + os.sep, "").rstrip()

    stats = pstats.Stats(profiler, stream=io.StringIO())
    # Own time (tottime) by where the code lives.
    groups: dict[str, float] = {}
    total = 0.0
    for (file, _line, name), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        total += tt
        if "sqlite3" in name and "commit" in name:
            key = "sqlite3 commit (fsync)"
        elif "sqlite3" in name or "psycopg" in file:
            key = "sqlite3 execute/fetch"
        elif f"{os.sep}engine{os.sep}" in file and str(ROOT) in file:
            key = "kimflow engine/"
        elif f"{os.sep}sqlalchemy{os.sep}" in file:
            key = "SQLAlchemy"
        elif f"{os.sep}transitions{os.sep}" in file:
            key = "transitions"
        elif f"{os.sep}holidays{os.sep}" in file or "calendar" in file:
            key = "calendar/holidays"
        elif "json" in file or "json" in name:
            key = "json"
        else:
            key = "other (stdlib, builtins)"
        groups[key] = groups.get(key, 0.0) + tt
    breakdown = sorted(((k, v / count * 1000, v / total) for k, v in groups.items()), key=lambda r: -r[1])
    return {
        "count": count,
        "top": listing("cumulative"),
        "top_own": listing("tottime"),
        "breakdown": breakdown,
        "total_ms": total / count * 1000,
    }


# --------------------------------------------------------------------------- reporting


def settings(quick: bool) -> dict[str, Any]:
    if quick:
        return {
            "sqlite": {"cases": 50, "count": 300, "warmup": 50, "rounds": 3, "chunks": 3},
            "postgres": {"cases": 50, "count": 150, "warmup": 50, "rounds": 3, "chunks": 3},
            "profile": 200,
        }
    return {
        "sqlite": {"cases": 1000, "count": 20000, "warmup": 1000, "rounds": 3},
        "postgres": {"cases": 1000, "count": 5000, "warmup": 500, "rounds": 3},
        "profile": 5000,
    }


def run(quick: bool = False, backends: tuple[str, ...] = ("sqlite", "postgres"), profile: bool = True) -> dict:
    conf = settings(quick)
    results: dict[str, Any] = {}
    for backend in backends:
        try:
            results[backend] = measure_backend(backend, **conf[backend])
        except Exception as exc:  # e.g. PostgreSQL not reachable: report, do not hide the rest
            results[backend] = {"backend": backend, "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    if profile:
        results["profile"] = profile_engine(cases=min(conf["sqlite"]["cases"], 1000), count=conf["profile"])
    return results


def summary_lines(results: dict[str, Any]) -> list[str]:
    lines = []
    for backend in ("sqlite", "postgres"):
        r = results.get(backend)
        if r is None:
            continue
        name = f"advance {backend:<8}"
        if "error" in r:
            lines.append(f"{name} SKIPPED ({r['error']})")
            continue
        if backend == "sqlite":
            verdict = "PASS" if r["ratio"] >= TARGET_SQLITE else "FAIL"
            target = f"(target >= {TARGET_SQLITE:.2f})  {verdict}"
        else:
            target = "(no target)"
        lines.append(
            f"{name} engine {r['engine']:,.0f}/s   raw {r['raw']:,.0f}/s   ratio {r['ratio']:.2f}  {target}"
            f"   [raw-full {r['raw_full']:,.0f}/s]"
        )
    return lines


def detail_text(results: dict[str, Any]) -> str:
    out = []
    for backend in ("sqlite", "postgres"):
        r = results.get(backend)
        if not r or "error" in r:
            continue
        out.append(
            f"[{backend}] {r['cases']:,} cases, {r['count']:,} advances x {r['rounds']} rounds (median), "
            f"setup {r['setup_s']:.1f} s"
        )
        for name in ("engine", "raw", "raw_full"):
            rounds = ", ".join(f"{v:,.0f}" for v in r["rates"][name])
            out.append(f"  {name:<9} {r[name]:>8,.0f}/s  {1000 / r[name]:6.3f} ms/advance   rounds: {rounds}")
        py = 1000 / r["engine"] - 1000 / r["raw_full"]
        io_ = 1000 / r["raw_full"] - 1000 / r["raw"]
        out.append(
            f"  engine - raw-full = {py:+.3f} ms/advance (Python: engine logic + SQLAlchemy); "
            f"raw-full - raw = {io_:+.3f} ms/advance (visit rows, more pages per commit)"
        )
        if r["statements"]:
            out.append(f"  engine statements per advance ({len(r['statements'])}): {'; '.join(r['statements'])}")
    prof = results.get("profile")
    if prof:
        out.append("")
        out.append(
            f"[profile] cProfile of {prof['count']:,} Engine.fire on SQLite "
            f"({prof['total_ms']:.3f} ms/advance under the profiler); own time by area:"
        )
        for key, ms, share in prof["breakdown"]:
            out.append(f"  {key:<26} {ms:7.3f} ms/advance  {share:6.1%}")
        out.append("")
        out.append("top 15 by cumulative time:")
        out.append(prof["top"])
        out.append("")
        out.append("top 15 by own time:")
        out.append(prof["top_own"])
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts (smoke run)")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "all"), default="all")
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args(argv)
    backends = ("sqlite", "postgres") if args.backend == "all" else (args.backend,)
    results = run(args.quick, backends, profile=not args.no_profile)
    print(detail_text(results))
    print()
    print("\n".join(summary_lines(results)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
