"""HTTP API latency and throughput under concurrent clients (issue #4 §9).

Method:

* **Data**: ``kimflow simulate --cases 100000 --months 12 --seed 7`` into a SQLite file,
  built once and cached (``--cache``, default ``$TMPDIR/bench_api_100k_12m_seed7.db``;
  building it takes 10–20 min on 2 cores). Every run works on a fresh copy of the cache,
  migrated to the newest schema, with a one-step bench process deployed, 16 × 20 cases of
  it opened for firing, and a caseworker account ``bench`` (no team: it sees every
  simulated case). ``--database URL`` simulates into that database instead (PostgreSQL).
* **Server**: ``kimflow serve`` (uvicorn, one worker unless ``--workers``) on 127.0.0.1 with
  background ticks off. If ``api.app`` has no ``GET /api/ping``, the server is started
  through ``bench/api_server.py``: the same factory and ``uvicorn.run`` call, plus that one
  trivial route (see there).
* **Load**: a separate process, closed loop, ``--clients`` keep-alive connections (16): each
  sends its next request when the previous answer is in. ``wrk`` if installed (C, one
  connection per wrk thread so that a Lua script can track case versions for ``If-Match``),
  otherwise ``bench/api_load.py`` (asyncio, standard library). The CPU the load generator
  and the server used is printed beside every figure, with the load average.
* **Scenarios**, each ``--seconds`` long, all of them once per round (``--rounds``), after an
  unmeasured warm-up of each:

  ``ping``         ``GET /api/ping`` — the baseline: a trivial JSON endpoint of the same app;
  ``health``       ``GET /api/health`` — what the app had as its simplest endpoint (asks the
                   database for its schema revision, reads the migration scripts);
  ``read``         ``GET /api/v1/cases/{id}`` of random simulated cases (data, actions,
                   history; writes an access-log entry);
  ``worklist``     ``GET /api/v1/cases?status=open&limit=50`` (first page, by id);
  ``worklist-due`` ``GET /api/v1/cases?status=open&assignee=cmNN&sort=due_at&limit=50`` (one
                   caseworker's open cases by deadline, NN at random of the 8 simulated);
  ``fire``         ``POST /api/v1/cases/{id}/actions/notieren`` with ``If-Match``: records a
                   note and stays in the step (each client fires on 20 bench cases of its own,
                   in turn, so no 412 by design);
  ``fire-step``    the same with ``wiedervorlage``, which leaves the step and enters it again:
                   the visit is closed, the step's timer cancelled, a new visit begun and a
                   timer armed — what every forward action of a timed step costs, on the
                   100,000 cases' timer table.

  Each line shows its throughput as a share of ``ping`` (and ``health``) of the same round;
  the summary takes the median of the rounds and checks the targets: p99 < 50 ms for
  ``read``, ``fire`` and ``fire-step``; both fires ≥ 30 % of the trivial endpoint's throughput.
* ``--profile``: afterwards, each scenario once more with ``py-spy record`` attached to the
  server (one worker only); prints where the server's CPU goes (own time by function and by
  library) and keeps the raw stacks and flame graphs in ``--profile-dir``.

Run: ``python bench/bench_api.py [--cases 100000] [--clients 16] [--seconds 10] [--rounds 2]
[--workers 1] [--loadgen auto|wrk|python] [--profile] [--database URL] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

import httpx2 as httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from engine import Engine  # noqa: E402
from engine.accounts import Accounts  # noqa: E402

PASSWORD = "bench-passwort-123"
BENCH_PROCESS = """\
schema_version: 1
id: bench_notiz
version: 1
title: Benchmark – Notizen
agencies: {KIM-CM: KIM-Case Management}
data:
  note: {type: text, label: Notiz}
steps:
  offen:
    title: Offen
    agency: KIM-CM
    expected: 3 Arbeitstage
    timers:
      - {after: 4 Wochen, action: erinnern}
    actions:
      notieren: {title: Notieren, records: [note]}
      wiedervorlage: {title: Wiedervorlage, records: [note], next: offen}
      erinnern: {title: Erinnern, system_only: true}
      fertig: {title: Fertig, next: erledigt}
  erledigt: {title: Erledigt, final: true, outcome: erledigt}
