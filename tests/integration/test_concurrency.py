"""Races between engine instances on one database, on SQLite and PostgreSQL.

Each racer is a separate ``Engine`` with its own connection pool, as two API workers or a
worker and the timer process would be. A ``threading.Barrier`` releases them together;
the rounds are repeated because a single round proves little about a race.

On SQLite every transaction takes the write lock up front (``BEGIN IMMEDIATE``), so the
loser waits and then sees the new version; on PostgreSQL (READ COMMITTED) the loser's
``UPDATE … WHERE version = :expected`` finds no row once the winner has committed.
Either way: exactly one wins, the other gets ``ConcurrentUpdate``, and nothing of the
loser's work is left behind.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

from engine import ConcurrentUpdate, Engine, FixedClock
from tests.factories import FIELDS, assert_history_explains_case, process_yaml

ROUNDS = 20
TIMERS = 50
WORKERS = 2

# ping <--send/return_--> pong, plus an action that only records a note; a timer in ping.
RACE = process_yaml(
    id="wettlauf",
    title="Wettlauf",
    data={"note": FIELDS["note"]},
    steps={
        "ping": {
            "title": "Ping",
            "agency": "KIM-CM",
            "expected": "5 Arbeitstage",
            "actions": {
                "send": {"title": "Senden", "records": ["note"], "next": "pong"},
                "jot": {"title": "Notieren", "records": ["note"]},
                "remind": {"title": "Erinnern", "system_only": True},
                "nudge": {"title": "Anstoßen", "system_only": True},
                "finish": {"title": "Beenden", "next": "done"},
            },
            "timers": [{"after": "1 Woche", "action": "remind"}],
        },
        "pong": {
            "title": "Pong",
            "agency": "JC",
            "expected": "5 Arbeitstage",
            "actions": {"return_": {"title": "Zurück", "records": ["note"], "next": "ping"}},
        },
        "done": {"title": "Fertig", "final": True, "outcome": "fertig"},
    },
)


def race(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads released together; each result is a value or the exception raised."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        barrier.wait(timeout=30)
        try:
            results[index] = call()
        except Exception as exc:  # collected and asserted on by the caller
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a racer hung"
    return results


def _outcome(result: Any) -> str:
    if isinstance(result, ConcurrentUpdate):
        return "conflict"
    if isinstance(result, BaseException):
        raise result
    return "won"


def test_racing_fires_with_the_same_expected_version_let_exactly_one_win(
    engine: Engine, engine_factory: Callable[..., Engine]
) -> None:
    engine.deploy_text(RACE, actor="koordination")
    case = engine.open_case("wettlauf", actor="cm")
    racers = [engine_factory() for _ in range(WORKERS)]

    for round_ in range(ROUNDS):
        before = engine.get_case(case.id)
        action = "send" if before.step == "ping" else "return_"
        results = race(
            *(
                partial(
                    racer.fire,
                    case.id,
                    action,
                    actor=f"worker{index}",
                    data={"note": f"{round_}:{index}"},
                    expected_version=before.version,
                )
                for index, racer in enumerate(racers)
            )
        )

        outcomes = [_outcome(r) for r in results]
        assert sorted(outcomes) == ["conflict", "won"], f"round {round_}"
        (winner,) = [i for i, o in enumerate(outcomes) if o == "won"]
        conflict = results[1 - winner]
        assert (conflict.expected_version, conflict.actual_version) == (before.version, before.version + 1)
        after = engine.get_case(case.id)
        assert after.version == before.version + 1
        assert after.data["note"] == f"{round_}:{winner}"
        history = engine.history(case.id)
        assert len(history) == before.version + 1
        assert history[-1].actor == f"worker{winner}"

    visits = engine.visits(case.id)
    assert len(visits) == 1 + ROUNDS  # no visit of a loser survived
    assert sum(v.left_at is None for v in visits) == 1
    assert_history_explains_case(engine, case.id)


def test_racing_changes_of_different_kinds_let_exactly_one_win(
    engine: Engine, engine_factory: Callable[..., Engine]
) -> None:
    engine.deploy_text(RACE, actor="koordination")
    case = engine.open_case("wettlauf", actor="cm")
    first, second = engine_factory(), engine_factory()

    for round_ in range(ROUNDS // 2):
        version = engine.get_case(case.id).version
        results = race(
            partial(first.fire, case.id, "jot", actor="a", data={"note": str(round_)}, expected_version=version),
            partial(second.assign, case.id, f"person{round_}", actor="b", expected_version=version),
        )

        assert sorted(_outcome(r) for r in results) == ["conflict", "won"]
        assert len(engine.history(case.id)) == version + 1
    assert_history_explains_case(engine, case.id)


def test_concurrent_tickers_fire_each_due_timer_exactly_once(
    engine: Engine, engine_factory: Callable[..., Engine], clock: FixedClock
) -> None:
    engine.deploy_text(RACE, actor="koordination")
    cases = [engine.open_case("wettlauf", actor="cm").id for _ in range(TIMERS)]
    tickers = [engine_factory() for _ in range(WORKERS)]
    clock.advance(timedelta(weeks=2))

    results = race(*(ticker.tick for ticker in tickers))

    for result in results:
        if isinstance(result, BaseException):
            raise result
    assert sum(r.fired for r in results) == TIMERS
    assert sum(r.skipped for r in results) == 0
    timer_ids = Counter(
        event.detail["timer_id"]
        for case_id in cases
        for event in engine.history(case_id)
        if event.kind == "fired" and "timer_id" in event.detail
    )
    assert len(timer_ids) == TIMERS
    assert set(timer_ids.values()) == {1}
    assert engine.tick().fired == 0


def test_tickers_racing_on_timers_of_one_case_both_finish(
    engine: Engine, engine_factory: Callable[..., Engine], clock: FixedClock
) -> None:
    """Two due timers of one case, claimed by two tickers: the case changes once at a time, no ticker fails."""
    steps = {
        "ping": {
            "title": "Ping",
            "agency": "KIM-CM",
            "expected": "5 Arbeitstage",
            "actions": {
                "remind": {"title": "Erinnern", "system_only": True},
                "nudge": {"title": "Anstoßen", "system_only": True},
                "finish": {"title": "Beenden", "next": "done"},
            },
            "timers": [{"after": "1 Woche", "action": "remind"}, {"after": "1 Woche", "action": "nudge"}],
        },
        "done": {"title": "Fertig", "final": True},
    }
    engine.deploy_text(process_yaml(id="doppelt", data={}, steps=steps), actor="koordination")
    cases = [engine.open_case("doppelt", actor="cm").id for _ in range(TIMERS // 2)]
    tickers = [engine_factory() for _ in range(WORKERS)]
    clock.advance(timedelta(weeks=2))

    results = race(*(ticker.tick for ticker in tickers))

    assert [r for r in results if isinstance(r, BaseException)] == []
    assert sum(r.fired for r in results) == 2 * len(cases)
    fired = Counter(e.detail["timer_id"] for c in cases for e in engine.history(c) if "timer_id" in e.detail)
    assert len(fired) == 2 * len(cases) and set(fired.values()) == {1}
