"""Invariants of the engine under random definitions and random sequences of operations.

Hypothesis draws a small valid definition (``tests.strategies.definitions``) and then,
one at a time, operations on one case: firing actions (of the current step, of other
steps, unknown ones) with random data, pausing, resuming, waiting on someone, assigning,
recording and revoking consents, letting time pass, ticking timers, closing. After every
operation:

* the case's step is a declared step, and a case in a final step is completed (and only then);
* a successful operation appended exactly one event, a refused one none and changed nothing;
* replaying the history gives the stored case (``engine.history.replay``);
* step visits never overlap, at most one is open (the current one, while the case is open),
  and ``rebuild_visits`` over the history gives the stored visits.

SQLite only; all examples share one database, each under its own process id.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from engine import Engine, EngineError, FixedClock
from engine.case import COMPLETED, Case, CaseEvent
from engine.history import rebuild_visits, replay
from tests.factories import T0, final_steps, replayed_from
from tests.strategies import (
    AGENCY_CODES,
    CATEGORIES,
    PEOPLE,
    REASON_CODES,
    DrawnDefinition,
    action_data,
    definitions,
    field_values,
    valid_data,
    valid_value,
)

_process_numbers = itertools.count(1)
# Relative weights: mostly actions, an early end of the case rarely (it refuses all that follows).
WEIGHTS = {
    "fire": 45,
    "pause": 6,
    "resume": 6,
    "wait_on": 5,
    "assign": 4,
    "consent": 6,
    "revoke": 3,
    "advance": 12,
    "tick": 6,
    "close": 1,
}
OPERATIONS = tuple(kind for kind, weight in WEIGHTS.items() for _ in range(weight))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, FixedClock]]:
    clock = FixedClock(T0)
    engine = Engine(f"sqlite:///{tmp_path_factory.mktemp('invariants') / 'kimflow.db'}", clock=clock)

    def no_fsync(dbapi_connection: Any, _record: Any) -> None:
        # Durability is not under test here; skipping fsync per commit makes examples much cheaper.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous = OFF")
        cursor.close()

    sa.event.listen(engine.store.engine, "connect", no_fsync)
    engine.upgrade_schema()
    yield engine, clock
    engine.store.dispose()


def _fire(engine: Engine, case_id: int, drawn: DrawnDefinition, data: st.DataObject) -> Any:
    case = engine.get_case(case_id)
    definition = engine.process(case.process_id, case.process_version)
    step = definition.steps[case.step]
    own = list(step.actions)
    choice = data.draw(st.integers(0, 9))
    if own and choice < 7:
        name = data.draw(st.sampled_from(own))
    elif choice < 9:
        name = data.draw(st.sampled_from(list(drawn.actions)))
    else:
        name = "gibt_es_nicht"
    action = step.actions.get(name)
    style = data.draw(st.integers(0, 9))
    if action is not None and style < 7:  # what a form would send: the missing required fields, maybe more
        asks = list(dict.fromkeys(action.requires + action.records))
        names = [n for n in action.requires if case.data.get(n) in (None, "")]
        names += data.draw(st.lists(st.sampled_from(asks), unique=True)) if asks else []
        values = {n: data.draw(valid_value(n) if style < 5 else field_values(n)) for n in names}
    else:
        values = data.draw(action_data())
    return engine.fire(case_id, name, actor=data.draw(st.sampled_from(PEOPLE)), data=values)


def _operate(
    kind: str, engine: Engine, clock: FixedClock, case_id: int, drawn: DrawnDefinition, data: st.DataObject
) -> Any:
    actor = data.draw(st.sampled_from(PEOPLE))
    if kind == "fire":
        return _fire(engine, case_id, drawn, data)
    if kind == "pause":
        reason = data.draw(st.sampled_from([*REASON_CODES, "Urlaub"]))
        return engine.pause(case_id, reason=reason, actor=actor)
    if kind == "resume":
        return engine.resume(case_id, actor=actor)
    if kind == "wait_on":
        party = data.draw(st.sampled_from([*AGENCY_CODES, "KLIENT", "XYZ"]))
        return engine.wait_on(case_id, party, reason=data.draw(st.sampled_from(REASON_CODES)), actor=actor)
    if kind == "assign":
        return engine.assign(case_id, data.draw(st.sampled_from([*PEOPLE, None])), actor=actor)
    if kind == "consent":
        return engine.record_consent(
            case_id,
            recipient=data.draw(st.sampled_from(["JC", "ABH", "XYZ"])),
            purpose="Übergabe",
            categories=data.draw(st.lists(st.sampled_from(CATEGORIES), unique=True, max_size=3)),
            actor=actor,
        )
    if kind == "revoke":
        ids = [c.id for c in engine.consents(case_id)] + [999_999]
        return engine.revoke_consent(case_id, data.draw(st.sampled_from(ids)), actor=actor)
    if kind == "advance":
        return clock.advance(hours=data.draw(st.integers(0, 96)))
    if kind == "tick":
        return engine.tick()
    if kind == "close":
        if data.draw(st.booleans()):
            return engine.close(case_id, outcome="verzogen", reason="Klient verzogen", actor=actor)
        return engine.cancel(case_id, reason="irrtümlich", actor=actor)
    raise AssertionError(kind)


def _check_invariants(engine: Engine, case_id: int) -> tuple[Case, list[CaseEvent]]:
    """Assert every invariant on the stored case; returns the case and its history."""
    case = engine.get_case(case_id)
    definition = engine.process(case.process_id, case.process_version)
    finals = final_steps(definition)
    events = engine.history(case_id)
    visits = engine.visits(case_id)

    assert case.step in definition.steps
    assert (case.step in finals) == (case.status == COMPLETED)
    assert [e.seq for e in events] == list(range(1, case.version + 1))
    assert replay(events, final_steps=finals) == replayed_from(case)

    open_visits = [v for v in visits if v.left_at is None]
    assert len(open_visits) == (1 if case.is_open and case.step not in finals else 0)
    if open_visits:
        assert (open_visits[0].id, open_visits[0].step) == (case.visit_id, case.step)
    for earlier, later in itertools.pairwise(visits):
        assert earlier.left_at is not None
        assert earlier.entered_at <= earlier.left_at <= later.entered_at
    assert rebuild_visits(events, final_steps=finals) == [(v.step, v.entered_at, v.left_at) for v in visits]
    return case, events


@settings(
    max_examples=40,
    deadline=None,
    database=None,  # examples are cheap to regenerate; keep .hypothesis/ out of the way of parallel runs
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(drawn=definitions(), data=st.data())
def test_random_operations_keep_the_invariants(
    world: tuple[Engine, FixedClock], drawn: DrawnDefinition, data: st.DataObject
) -> None:
    engine, clock = world
    process_id = f"zufall_{next(_process_numbers)}"
    engine.deploy_text(drawn.text.replace("id: zufall\n", f"id: {process_id}\n", 1), actor="hypothesis")
    opening = data.draw(valid_data(), label="opening data")
    case_id = engine.open_case(process_id, actor="anna", data=opening).id
    before, history = _check_invariants(engine, case_id)

    after_end = 0
    for _ in range(data.draw(st.integers(1, 30), label="operations")):
        kind = data.draw(st.sampled_from(OPERATIONS), label="operation")
        if not before.is_open:
            after_end += 1
            if after_end > 2:  # a couple of refusals of an ended case are enough
                break
        try:
            result = _operate(kind, engine, clock, case_id, drawn, data)
        except EngineError as refused:
            event(f"{kind}: refused ({type(refused).__name__})")
            after, events = _check_invariants(engine, case_id)
            assert events == history, f"refused {kind} wrote an event"
            assert (after.version, replayed_from(after)) == (before.version, replayed_from(before))
        else:
            event(f"{kind}: done")
            after, events = _check_invariants(engine, case_id)
            assert events[: len(history)] == history, "the history was rewritten"
            new_events = events[len(history) :]
            if kind == "advance":
                assert new_events == []
            elif kind == "tick":
                assert all(e.kind == "fired" and e.actor == "system" and "timer_id" in e.detail for e in new_events)
                assert len(new_events) <= result.fired
            else:
                assert len(new_events) == 1, f"{kind} wrote {len(new_events)} events"
        before, history = after, events

    if engine.get_case(case_id).is_open:  # its timers must not fire into later examples' ticks
        engine.cancel(case_id, reason="Ende des Beispiels", actor="hypothesis")
