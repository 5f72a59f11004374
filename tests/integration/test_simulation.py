"""The discrete-event simulation drives real cases through the engine on a SQLite file.

It must be deterministic (same seed, same summary), leave every case in a declared
step, finish completed cases in final steps, and produce overruns, consents and
timer firings the way real use would.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine import Engine, FixedClock
from engine.durations import Duration, DurationUnit
from engine.simulation import CASEWORKERS, SimulationSummary, duration_days, simulate

PROCESSES = Path(__file__).resolve().parents[2] / "processes"
START = datetime(2026, 1, 5, 8, tzinfo=UTC)  # a Monday

# A small process with a loop action, a branch, a consent-checked handoff and two timers
# (the example of docs/process-format.md §2).
WBS_YAML = """\
schema_version: 1
id: wbs_antrag
version: 1
title: Wohnberechtigungsschein beantragen
agencies:
  KIM-CM: KIM-Case Management
  KLIENT: Klientin / Klient
  WOA: Wohnungsamt
data:
  haushaltsgroesse: {type: integer, label: Personen im Haushalt, minimum: 1, maximum: 20, category: family}
  einkommen_unter_grenze: {type: boolean, label: Einkommen unter der Grenze, category: benefits}
  antrag_datum: {type: date, label: Antrag gestellt am, category: process}
start: haushalt_klaeren
steps:
  haushalt_klaeren:
    title: Haushalt und Einkommen klären
    agency: KIM-CM
    waiting_on: KLIENT
    expected: 10 Arbeitstage
    stall_causes: [W-DOC, W-CLIENT]
    actions:
      daten_erfassen:
        title: Haushalt und Einkommen erfassen
        records: [haushaltsgroesse, einkommen_unter_grenze]
        requires: [haushaltsgroesse, einkommen_unter_grenze]
      antrag_vorbereiten:
        title: Antrag vorbereiten
        when: {field: einkommen_unter_grenze, equals: true}
        next: antrag_stellen
      kein_anspruch:
        title: Einkommen über der Grenze
        when: {field: einkommen_unter_grenze, equals: false}
        next: nicht_berechtigt
  antrag_stellen:
    title: Antrag beim Wohnungsamt stellen
    agency: KIM-CM
    expected: 10 Arbeitstage
    actions:
      antrag_gestellt:
        title: Antrag gestellt
        records: [antrag_datum]
        requires: [antrag_datum]
        handoff: {to: WOA, shares: [haushaltsgroesse, einkommen_unter_grenze]}
        next: bescheid
  bescheid:
    title: Bescheid des Wohnungsamts
    agency: WOA
    expected: 6 Wochen
    stall_causes: [W-AUTH]
    actions:
      wbs_erteilt: {title: WBS erteilt, next: erteilt}
      abgelehnt: {title: Antrag abgelehnt, next: nicht_berechtigt}
      nachfragen: {title: 'Erinnerung: nachfragen', system_only: true}
    timers:
      - {after: 2 Wochen, action: nachfragen}
  erteilt: {title: WBS erteilt, final: true, outcome: bewilligt}
  nicht_berechtigt: {title: Kein WBS, final: true, outcome: abgelehnt}
