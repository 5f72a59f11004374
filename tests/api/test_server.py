"""Real HTTP: ``kimflow serve`` (uvicorn) in a subprocess on 127.0.0.1, driven by an HTTP client."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from engine import Engine
from engine.accounts import Accounts
from tests.api.conftest import FAST_HASHER, PASSWORD
from tests.factories import process_yaml


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'kimflow.db'}"
    engine = Engine(url)
    engine.upgrade_schema()
    engine.deploy_text(process_yaml(), actor="setup", file="intake.yaml")
    Accounts(engine.store, engine.clock, hasher=FAST_HASHER).add_user("cw", PASSWORD, role="caseworker", team="nord")
    engine.store.dispose()
    port = _free_port()
    env = {**os.environ, "KIMFLOW_ENVIRONMENT": "test", "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "--database", url, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            process.kill()
            process.wait()
            pytest.fail(f"server did not start: {log.read_text(errors='replace')}")
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_login_open_fire_and_retry_over_real_http(server: str) -> None:
    with httpx.Client(base_url=server, timeout=10) as client:
        token = client.post("/api/v1/auth/token", data={"username": "cw", "password": PASSWORD}).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        opened = client.post("/api/v1/cases", json={"process_id": "intake", "data": {"name": "Amira"}}, headers=auth)
        assert opened.status_code == 201 and opened.headers["etag"] == '"1"'
        case_id = opened.json()["id"]
        fire = {**auth, "If-Match": opened.headers["etag"], "Idempotency-Key": "k1"}
        first = client.post(f"/api/v1/cases/{case_id}/actions/forward", json={}, headers=fire)
        retry = client.post(f"/api/v1/cases/{case_id}/actions/forward", json={}, headers=fire)
        assert first.status_code == retry.status_code == 200 and first.json() == retry.json()
        history = client.get(f"/api/v1/cases/{case_id}/history", headers=auth).json()
        assert [e["kind"] for e in history["data"]] == ["opened", "fired"]
        problem = client.get("/api/v1/cases/999", headers={**auth, "Accept-Language": "en"})
        assert problem.headers["content-type"] == "application/problem+json"
        assert problem.json()["title"] == "Case not found"
