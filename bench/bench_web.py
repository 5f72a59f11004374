"""Server-side render time of the caseworker's worklist page (``/faelle``) over 10,000 cases (issue #5).

Method:

* **Data**: 10,000 cases of the shipped processes simulated over 12 months
  (:func:`engine.simulation.simulate`, the same as ``kimflow simulate --cases 10000``) into a
  SQLite file, built once and cached (``--cache``, default
  ``$TMPDIR/bench_web_<cases>_seed<seed>.db``; building takes a few minutes on 2 cores).
  Every run works on a fresh copy of the cache with two accounts added: a caseworker without a
  team (the simulated cases have none, so all 10,000 are hers) and a coordinator.
* **App**: ``create_app`` on that copy, driven in-process by Starlette's ``TestClient``
  (no network, no uvicorn: what is timed is the app's own work — routing, session, database,
  template — plus the small, constant cost of the test client, which the baselines pay too).
  The clock is the real one: the simulation ends today, so the list holds overdue,
  at-risk and on-time cases as a caseworker would see them.
* **Pages**, each requested ``--requests`` times after ``--warmup`` unmeasured requests, the
  scenarios interleaved round by round so that background load hits all alike:

  ``statement``        ``GET /barrierefreiheit`` logged in — the baseline: a static page
                       through the same session, layout and template machinery;
  ``api-list``         ``GET /api/v1/cases?status=open&sort=due_at&limit=50`` — the JSON API's
                       worklist of the same page size and order (bearer token);
  ``worklist``         ``GET /faelle`` as the caseworker: 50 open cases by deadline with
                       deadline judgement, working days, agency, waiting reason;
  ``worklist-p2``      the second page (keyset cursor from the first);
  ``overdue``          ``GET /faelle?frist=overdue`` (only overdue cases);
  ``mine``             ``GET /faelle?meine=1`` as the coordinator assigned to cases
                       (``cm-01``-style pseudonym of the simulation) — filter by assignee;
  ``process-step``     ``GET /faelle?prozess=…&schritt=…`` (a process and one of its steps);
  ``case-page``        ``GET /faelle/{id}`` of the first listed case, for comparison (not a worklist:
                       data, actions with reasons, consents, history, diagram, an access-log entry).

  Printed per scenario: median, p95 and max in ms, and the median as a multiple of the
  baseline's. **Target: worklist pages < 100 ms** (median; p95 shown beside it).

Run: ``python bench/bench_web.py [--cases 10000] [--requests 200] [--warmup 20] [--cache PATH]``;
``--quick`` uses 1,000 cases and 30 requests (a smoke run).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402

from api.app import create_app  # noqa: E402
from api.settings import Settings  # noqa: E402
from api.web.session import SESSION_COOKIE, SESSION_LIFETIME  # noqa: E402
from engine import Engine, FixedClock  # noqa: E402
from engine.accounts import CASEWORKER, COORDINATOR, Accounts  # noqa: E402
from engine.simulation import simulate  # noqa: E402

MONTHS = 12
PASSWORD = "bench-passwort-123"


def base_database(cases: int, seed: int, cache: Path) -> Path:
    """The cached simulated database, simulated once if it is not there yet."""
    if cache.exists():
        print(f"data: {cache} (cached; delete it to simulate again)")
        return cache
    building = cache.with_name(f"{cache.stem}.building-{os.getpid()}.db")
    print(f"data: simulating {cases} cases over {MONTHS} months into {cache} (once; takes a while) ...", flush=True)
    started = time.perf_counter()
    # Start so that the simulated year ends now: today's worklist then has cases in every state.
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0) - timedelta(days=30.4 * MONTHS))
    engine = Engine(f"sqlite:///{building}", clock=clock, durable=False)  # synthetic data: no fsync per commit
    try:
        engine.upgrade_schema()
        deployments = engine.deploy([ROOT / "processes"], actor="bench")
        summary = simulate(
            engine, clock, cases=cases, months=MONTHS, seed=seed, process_ids=[d.process_id for d in deployments]
        )
    finally:
        engine.store.dispose()
    building.rename(cache)
    print(f"data: {summary.total.opened} cases simulated in {time.perf_counter() - started:.0f} s", flush=True)
    return cache


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--requests", type=int, default=200, help="measured requests per scenario")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured requests per scenario first")
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--build-only", action="store_true", help="only simulate the cached database")
    parser.add_argument("--quick", action="store_true", help="1,000 cases, 30 requests: a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.cases, args.requests, args.warmup = 1_000, 30, 5
    cache = args.cache or Path(tempfile.gettempdir()) / f"bench_web_{args.cases}_seed{args.seed}.db"
    source = base_database(args.cases, args.seed, cache)
    if args.build_only:
        return 0

    workdir = Path(tempfile.mkdtemp(prefix="kimflow-bench-web-"))
    try:
        database = workdir / "bench.db"
        shutil.copyfile(source, database)
        url = f"sqlite:///{database}"
        engine = Engine(url)
        engine.upgrade_schema()
        accounts = Accounts(engine.store, engine.clock)
        # The simulation assigns cases to pseudonyms such as cm-01: one of them gets an account too.
        with engine.store.read() as conn:
            import sqlalchemy as sa

            from engine.store import cases_t

            busiest = conn.execute(
                sa.select(cases_t.c.assignee)
                .where(cases_t.c.status == "open", cases_t.c.assignee.is_not(None))
                .group_by(cases_t.c.assignee)
                .order_by(sa.func.count().desc())
                .limit(1)
            ).scalar()
            open_cases = conn.execute(sa.select(sa.func.count()).where(cases_t.c.status == "open")).scalar()
            all_cases = conn.execute(sa.select(sa.func.count()).select_from(cases_t)).scalar()
            step_row = conn.execute(
                sa.select(cases_t.c.process_id, cases_t.c.step)
                .where(cases_t.c.status == "open")
                .group_by(cases_t.c.process_id, cases_t.c.step)
                .order_by(sa.func.count().desc())
                .limit(1)
            ).first()
        sessions: dict[str, str] = {}
        for name, role in (("bench_fm", CASEWORKER), (busiest or "cm-01", COORDINATOR)):
            user = accounts.add_user(name, PASSWORD, role=role)
            sessions[name] = accounts.issue_token(user, SESSION_LIFETIME).token
        engine.store.dispose()
        print(f"cases: {all_cases} in all, {open_cases} open; caseworker sees all of them (no team)")

        settings = Settings(environment="test", database_url=url, tick_enabled=False)
        app = create_app(settings)
        with TestClient(app) as client:
            caseworker = TestClient(app)
            caseworker.cookies.set(SESSION_COOKIE, sessions["bench_fm"])
            assignee = TestClient(app)
            assignee.cookies.set(SESSION_COOKIE, sessions[busiest or "cm-01"])
            bearer = {"Authorization": f"Bearer {sessions['bench_fm']}"}

            first = caseworker.get("/faelle")
            assert first.status_code == 200, first.text[:500]
            assert first.text.count('class="case-row"') == 50, "the first page should list 50 cases"
            marker = 'rel="next" href="'
            start = first.text.index(marker) + len(marker)
            page_two = first.text[start : first.text.index('"', start)].replace("&amp;", "&")
            first_case = first.text.split('<th scope="row"><a href="/faelle/', 1)[1].split('"', 1)[0]

            scenarios: dict[str, Callable[[], object]] = {
                "statement": lambda: caseworker.get("/barrierefreiheit"),
                "api-list": lambda: client.get("/api/v1/cases?status=open&sort=due_at&limit=50", headers=bearer),
                "worklist": lambda: caseworker.get("/faelle"),
                "worklist-p2": lambda: caseworker.get(page_two),
                "overdue": lambda: caseworker.get("/faelle?frist=overdue"),
                "mine": lambda: assignee.get("/faelle?meine=1"),
                "case-page": lambda: caseworker.get(f"/faelle/{first_case}"),
            }
            if step_row is not None:
                scenarios["process-step"] = lambda: caseworker.get(
                    f"/faelle?prozess={step_row[0]}&schritt={step_row[1]}"
                )
            for name, call in scenarios.items():
                response = call()
                assert response.status_code == 200, (name, response.status_code, response.text[:300])  # type: ignore[attr-defined]
                for _ in range(args.warmup):
                    call()
            timings: dict[str, list[float]] = {name: [] for name in scenarios}
            cpu: dict[str, list[float]] = {name: [] for name in scenarios}
            for _ in range(args.requests):
                for name, call in scenarios.items():
                    began, began_cpu = time.perf_counter(), time.process_time()
                    call()
                    cpu[name].append((time.process_time() - began_cpu) * 1000)
                    timings[name].append((time.perf_counter() - began) * 1000)
            caseworker.close()
            assignee.close()

        baseline = statistics.median(timings["statement"])
        load = os.getloadavg()
        print(
            f"\n{args.requests} requests per scenario after {args.warmup} warm-up, interleaved; times in ms; "
            f"load average {load[0]:.1f} on {os.cpu_count()} CPUs"
        )
        print("wall = time to the answer; cpu = CPU time of this process (app and test client) per request")
        print(f"{'scenario':<14}{'median':>9}{'p95':>9}{'max':>9}{'cpu med':>9}{'× baseline':>12}")
        for name, values in timings.items():
            median = statistics.median(values)
            print(
                f"{name:<14}{median:9.1f}{_percentile(values, 0.95):9.1f}{max(values):9.1f}"
                f"{statistics.median(cpu[name]):9.1f}{median / baseline:12.2f}"
            )
        worklists = [n for n in timings if n not in ("statement", "api-list", "case-page")]
        worst = max(worklists, key=lambda n: statistics.median(timings[n]))
        figure = statistics.median(timings[worst])
        verdict = "met" if figure < 100 else "MISSED"
        print(f"\ntarget: worklist pages < 100 ms (median) — slowest: {worst} {figure:.1f} ms: {verdict}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