"""


def _engine(path: Path) -> tuple[Engine, FixedClock]:
    clock = FixedClock(START)
    engine = Engine(f"sqlite:///{path}", clock=clock)
    engine.upgrade_schema()
    return engine, clock


def _all_cases(engine: Engine) -> list:
    return engine.list_cases(limit=100_000)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, SimulationSummary]]:
    """Sixty cases of the shipped processes over six months (run once for the module)."""
    engine, clock = _engine(tmp_path_factory.mktemp("sim") / "kimflow.db")
    engine.deploy([PROCESSES], actor="test")
    summary = simulate(engine, clock, cases=60, months=6, seed=11)
    yield engine, summary
    engine.store.dispose()


@pytest.fixture
def wbs(tmp_path: Path) -> Iterator[tuple[Engine, FixedClock]]:
    engine, clock = _engine(tmp_path / "wbs.db")
    engine.deploy_text(WBS_YAML, actor="test", file="wbs_antrag.yaml")
    yield engine, clock
    engine.store.dispose()


def test_the_same_seed_gives_the_same_summary(tmp_path: Path) -> None:
    runs = []
    for name in ("a.db", "b.db"):
        engine, clock = _engine(tmp_path / name)
        engine.deploy_text(WBS_YAML, actor="test", file="wbs_antrag.yaml")
        runs.append(simulate(engine, clock, cases=25, months=4, seed=3))
        engine.store.dispose()
    assert asdict(runs[0]) == asdict(runs[1])


def test_another_seed_gives_another_history(wbs: tuple[Engine, FixedClock], tmp_path: Path) -> None:
    engine, clock = wbs
    first = simulate(engine, clock, cases=25, months=4, seed=3)
    other, other_clock = _engine(tmp_path / "other.db")
    other.deploy_text(WBS_YAML, actor="test", file="wbs_antrag.yaml")
    second = simulate(other, other_clock, cases=25, months=4, seed=4)
    other.store.dispose()
    assert asdict(first.total) != asdict(second.total)


def test_every_case_is_in_a_declared_step(simulated: tuple[Engine, SimulationSummary]) -> None:
    engine, _ = simulated
    cases = _all_cases(engine)
    assert cases
    declared = {c.id: engine.process(c.process_id, c.process_version).steps for c in cases}
    assert [(c.id, c.process_ref, c.step) for c in cases if c.step not in declared[c.id]] == []


def test_completed_cases_are_in_final_steps(simulated: tuple[Engine, SimulationSummary]) -> None:
    engine, summary = simulated
    completed = [c for c in _all_cases(engine) if c.status == "completed"]
    assert len(completed) == summary.total.completed > 0
    assert [c.id for c in completed if not engine.process(c.process_id, c.process_version).steps[c.step].final] == []


def test_open_cases_are_not_in_final_steps(simulated: tuple[Engine, SimulationSummary]) -> None:
    engine, _ = simulated
    open_cases = [c for c in _all_cases(engine) if c.is_open]
    assert open_cases
    assert [c.id for c in open_cases if engine.process(c.process_id, c.process_version).steps[c.step].final] == []


def test_counts_add_up_and_match_the_database(simulated: tuple[Engine, SimulationSummary]) -> None:
    engine, summary = simulated
    cases = _all_cases(engine)
    for pid, counts in summary.processes.items():
        assert counts.opened == counts.completed + counts.closed + counts.cancelled + counts.open, pid
    total = summary.total
    assert total.opened == len(cases) >= 60  # child cases come on top of the 60 opened
    assert total.events == sum(len(engine.history(c.id)) for c in cases)
    assert total.open == sum(1 for c in cases if c.is_open)
    assert {c.assignee for c in cases} <= set(CASEWORKERS)


def test_some_visits_overran_and_most_did_not(simulated: tuple[Engine, SimulationSummary]) -> None:
    engine, _ = simulated
    closed = [v for c in _all_cases(engine) for v in engine.visits(c.id) if v.overran is not None]
    overran = sum(1 for v in closed if v.overran)
    assert 0 < overran < len(closed) / 2


def test_cases_were_paused_and_resumed_with_taxonomy_codes(simulated: tuple[Engine, SimulationSummary]) -> None:
    engine, summary = simulated
    assert summary.total.paused > 0
    reasons = {e.detail["reason"] for c in _all_cases(engine) for e in engine.history(c.id) if e.kind == "paused"}
    assert reasons and all(r.startswith("W-") for r in reasons)


def test_handoffs_are_preceded_by_a_consent(wbs: tuple[Engine, FixedClock]) -> None:
    engine, clock = wbs
    summary = simulate(engine, clock, cases=30, months=6, seed=5)
    handed_off = [c for c in _all_cases(engine) if any(e.action == "antrag_gestellt" for e in engine.history(c.id))]
    assert handed_off
    assert summary.total.consents >= len(handed_off)
    for case in handed_off:
        assert any(consent.recipient == "WOA" for consent in engine.consents(case.id))


def test_timers_fire_as_the_clock_passes_them(wbs: tuple[Engine, FixedClock]) -> None:
    engine, clock = wbs
    summary = simulate(engine, clock, cases=30, months=6, seed=5)
    timer_events = [
        e for c in _all_cases(engine) for e in engine.history(c.id) if e.actor == "system" and e.action == "nachfragen"
    ]
    assert summary.timers_fired == len(timer_events) > 0
    for event in timer_events:
        entered = next(
            v.entered_at for v in engine.visits(event.case_id) if v.step == "bescheid" and v.entered_at <= event.at
        )
        assert event.at - entered >= timedelta(days=13)  # not before its time (due dates are whole days)


def test_the_clock_stands_at_the_end_of_the_period(wbs: tuple[Engine, FixedClock]) -> None:
    engine, clock = wbs
    summary = simulate(engine, clock, cases=5, months=2, seed=1)
    assert summary.start == START
    assert clock.now() == summary.end == START + timedelta(days=2 * 30.4)
    assert all(c.opened_at < summary.end for c in _all_cases(engine))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cases": -1, "months": 1}, "cases"),
        ({"cases": 1, "months": 0}, "months"),
        ({"cases": 1, "months": 1, "actor_pool": ()}, "actor_pool"),
    ],
)
def test_rejects_impossible_arguments(wbs: tuple[Engine, FixedClock], kwargs: dict, message: str) -> None:
    engine, clock = wbs
    with pytest.raises(ValueError, match=message):
        simulate(engine, clock, seed=1, **kwargs)


def test_refuses_an_engine_on_another_clock(wbs: tuple[Engine, FixedClock]) -> None:
    engine, _ = wbs
    with pytest.raises(ValueError, match="clock"):
        simulate(engine, FixedClock(START), cases=1, months=1, seed=1)


@pytest.mark.parametrize(
    ("duration", "days"),
    [
        (Duration(10, DurationUnit.OFFICE_DAYS), 14.0),
        (Duration(2, DurationUnit.WEEKS), 14.0),
        (Duration(3, DurationUnit.MONTHS), 91.2),
        (None, 10.0),
    ],
)
def test_durations_become_approximate_calendar_days(duration: Duration | None, days: float) -> None:
    assert duration_days(duration) == pytest.approx(days)
