"""HTTP API latency and throughput under concurrent clients (issue #4 §9).

``kimflow simulate`` fills a database (``--cases``; the issue's target is 100,000, the
default here is smaller and the output says how many), ``kimflow serve`` runs on
127.0.0.1 (background ticks off), and ``--clients`` threads, each with its own
keep-alive connection, send requests for a fixed time per scenario:

``health``   ``GET /api/health`` — the baseline: a trivial JSON endpoint of the same app
             (it does ask the database for its schema revision);
``read``     ``GET /api/v1/cases/{id}`` of random simulated cases (data, actions, history);
``worklist`` ``GET /api/v1/cases?status=open&limit=50`` (first page of the worklist);
``fire``     ``POST /api/v1/cases/{id}/actions/notieren`` with ``If-Match``: each client
             fires on cases of its own of a one-step bench process (no 412s by design).

The scenarios run one after another, alternating with the baseline, and each line is
printed beside the baseline's throughput. The clients are Python threads in one
process: on a small machine they compete with the server for CPU, so the absolute
figures are a lower bound; the ratios are what to compare.

Run: ``python bench/bench_api.py [--cases 5000] [--clients 16] [--seconds 5] [--workers 1]
[--database URL]`` (several workers only with a PostgreSQL URL).
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx2 as httpx  # noqa: E402

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
    actions:
      notieren: {title: Notieren, records: [note]}
      fertig: {title: Fertig, next: erledigt}
  erledigt: {title: Erledigt, final: true, outcome: erledigt}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _kimflow(url: str, *args: str) -> str:
    env = {**os.environ, "KIMFLOW_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", *args], env=env, cwd=ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"kimflow {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _load(
    base: str, headers: dict[str, str], clients: int, seconds: float, request: Callable[[httpx.Client, int], int]
) -> dict[str, Any]:
    """``clients`` threads call ``request(client, index)`` for ``seconds``; latencies and status counts."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)
    stop_at: list[float] = [0.0]

    def run(index: int) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            request(client, index)  # warm the connection
            barrier.wait(timeout=60)
            mine = latencies[index]
            while time.perf_counter() < stop_at[0]:
                started = time.perf_counter()
                status = request(client, index)
                mine.append(time.perf_counter() - started)
                with lock:
                    statuses[status] = statuses.get(status, 0) + 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + seconds + 0.05
    barrier.wait(timeout=60)
    started = time.perf_counter()
    for t in threads:
        t.join(timeout=seconds + 120)
    elapsed = time.perf_counter() - started
    every = [x for part in latencies for x in part]
    return {
        "requests": len(every),
        "rps": len(every) / elapsed,
        "p50": _percentile(every, 0.50) * 1000,
        "p99": _percentile(every, 0.99) * 1000,
        "mean": statistics.fmean(every) * 1000 if every else 0.0,
        "statuses": statuses,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=5000, help="simulated cases (the issue's target: 100000)")
    parser.add_argument("--months", type=int, default=6)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0, help="per scenario")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--database", help="a database URL (default: a SQLite file in a temporary directory)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kimflow-bench-api-") as tmp:
        url = args.database or f"sqlite:///{Path(tmp) / 'bench.db'}"
        started = time.perf_counter()
        _kimflow(url, "simulate", "--cases", str(args.cases), "--months", str(args.months), "--seed", "7")
        print(f"simulated {args.cases} cases over {args.months} months in {time.perf_counter() - started:.0f} s")
        engine = Engine(url)
        engine.deploy_text(BENCH_PROCESS, actor="bench", file="bench_notiz.yaml")
        Accounts(engine.store, engine.clock).add_user("bench", PASSWORD, role="coordinator")
        engine.store.dispose()

        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "KIMFLOW_DATABASE_URL": url,
            "KIMFLOW_ENVIRONMENT": "test",
            "KIMFLOW_TICK_ENABLED": "false",
            "PYTHONPATH": str(ROOT),
        }
        command = [sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
        log = open(Path(tmp) / "server.log", "wb")  # noqa: SIM115 - closed in finally
        server = subprocess.Popen(
            [*command, "--workers", str(args.workers)],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("server did not start: " + (Path(tmp) / "server.log").read_text(errors="replace"))
                time.sleep(0.2)
            token = httpx.post(f"{base}/api/v1/auth/token", data={"username": "bench", "password": PASSWORD}).json()
            headers = {"Authorization": f"Bearer {token['access_token']}"}
            run_scenarios(base, headers, args)
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            log.close()


def run_scenarios(base: str, headers: dict[str, str], args: argparse.Namespace) -> None:
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        ids: list[int] = []
        cursor = None
        while len(ids) < 2000:
            page = client.get("/api/v1/cases", params={"limit": 500, **({"cursor": cursor} if cursor else {})}).json()
            ids += [c["id"] for c in page["data"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        per_client = 20
        own: list[list[list[int]]] = []  # per client: [case_id, version]
        for _ in range(args.clients):
            mine = []
            for _ in range(per_client):
                opened = client.post("/api/v1/cases", json={"process_id": "bench_notiz", "data": {}})
                mine.append([opened.json()["id"], opened.json()["version"]])
            own.append(mine)
    rng = random.Random(7)
    counters = [0] * args.clients

    def health(c: httpx.Client, _: int) -> int:
        return c.get("/api/health").status_code

    def read(c: httpx.Client, _: int) -> int:
        return c.get(f"/api/v1/cases/{rng.choice(ids)}").status_code

    def worklist(c: httpx.Client, _: int) -> int:
        return c.get("/api/v1/cases", params={"status": "open", "limit": 50}).status_code

    def fire(c: httpx.Client, index: int) -> int:
        counters[index] += 1
        case = own[index][counters[index] % per_client]
        r = c.post(
            f"/api/v1/cases/{case[0]}/actions/notieren",
            json={"data": {"note": f"n{counters[index]}"}},
            headers={"If-Match": f'"{case[1]}"'},
        )
        if r.status_code == 200:
            case[1] = r.json()["version"]
        return r.status_code

    print(
        f"kimflow API, {args.cases} simulated cases (+ {args.clients * per_client} bench cases), "
        f"{args.clients} concurrent clients, {args.workers} worker(s), {args.seconds:.0f} s per scenario"
    )
    print(f"{'scenario':<10} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}   vs. health req/s   statuses")
    for name, request in (("read", read), ("worklist", worklist), ("fire", fire)):
        baseline = _load(base, headers, args.clients, args.seconds, health)
        result = _load(base, headers, args.clients, args.seconds, request)
        for label, r in (("health", baseline), (name, result)):
            ratio = f"{r['rps'] / baseline['rps'] * 100:5.0f} %" if baseline["rps"] else "-"
            print(
                f"{label:<10} {r['requests']:>9} {r['rps']:>8.0f} {r['p50']:>8.1f} {r['p99']:>8.1f}   "
                f"{ratio:>16}   {r['statuses']}"
            )


if __name__ == "__main__":
    main()
