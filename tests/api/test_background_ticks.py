"""The server's background ticker: due timers fire without anyone calling ``/timers/tick``.

The app runs with a short ``tick_interval`` on the fixed test clock; the test moves the
clock past a timer's due date and polls the case's history over the API (bounded) until
the timer's event appears. Runs on SQLite and PostgreSQL (the ``database_url`` fixture).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app, tick_forever
from api.settings import Settings
from engine import Engine, FixedClock
from engine.accounts import Accounts
from engine.cases import TickResult
from tests.api.conftest import FAST_HASHER, PASSWORD
from tests.factories import STEPS, process_yaml

INTERVAL = 0.05  # seconds between background ticks in these tests
WAIT = 5.0  # how long a test waits at most for the ticker

TIMED_STEPS = copy.deepcopy(STEPS)
TIMED_STEPS["intake"]["actions"]["remind"] = {"title": "Erinnern", "system_only": True}
TIMED_STEPS["intake"]["timers"] = [{"after": "1 Woche", "action": "remind"}]


def _wait_for(condition: Callable[[], Any], *, timeout: float = WAIT) -> Any:
    """Poll ``condition`` until it returns something truthy (and return that), at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


def _app(engine: Engine, settings: Settings, clock: FixedClock, **overrides: Any) -> FastAPI:
    engine.deploy_text(process_yaml(steps=TIMED_STEPS), actor="setup", file="intake.yaml")
    Accounts(engine.store, clock, hasher=FAST_HASHER).add_user("cw", PASSWORD, role="caseworker", team="nord")
    return create_app(
        settings.model_copy(update={"tick_enabled": True, "tick_interval": INTERVAL, **overrides}), clock=clock
    )


def _token(engine: Engine, clock: FixedClock) -> dict[str, str]:
    accounts = Accounts(engine.store, clock, hasher=FAST_HASHER)
    user = next(u for u in accounts.list_users() if u.name == "cw")
    return {"Authorization": f"Bearer {accounts.issue_token(user, timedelta(minutes=30)).token}"}


@pytest.fixture
def ticking(engine: Engine, test_settings: Settings, clock: FixedClock) -> Iterator[tuple[TestClient, FastAPI]]:
    app = _app(engine, test_settings, clock)
    with TestClient(app) as client:
        yield client, app
    ticker = app.state.ticker
    assert ticker is not None and ticker.done(), "the ticker must end with the app"


def _kinds(client: TestClient, case_id: int, auth: dict[str, str]) -> list[tuple[str, str | None]]:
    response = client.get(f"/api/v1/cases/{case_id}/history", headers=auth)
    assert response.status_code == 200, response.text
    return [(e["kind"], e.get("action")) for e in response.json()["data"]]


def test_a_due_timer_fires_in_the_background_once(
    ticking: tuple[TestClient, FastAPI], engine: Engine, clock: FixedClock
) -> None:
    client, _ = ticking
    auth = _token(engine, clock)
    opened = client.post("/api/v1/cases", json={"process_id": "intake", "data": {}}, headers=auth)
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["id"]

    time.sleep(INTERVAL * 4)  # several ticks while nothing is due
    assert _kinds(client, case_id, auth) == [("opened", None)]

    clock.advance(timedelta(days=8))  # past the end of Monday 9 March: the week is over
    auth = _token(engine, clock)  # the old token expired with the clock move
    fired = _wait_for(lambda: ("fired", "remind") in _kinds(client, case_id, auth))
    assert fired, f"the timer did not fire within {WAIT} s: {_kinds(client, case_id, auth)}"

    time.sleep(INTERVAL * 4)  # more ticks: the timer must not fire again
    assert _kinds(client, case_id, auth) == [("opened", None), ("fired", "remind")]
    case = client.get(f"/api/v1/cases/{case_id}", headers=auth)
    assert case.headers["etag"] == '"2"'


def test_a_failing_tick_is_logged_and_the_ticker_carries_on(
    ticking: tuple[TestClient, FastAPI], caplog: pytest.LogCaptureFixture
) -> None:
    _, app = ticking
    engine = app.state.engine
    real_tick = engine.tick
    calls: list[int] = []

    def flaky_tick(**kwargs: Any) -> TickResult:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return real_tick(**kwargs)  # type: ignore[no-any-return]

    with caplog.at_level(logging.ERROR, logger="kimflow.api"):
        engine.tick = flaky_tick
        try:
            assert _wait_for(lambda: len(calls) >= 3), "the ticker stopped after a failure"
        finally:
            del engine.tick  # back to the class's method
    assert not app.state.ticker.done()
    assert any("background tick failed" in r.getMessage() for r in caplog.records)


def test_the_ticker_can_be_switched_off(engine: Engine, test_settings: Settings, clock: FixedClock) -> None:
    app = _app(engine, test_settings, clock, tick_enabled=False)
    with TestClient(app) as client:
        assert app.state.ticker is None
        auth = _token(engine, clock)
        case_id = client.post("/api/v1/cases", json={"process_id": "intake", "data": {}}, headers=auth).json()["id"]
        clock.advance(timedelta(days=8))
        auth = _token(engine, clock)
        time.sleep(INTERVAL * 4)
        assert _kinds(client, case_id, auth) == [("opened", None)]


def test_tick_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIMFLOW_ENVIRONMENT", "test")
    monkeypatch.setenv("KIMFLOW_TICK_INTERVAL", "2.5")
    monkeypatch.setenv("KIMFLOW_TICK_ENABLED", "false")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.tick_interval, settings.tick_enabled) == (2.5, False)
    monkeypatch.delenv("KIMFLOW_TICK_INTERVAL")
    monkeypatch.delenv("KIMFLOW_TICK_ENABLED")
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (defaults.tick_interval, defaults.tick_enabled) == (60.0, True)


def test_stopping_lets_a_running_tick_finish_and_starts_no_other() -> None:
    """Shutdown must not dispose of the store under a tick still running in its thread."""

    class SlowEngine:
        def __init__(self) -> None:
            self.started = threading.Event()
            self.finished = 0

        def tick(self, *, limit: int) -> TickResult:
            self.started.set()
            time.sleep(0.3)
            self.finished += 1
            return TickResult(0, 0)

    async def scenario() -> int:
        slow, stop = SlowEngine(), asyncio.Event()
        task = asyncio.create_task(tick_forever(slow, 0.01, stop))  # type: ignore[arg-type]
        deadline = time.monotonic() + WAIT
        while not slow.started.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        stop.set()
        await asyncio.wait_for(task, timeout=WAIT)
        return slow.finished

    assert asyncio.run(scenario()) == 1