"""
FIRE_CASES_PER_CLIENT = 20
READ_SAMPLE = 2000
CASEWORKERS = [f"cm{n:02d}" for n in range(1, 9)]  # engine.simulation.CASEWORKERS
P99_TARGET_MS = 50.0
FIRE_SHARE_TARGET = 0.30
PING = "/api/ping"


# --------------------------------------------------------------------------- helpers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "KIMFLOW_DATABASE_URL": url,
        "KIMFLOW_ENVIRONMENT": "test",
        "KIMFLOW_TICK_ENABLED": "false",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(BENCH)]),
    }


def _kimflow(url: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", *args], env=_env(url), cwd=ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"kimflow {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _loadavg() -> tuple[float, float, float]:
    one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    return float(one), float(five), float(fifteen)


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its direct children (uvicorn's workers), in seconds."""
    total = 0.0
    for p in [pid, *(int(c) for c in _children(pid))]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / _TICK
    return total


def _run_queue_wait(pid: int) -> dict[str, int]:
    """Per thread of the server (and of its workers): nanoseconds runnable but waiting for a CPU (schedstat)."""
    waits = {}
    for p in [pid, *(int(c) for c in _children(pid))]:
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                waits[f"{p}/{task.name}"] = int((task / "schedstat").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return waits


def _waited(before: dict[str, int], after: dict[str, int]) -> float:
    """Seconds waited between two snapshots (threads that ended in between are left out)."""
    return sum(value - before.get(task, 0) for task, value in after.items()) / 1e9


def _children(pid: int) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(entry.name)
            except (OSError, IndexError, ValueError):
                continue
    return found


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _short(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 and n >= 1000 else str(n)


# --------------------------------------------------------------------------- data


# Leaving a step with timers cancels them with ``UPDATE kf_timer WHERE visit_id = ? AND <pending>``,
# and kf_timer has no index on visit_id: every such fire scans all pending timers, so a
# 100,000-case simulation slows down quadratically (hours instead of ~20 minutes). The cache
# is therefore built with this index and the index is dropped afterwards, so that the
# benchmark measures the shipped schema (the ``timerindex`` experiment adds it back).
_HELPER_INDEX = "ix_bench_timer_visit_pending"
_HELPER_INDEX_SQL = (
    f"CREATE INDEX IF NOT EXISTS {_HELPER_INDEX} ON kf_timer (visit_id) WHERE fired_at IS NULL AND cancelled_at IS NULL"
)


def base_database(cases: int, months: int, seed: int, cache: Path) -> Path:
    """The cached simulated database, built with ``kimflow simulate`` if it is not there yet."""
    if cache.exists():
        print(f"data: {cache} (cached; delete it to simulate again)")
        return cache
    building = cache.with_name(f"{cache.stem}.building-{os.getpid()}.db")
    print(f"data: simulating {cases} cases over {months} months into {cache} (once; takes a while) ...", flush=True)
    started = time.perf_counter()
    try:
        url = f"sqlite:///{building}"
        _kimflow(url, "db", "upgrade")
        with sqlite3.connect(building) as conn:
            conn.execute(_HELPER_INDEX_SQL)
        _kimflow(url, "simulate", "--cases", str(cases), "--months", str(months), "--seed", str(seed))
        with sqlite3.connect(building) as conn:
            conn.execute(f"DROP INDEX {_HELPER_INDEX}")
        with sqlite3.connect(building) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        os.replace(building, cache)
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{building}{suffix}").unlink(missing_ok=True)
    print(f"data: simulated in {time.perf_counter() - started:.0f} s")
    return cache


@dataclass
class Setup:
    url: str
    simulated: int
    read_ids: list[int]
    fire_ids: list[list[int]]  # per client


def prepare(url: str, clients: int, seed: int) -> Setup:
    """Migrate, deploy the bench process, add the ``bench`` caseworker, open the cases to fire on."""
    from api_server import experiments

    _kimflow(url, "db", "upgrade")
    engine = Engine(url)
    try:
        if "timerindex" in experiments():
            with engine.store.transaction() as conn:
                conn.execute(sa.text(_HELPER_INDEX_SQL))
        engine.deploy_text(BENCH_PROCESS, actor="bench", file="bench_notiz.yaml")
        Accounts(engine.store, engine.clock).add_user("bench", PASSWORD, role="caseworker")
        with engine.store.read() as conn:
            ids = list(conn.execute(sa.text("SELECT id FROM kf_case ORDER BY id")).scalars())
        fire_ids = [
            [engine.open_case("bench_notiz", actor="bench").id for _ in range(FIRE_CASES_PER_CLIENT)]
            for _ in range(clients)
        ]
    finally:
        engine.store.dispose()
    rng = random.Random(seed)
    return Setup(url, len(ids), rng.sample(ids, min(READ_SAMPLE, len(ids))), fire_ids)


def current_versions(url: str, fire_ids: list[list[int]]) -> list[list[list[int]]]:
    """``[[case_id, version], ...]`` per client, read from the database before each fire run.

    wrk stops with requests in flight, which the server still commits: the versions are read
    until two reads half a second apart agree (at most 30 s), so that no client starts stale.
    """
    every = [i for ids in fire_ids for i in ids]
    engine = sa.create_engine(url if not url.startswith("postgresql://") else "postgresql+psycopg" + url[10:])
    query = sa.text("SELECT id, version FROM kf_case WHERE id IN :ids").bindparams(sa.bindparam("ids", expanding=True))
    try:
        previous: dict[int, int] = {}
        deadline = time.monotonic() + 30
        while True:
            with engine.connect() as conn:
                version = {row[0]: row[1] for row in conn.execute(query, {"ids": every})}
            if version == previous or time.monotonic() > deadline:
                break
            previous = version
            time.sleep(0.5)
    finally:
        engine.dispose()
    return [[[i, version[i]] for i in ids] for ids in fire_ids]


# --------------------------------------------------------------------------- server


class Server:
    """``kimflow serve`` (or ``bench/api_server.py`` when the app lacks ``/api/ping``) in a subprocess."""

    def __init__(self, url: str, workers: int, log: Path) -> None:
        from api_server import experiments, has_ping

        from api.app import create_app
        from api.settings import Settings

        self.native_ping = has_ping(create_app(Settings(database_url=url, environment="test", tick_enabled=False)))
        self.experiments = experiments()
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        where = ["--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers)]
        if self.native_ping and not self.experiments:
            self.command = [sys.executable, "-m", "api.cli", "serve", *where]
            self.label = "kimflow serve"
        else:
            self.command = [sys.executable, str(BENCH / "api_server.py"), *where]
            self.label = (
                "bench/api_server.py (kimflow serve's uvicorn.run"
                + ("" if self.native_ping else " + GET /api/ping; api.app has none")
                + ")"
            )
            if self.experiments:
                self.label += f" WITH EXPERIMENTS {','.join(self.experiments)} (not the shipped code)"
        self.log_path = log
        self.log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self.command, env=_env(url), cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{self.base}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise SystemExit("server did not start: " + log.read_text(errors="replace")[-3000:])
            time.sleep(0.2)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


# --------------------------------------------------------------------------- load generators


@dataclass
class Scenario:
    name: str
    paths: list[str] = field(default_factory=list)  # GET one of these at random
    action: str | None = None  # or POST this action to the bench cases

    @property
    def fire(self) -> bool:
        return self.action is not None


@dataclass
class Result:
    scenario: str
    round: int
    requests: int
    seconds: float
    p50: float
    p99: float
    mean: float
    max: float
    statuses: dict[str, int]
    server_cpu: float  # seconds
    server_wait: float  # seconds runnable but not running (waiting for a CPU)
    loadgen_cpu: float  # seconds
    load1: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


_LUA_COMMON = """
local threads = {}
local count = 0
function setup(thread)
  count = count + 1
  thread:set("tid", count)
  table.insert(threads, thread)
end
statuses = {}
function done(summary, latency, requests)
  local merged = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    if s then for k, v in pairs(s) do merged[k] = (merged[k] or 0) + v end end
  end
  local parts = {}
  for k, v in pairs(merged) do parts[#parts + 1] = string.format('"%s":%d', k, v) end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"seconds":%.6f,"p50":%.4f,"p99":%.4f,"mean":%.4f,"max":%.4f,' ..
    '"non2xx":%d,"socket_errors":%d,"statuses":{%s}}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency.mean / 1000, latency.max / 1000, e.status, e.connect + e.read + e.write + e.timeout,
    table.concat(parts, ",")))
end
"""

_LUA_GET = """
local paths = {%(paths)s}
local auth = %(auth)s
local reqs = {}
function init(args)
  math.randomseed(tid * 7919 + %(seed)d)
  for i, p in ipairs(paths) do reqs[i] = wrk.format("GET", p, {["Authorization"] = auth}) end
end
function request()
  return reqs[math.random(#reqs)]
end
"""

_LUA_FIRE = """
local cases = {%(cases)s}
local auth = %(auth)s
local mine, idx, n = nil, 0, 0
function init(args)
  mine = cases[tid]
end
function request()
  idx = idx %% #mine + 1
  n = n + 1
  local c = mine[idx]
  return wrk.format("POST", "/api/v1/cases/" .. c[1] .. "/actions/%(action)s",
    {["Authorization"] = auth, ["Content-Type"] = "application/json", ["If-Match"] = '"' .. c[2] .. '"'},
    '{"data":{"note":"n' .. tid .. '-' .. n .. '"}}')
end
function response(status, headers, body)
  local k = tostring(status)
  statuses[k] = (statuses[k] or 0) + 1
  if status == 200 then
    local tag = headers["etag"] or headers["ETag"]
    if tag then mine[idx][2] = tonumber((tag:gsub("[^0-9]", ""))) end
  end
end
"""


def _lua_str(s: str) -> str:
    return json.dumps(s)  # a JSON string literal is a valid Lua string literal for ASCII text


class LoadGenerator:
    def __init__(self, kind: str, base: str, token: str, clients: int, workdir: Path) -> None:
        if kind == "auto":
            kind = "wrk" if shutil.which("wrk") else "python"
        if kind == "wrk" and not shutil.which("wrk"):
            raise SystemExit("--loadgen wrk: wrk is not installed (apt-get install wrk)")
        self.kind = kind
        self.base = base
        self.port = int(base.rsplit(":", 1)[1])
        self.token = token
        self.clients = clients
        self.workdir = workdir
        self.seed = 0

    @property
    def label(self) -> str:
        if self.kind == "wrk":
            return f"wrk -t{self.clients} -c{self.clients} (C, separate process, Lua scripts)"
        return f"bench/api_load.py (asyncio, separate process), {self.clients} connections"

    def run(self, scenario: Scenario, seconds: float, fire_cases: list[list[list[int]]] | None) -> dict[str, Any]:
        self.seed += 1
        if self.kind == "wrk":
            return self._wrk(scenario, seconds, fire_cases)
        return self._python(scenario, seconds, fire_cases)

    def _wrk(self, scenario: Scenario, seconds: float, fire_cases: list[list[list[int]]] | None) -> dict[str, Any]:
        auth = _lua_str(f"Bearer {self.token}")
        if scenario.fire:
            assert fire_cases is not None
            cases = ",".join("{" + ",".join(f"{{{i},{v}}}" for i, v in mine) + "}" for mine in fire_cases)
            script = _LUA_COMMON + _LUA_FIRE % {"cases": cases, "auth": auth, "action": scenario.action}
        else:
            paths = ",".join(_lua_str(p) for p in scenario.paths)
            script = _LUA_COMMON + _LUA_GET % {"paths": paths, "auth": auth, "seed": self.seed}
        path = self.workdir / f"{scenario.name}.lua"
        path.write_text(script)
        command = [
            "wrk", f"-t{self.clients}", f"-c{self.clients}", f"-d{max(1, round(seconds))}s",
            "--timeout", "30s", "-s", str(path), self.base,
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        line = next((x for x in done.stdout.splitlines() if x.startswith("BENCHJSON ")), None)
        if done.returncode != 0 or line is None:
            raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        out = json.loads(line[len("BENCHJSON ") :])
        if not scenario.fire:  # without a response() hook wrk only counts non-2xx/3xx answers
            out["statuses"] = {
                "2xx": out["requests"] - out["non2xx"],
                **({"other": out["non2xx"]} if out["non2xx"] else {}),
            }
        if out["socket_errors"]:
            out["statuses"]["socket errors"] = out["socket_errors"]
        return out

    def _python(self, scenario: Scenario, seconds: float, fire_cases: list[list[list[int]]] | None) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": self.port,
            "clients": self.clients,
            "seconds": seconds,
            "seed": self.seed,
            "headers": {"Authorization": f"Bearer {self.token}"},
        }
        if scenario.fire:
            spec["fire"] = {"action": scenario.action, "cases": fire_cases}
        else:
            spec["get"] = scenario.paths
        done = subprocess.run(
            [sys.executable, str(BENCH / "api_load.py")],
            input=json.dumps(spec),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"bench/api_load.py failed:\n{done.stdout}\n{done.stderr}")
        return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- measuring


def scenarios(setup: Setup, with_ping: bool) -> list[Scenario]:
    listed = [
        Scenario("health", ["/api/health"]),
        Scenario("read", [f"/api/v1/cases/{i}" for i in setup.read_ids]),
        Scenario("worklist", ["/api/v1/cases?status=open&limit=50"]),
        Scenario(
            "worklist-due", [f"/api/v1/cases?status=open&assignee={cm}&sort=due_at&limit=50" for cm in CASEWORKERS]
        ),
        Scenario("fire", action="notieren"),
        Scenario("fire-step", action="wiedervorlage"),
    ]
    return ([Scenario("ping", [PING])] if with_ping else []) + listed


def measure(
    gen: LoadGenerator, server: Server, setup: Setup, scenario: Scenario, seconds: float, round_no: int
) -> Result:
    fire_cases = current_versions(setup.url, setup.fire_ids) if scenario.fire else None
    load1 = _loadavg()[0]
    cpu0, wait0, gen0 = _cpu_seconds(server.pid), _run_queue_wait(server.pid), _children_cpu()
    out = gen.run(scenario, seconds, fire_cases)
    cpu1, wait1, gen1 = _cpu_seconds(server.pid), _run_queue_wait(server.pid), _children_cpu()
    return Result(
        scenario.name,
        round_no,
        out["requests"],
        out["seconds"],
        out["p50"],
        out["p99"],
        out["mean"],
        out["max"],
        out["statuses"],
        cpu1 - cpu0,
        _waited(wait0, wait1),
        gen1 - gen0,
        max(load1, _loadavg()[0]),
    )


HEADER = (
    f"{'scenario':<13}{'round':>5}{'requests':>9}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}"
    f"{'vs ping':>9}{'vs health':>10}{'srv ms/req':>11}{'srv CPU':>8}{'srv wait':>9}{'gen CPU':>8}{'load':>6}"
    "  statuses"
)


def _line(r: Result, ping: float | None, health: float | None) -> str:
    def share(base: float | None) -> str:
        return f"{r.rps / base * 100:.0f} %" if base else "-"

    cpu_per_req = r.server_cpu / r.requests * 1000 if r.requests else 0.0
    return (
        f"{r.scenario:<13}{r.round:>5}{r.requests:>9}{r.rps:>8.0f}{r.p50:>8.1f}{r.p99:>8.1f}{r.max:>8.0f}"
        f"{share(ping):>9}{share(health):>10}{cpu_per_req:>11.2f}{r.server_cpu / r.seconds * 100:>7.0f}%"
        f"{r.server_wait / r.seconds * 100:>8.0f}%{r.loadgen_cpu / r.seconds * 100:>7.0f}%{r.load1:>6.1f}  {r.statuses}"
    )


def summarise(results: list[Result], baseline: str) -> None:
    by: dict[str, list[Result]] = {}
    for r in results:
        by.setdefault(r.scenario, []).append(r)
    rounds = max(r.round for r in results)
    loads = [r.load1 for r in results]
    print(
        f"\nsummary: median of {rounds} round(s); throughput shares against '{baseline}' of the same round; "
        f"load average (1 min) {min(loads):.1f}-{max(loads):.1f}"
    )

    def share_of(name: str) -> float:
        return statistics.median(r.rps / b.rps for r in by[name] for b in by[baseline] if b.round == r.round and b.rps)

    verdicts = []
    for name, rs in by.items():
        rps = statistics.median(r.rps for r in rs)
        p50 = statistics.median(r.p50 for r in rs)
        p99 = statistics.median(r.p99 for r in rs)
        text = f"  {name:<13} {rps:>7.0f} req/s   p50 {p50:>6.1f} ms   p99 {p99:>6.1f} ms"
        if name != baseline:
            text += f"   {share_of(name) * 100:>4.0f} % of {baseline}"
        if name in ("read", "fire", "fire-step"):
            ok = p99 < P99_TARGET_MS
            text += f"   p99 target < {P99_TARGET_MS:.0f} ms: {'PASS' if ok else 'FAIL'}"
            verdicts.append(ok)
        if name in ("fire", "fire-step"):
            ok = share_of(name) >= FIRE_SHARE_TARGET
            text += f"; throughput target >= {FIRE_SHARE_TARGET * 100:.0f} %: {'PASS' if ok else 'FAIL'}"
            verdicts.append(ok)
        print(text)
    if baseline != "ping":
        print("  (no trivial endpoint: the shares are against /api/health, which itself asks the database)")
    print(f"targets met: {sum(verdicts)} of {len(verdicts)}")


# --------------------------------------------------------------------------- profiling


def _area(frame: str) -> str:
    where = "(" + frame.rsplit("(", 1)[-1]
    for marker, name in (
        ("sqlalchemy", "SQLAlchemy"),
        ("sqlmodel", "SQLAlchemy"),
        ("pydantic", "pydantic"),
        ("fastapi", "FastAPI"),
        ("starlette", "Starlette"),
        ("uvicorn", "uvicorn"),
        ("anyio", "anyio (threadpool)"),
        ("alembic", "Alembic"),
        ("logging", "logging"),
        ("json", "json"),
        ("transitions", "transitions"),
        ("(engine/", "kimflow engine/"),
        ("(api/", "kimflow api/"),
        ("asyncio", "asyncio"),
        ("threading", "threading"),
        ("argon2", "argon2"),
        ("psycopg", "psycopg"),
    ):
        if marker in where:
            return name
    return where.split(":")[0].rsplit("/", 1)[-1].rstrip(")") or "?"


_INTERESTING = (
    "(engine/",
    "(api/",
    "do_commit",
    "do_execute",
    "fetchone",
    "fetchall",
    "raw_connection",
    "Handler.handle",
    "serialize_response",
    "jsonable_encoder",
    "run_in_threadpool",
    "solve_dependencies",
    "run_asgi",
)


def _frame(raw: str) -> str:
    """``func (path/to/file.py:123)`` without the line number and with a short path."""
    name, _, where = raw.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "lib/python3.", "/main/"):
        if marker in where:
            where = where.split(marker, 1)[1]
            if marker == "lib/python3.":
                where = where.split("/", 1)[-1]
            break
    return f"{name} ({where})"


def _idle(frames: list[str]) -> bool:
    """A thread-pool worker waiting for work, or the event loop waiting in ``epoll`` (C frames are not shown)."""
    leaf = frames[-1]
    if leaf.startswith(("Condition.wait ", "Queue.get ")) and any(f.startswith("WorkerThread.run ") for f in frames):
        return True
    return leaf.startswith("Runner.run ") or leaf.startswith("Thread.join ") or leaf.startswith("Event.wait ")


def summarise_profile(raw: Path, requests: int, rate: int, wall: bool, top: int = 15) -> str:
    """Own time by library and by function, and inclusive time of kimflow's functions, from py-spy raw stacks.

    ``ms/req`` is sampled thread time per request: samples x (1000 / rate) / requests. With
    ``--gil`` (``wall`` false) that is the time the interpreter spent on a request; with
    ``--idle`` (``wall`` true; idle pool workers and the waiting event loop left out) it is
    the wall time request threads spent there, waiting for the GIL, a lock or an fsync included.
    """
    own: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_frame(f) for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames or (wall and _idle(frames)):
            continue
        total += n
        own[frames[-1]] += n
        areas[_area(frames[-1])] += n
        for f in set(frames):
            if any(marker in f for marker in _INTERESTING):
                inclusive[f] += n
    if not total:
        return "    (no samples)"
    per = 1000 / rate / max(requests, 1)

    def row(n: int, name: str) -> str:
        return f"      {n / total * 100:5.1f} %  {n * per:6.2f} ms/req  {name}"

    what = "wall time of busy threads" if wall else "GIL held"
    out = [f"    {total} samples ({what}) = {total * per:.2f} ms/req; own time by library:"]
    out += [row(n, name) for name, n in areas.most_common(10)]
    out.append("    own time by function:")
    out += [row(n, name) for name, n in own.most_common(top)]
    out.append("    inclusive time (kimflow functions; driver execute/commit/fetch; logging; serialisation):")
    out += [row(n, name) for name, n in inclusive.most_common(top + 10)]
    return "\n".join(out)


PROFILE_RATE = 100


def profile(
    gen: LoadGenerator, server: Server, setup: Setup, todo: list[Scenario], seconds: float, where: Path
) -> None:
    if not shutil.which("py-spy"):
        print("\nprofile: py-spy is not installed (pip install py-spy); skipped")
        return
    where.mkdir(parents=True, exist_ok=True)
    print(
        f"\nprofile: py-spy record on the server, {PROFILE_RATE} Hz, {seconds:.0f} s per scenario and mode: "
        "'cpu' = --gil (the thread holding the GIL), 'wall' = --idle --nonblocking (every thread, less "
        "the idle pool workers and the event loop waiting in epoll)"
    )
    for scenario in todo:
        for mode in ("cpu", "wall"):
            if mode == "wall" and scenario.name in ("ping", "health"):
                continue
            raw = where / f"{scenario.name}-{mode}.txt"
            spy = subprocess.Popen(
                ["py-spy", "record", "--pid", str(server.pid), "--duration", str(round(seconds) + 1),
                 "--rate", str(PROFILE_RATE), *(["--gil"] if mode == "cpu" else ["--idle", "--nonblocking"]),
                 "--format", "raw",
                 "--output", str(raw)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )  # fmt: skip
            time.sleep(0.5)
            result = measure(gen, server, setup, scenario, seconds, 0)
            _, err = spy.communicate(timeout=seconds + 60)
            print(
                f"  {scenario.name} [{mode}]: {result.rps:.0f} req/s under the profiler, p50 {result.p50:.1f} ms, "
                f"p99 {result.p99:.1f} ms; server CPU {result.server_cpu / max(result.requests, 1) * 1000:.2f} "
                f"ms/req, {result.server_cpu / result.seconds * 100:.0f} % of a core, waited for a CPU "
                f"{result.server_wait / result.seconds * 100:.0f} % of the time; load {result.load1:.1f}"
            )
            if not raw.exists():
                print(f"    py-spy failed: {err.decode(errors='replace').strip()[-500:]}")
                continue
            # the sampling window is about one second longer than the measurement: scale to its requests
            requests = round(result.rps * (seconds + 1))
            print(summarise_profile(raw, requests, PROFILE_RATE, wall=mode == "wall"))
    print(f"  raw stacks in {where} (flamegraph.pl or speedscope can draw them)")


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000, help="simulated cases (issue #4: 100000)")
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cache", type=Path, help="the cached simulated SQLite file (default: in the temp dir)")
    parser.add_argument("--database", help="simulate into this database URL instead (e.g. PostgreSQL); no cache")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0, help="per scenario and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds per scenario before round 1")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers (several only with PostgreSQL)")
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--only", action="append", help="run only these scenarios (and the baselines)")
    parser.add_argument("--profile", action="store_true", help="afterwards, profile the server with py-spy")
    parser.add_argument("--profile-seconds", type=float, default=10.0)
    parser.add_argument("--profile-dir", type=Path, help="where py-spy's raw stacks go (default: a temp dir)")
    parser.add_argument("--quick", action="store_true", help="1,000 cases, 2 s, one round: a smoke run")
    parser.add_argument("--prepare-only", action="store_true", help="build the cached database and stop")
    args = parser.parse_args()
    if args.quick:
        args.cases, args.seconds, args.rounds, args.warmup = 1000, 2.0, 1, 0.5

    with tempfile.TemporaryDirectory(prefix="kimflow-bench-api-") as tmp_name:
        tmp = Path(tmp_name)
        if args.database:
            url = args.database
            started = time.perf_counter()
            _kimflow(
                url, "simulate", "--cases", str(args.cases), "--months", str(args.months), "--seed", str(args.seed)
            )
            print(f"data: simulated {args.cases} cases into {url} in {time.perf_counter() - started:.0f} s")
        else:
            cache = (
                args.cache
                or Path(tempfile.gettempdir()) / f"bench_api_{_short(args.cases)}_{args.months}m_seed{args.seed}.db"
            )
            source = base_database(args.cases, args.months, args.seed, cache)
            if args.prepare_only:
                return
            shutil.copyfile(source, tmp / "bench.db")
            url = f"sqlite:///{tmp / 'bench.db'}"
        setup = prepare(url, args.clients, args.seed)
        server = Server(url, args.workers, tmp / "server.log")
        try:
            token = httpx.post(
                f"{server.base}/api/v1/auth/token", data={"username": "bench", "password": PASSWORD}, timeout=30
            ).json()["access_token"]
            gen = LoadGenerator(args.loadgen, server.base, token, args.clients, tmp)
            with_ping = httpx.get(f"{server.base}{PING}", timeout=5).status_code == 200
            baseline = "ping" if with_ping else "health"
            todo = scenarios(setup, with_ping)
            if args.only:
                todo = [s for s in todo if s.name in args.only or s.name in ("ping", "health")]
            print(
                f"kimflow API: {setup.simulated} simulated cases "
                f"(+{args.clients * FIRE_CASES_PER_CLIENT} bench cases), "
                f"{args.clients} concurrent clients, {args.seconds:.0f} s per scenario, {args.rounds} round(s)\n"
                f"server: {server.label}, {args.workers} worker(s), 127.0.0.1, ticks off, "
                f"{'SQLite (WAL, synchronous=FULL)' if url.startswith('sqlite') else url.split('://')[0]}\n"
                f"load: {gen.label}; trivial endpoint: "
                + (f"GET {PING}" if with_ping else "none (GET /api/health instead)")
                + f"\nmachine: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in _loadavg())}\n"
                "srv ms/req = server CPU per request; srv/gen CPU = server's and load generator's CPU, % of one core;\n"
                "srv wait = time the server's threads were runnable but had no CPU (sum over threads, % of the run);\n"
                "load = 1-minute load average at the start or end of the run, whichever is higher\n"
            )
            if args.warmup > 0:
                for scenario in todo:
                    measure(gen, server, setup, scenario, args.warmup, 0)
            print(HEADER)
            results: list[Result] = []
            for round_no in range(1, args.rounds + 1):
                this_round: list[Result] = []
                for scenario in todo:
                    this_round.append(measure(gen, server, setup, scenario, args.seconds, round_no))
                ping = next((r.rps for r in this_round if r.scenario == "ping"), None)
                health = next((r.rps for r in this_round if r.scenario == "health"), None)
                for r in this_round:
                    print(_line(r, ping, health), flush=True)
                results += this_round
            summarise(results, baseline)
            if args.profile:
                if args.workers != 1:
                    print("\nprofile: only with one worker; skipped")
                else:
                    profile(gen, server, setup, todo, args.profile_seconds, args.profile_dir or tmp / "profile")
                    if args.profile_dir is None:
                        print("  (the temp dir is removed at exit: give --profile-dir to keep them)")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
