"""Two uvicorn workers on PostgreSQL, concurrent clients on the same cases (issue #4 §8).

``kimflow serve --workers 2`` runs in a subprocess on 127.0.0.1 (a free port) against a
private PostgreSQL schema. Threads with their own HTTP connections, released together by a
barrier, fire on the same cases with the same ``If-Match``:

* per case version exactly one request succeeds, every other one gets 412;
* no event is lost: each case's history has 1 + (its successes) events, its version agrees;
* requests retried with the same ``Idempotency-Key`` (concurrently, and once more afterwards)
  change the case once and all get the same response.

Every loop is bounded in count, every wait in time.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from engine import Engine
from engine.accounts import Accounts
from tests.api.conftest import FAST_HASHER, PASSWORD
from tests.conftest import postgres_schema
from tests.factories import process_yaml

pytestmark = pytest.mark.postgres

WORKERS = 2
CASES = 4  # cases raced on at once
CONTENDERS = 6  # concurrent requests per case and version
ROUNDS = 4  # versions raced on per case
DUPLICATES = 4  # concurrent copies of one idempotent request
STARTUP = 25.0  # seconds the server may take to start both workers
TIMEOUT = 15.0  # seconds per HTTP request


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[str]:
    """The base URL of ``kimflow serve --workers 2`` on a fresh PostgreSQL schema, with user ``cw``."""
    with postgres_schema() as url:
        engine = Engine(url)
        engine.upgrade_schema()
        engine.deploy_text(process_yaml(), actor="setup", file="intake.yaml")
        Accounts(engine.store, engine.clock, hasher=FAST_HASHER).add_user("cw", PASSWORD, role="caseworker", team="n")
        engine.store.dispose()
        port = _free_port()
        env = {
            **os.environ,
            "KIMFLOW_ENVIRONMENT": "test",
            "KIMFLOW_DATABASE_URL": url,
            "KIMFLOW_TICK_ENABLED": "false",
            "PYTHONUNBUFFERED": "1",
        }
        log = tmp_path / "server.log"
        command = [sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
        with log.open("wb") as output:
            process = subprocess.Popen(
                [*command, "--workers", str(WORKERS)], env=env, stdout=output, stderr=subprocess.STDOUT
            )
        try:
            deadline = time.monotonic() + STARTUP
            # Both workers must be serving before the race starts, or one would take every request.
            while log.read_text(errors="replace").count("Application startup complete") < WORKERS:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"server with {WORKERS} workers did not start: {log.read_text(errors='replace')}")
                time.sleep(0.1)
            yield f"http://127.0.0.1:{port}"
        finally:
            _stop(process)


def _capture(client: httpx.Client, case_id: int, note: str, version: int, *, key: str | None = None) -> Any:
    """Fire ``capture`` (stays in the step, records a note) with ``If-Match: "version"`` and an optional key."""
    headers = {"If-Match": f'"{version}"', **({"Idempotency-Key": key} if key else {})}
    return client.post(f"/api/v1/cases/{case_id}/actions/capture", json={"data": {"note": note}}, headers=headers)


def _together(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls in threads released at once by a barrier; their results in order."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        barrier.wait(timeout=TIMEOUT)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(run, call) for call in calls]
        return [f.result(timeout=TIMEOUT * 2) for f in futures]


def test_two_workers_one_winner_per_version_no_lost_events_no_duplicates(two_workers: str) -> None:
    base = two_workers
    token = httpx.post(f"{base}/api/v1/auth/token", data={"username": "cw", "password": PASSWORD}, timeout=TIMEOUT)
    assert token.status_code == 200, token.text
    auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
    # One connection per thread slot, so the kernel spreads them over both workers' accept queues.
    clients = [httpx.Client(base_url=base, headers=auth, timeout=TIMEOUT) for _ in range(CASES * CONTENDERS)]
    try:
        opened = [clients[i].post("/api/v1/cases", json={"process_id": "intake", "data": {}}) for i in range(CASES)]
        assert all(r.status_code == 201 for r in opened), [r.text for r in opened]
        case_ids = [r.json()["id"] for r in opened]
        versions = dict.fromkeys(case_ids, 1)
        successes = dict.fromkeys(case_ids, 0)

        # 1. Races on versions: every contender of a case sends the same If-Match, different data.
        for round_ in range(ROUNDS):
            who = [(case_id, k) for case_id in case_ids for k in range(CONTENDERS)]
            responses = _together(
                [
                    partial(_capture, clients[i], case_id, f"r{round_}-k{k}", versions[case_id])
                    for i, (case_id, k) in enumerate(who)
                ]
            )
            for case_id in case_ids:
                answers = [(k, r) for (cid, k), r in zip(who, responses, strict=True) if cid == case_id]
                statuses = sorted(r.status_code for _, r in answers)
                assert statuses == [200] + [412] * (CONTENDERS - 1), (round_, case_id, [r.text for _, r in answers])
                winner_k, winner = next((k, r) for k, r in answers if r.status_code == 200)
                assert winner.json()["version"] == versions[case_id] + 1
                assert winner.json()["data"]["note"] == f"r{round_}-k{winner_k}"
                for _, loser in answers:
                    if loser.status_code == 412:
                        assert loser.headers["content-type"] == "application/problem+json"
                        assert loser.json()["expected_version"] == versions[case_id]
                versions[case_id] += 1
                successes[case_id] += 1

        # 2. Idempotent retries: the same request with the same key, several copies at once, then once more.
        owners = [case_id for case_id in case_ids for _ in range(DUPLICATES)]
        responses = _together(
            [
                partial(_capture, clients[i], case_id, "idempotent", versions[case_id], key=f"key-{case_id}")
                for i, case_id in enumerate(owners)
            ]
        )
        results = list(zip(owners, responses, strict=True))
        for case_id in case_ids:
            copies = [r for cid, r in results if cid == case_id]
            late = _capture(clients[0], case_id, "idempotent", versions[case_id], key=f"key-{case_id}")
            copies.append(late)
            assert {r.status_code for r in copies} == {200}, [r.text for r in copies]
            bodies = [r.json() for r in copies]
            assert all(b == bodies[0] for b in bodies), bodies
            assert {r.headers["etag"] for r in copies} == {f'"{versions[case_id] + 1}"'}
            assert late.headers.get("idempotent-replayed") == "true"
            versions[case_id] += 1
            successes[case_id] += 1

        # 3. Nothing lost, nothing doubled: history and version agree with the successes counted.
        for case_id in case_ids:
            history = clients[0].get(f"/api/v1/cases/{case_id}/history")
            assert history.status_code == 200, history.text
            kinds = [e["kind"] for e in history.json()["data"]]
            assert kinds == ["opened"] + ["fired"] * successes[case_id], (case_id, kinds)
            case = clients[0].get(f"/api/v1/cases/{case_id}")
            assert case.headers["etag"] == f'"{1 + successes[case_id]}"' == f'"{versions[case_id]}"'
            assert case.json()["data"]["note"] == "idempotent"
    finally:
        for client in clients:
            client.close()
