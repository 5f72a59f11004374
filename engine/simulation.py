"""A deterministic discrete-event simulation of caseworkers driving cases through the engine.

It fills a database with plausible, entirely synthetic case histories for demos,
reports and benchmarks. Nothing here bypasses the engine: every change goes
through :class:`~engine.cases.Engine` (open, fire, consent, pause, resume, assign,
close, cancel, tick), so the resulting events, step visits and timers are exactly
what real use would produce, and every refusal of the engine is respected.

How time moves: the simulation starts at the clock's current instant and runs
forward ``months`` months (30.4 days each). Case openings are spread uniformly
over that period. A heap holds ``(when, case)`` entries; at each pop the
:class:`~engine.clock.FixedClock` is set to that instant (nothing sleeps) and the
case is advanced by one step: an action is picked among those of its step that a
person may fire and whose condition holds, weighted (the first declared forward
action is the likeliest, actions a timer fires anyway are rare), data the action
requires or records is filled with synthetic values by field type (mostly values
that meet a condition of the step, so that branches are taken; when nothing leads
on, recorded data is drawn again, as a caseworker re-checks the facts), and a
consent is recorded before a handoff that needs one. About one advance in ten pauses the
case instead (reason code from the step's ``stall_causes``) and resumes it later.
Dwell times are drawn around each step's expected duration (log-normal, median
0.6x expected, so roughly a fifth of visits overrun; steps waiting on an
embassy, a course provider or the foreigners' authority stall more often).
``Engine.tick`` runs at every simulated night, so timers fire when they are due.
At the end the clock stands at start + ``months``; cases still open are "open".

The simulator keeps its own copy of each case and passes ``expected_version`` on
every change: when a timer or a finished child case moved a case behind its back,
the engine answers ``ConcurrentUpdate`` and the simulator reloads that one case,
so it never needs a query over all cases while running; ended cases are counted and
forgotten at once, so memory grows with the open cases only. Personal data is never
generated: texts are ``"Beispiel"``, dates and numbers are random but plausible.

Standard library only, besides the engine itself.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from engine import conditions
from engine.case import Case
from engine.cases import Engine
from engine.clock import FixedClock
from engine.definition import ActionDef, FieldDef, ProcessDefinition, StepDef
from engine.durations import Duration, DurationUnit
from engine.errors import ActionNotAllowed, ActionUnavailable, CaseClosed, ConcurrentUpdate, InvalidCaseData

CASEWORKERS: tuple[str, ...] = tuple(f"cm{n:02d}" for n in range(1, 9))
"""Pseudonyms of the simulated case managers."""

PAUSE_REASONS: tuple[str, ...] = (
    "W-DOC",
    "W-EMB",
    "W-AUTH",
    "W-APPT",
    "W-CAP",
    "W-CONS",
    "W-HAND",
    "W-LEGAL",
    "W-FUND",
    "W-CLIENT",
)
"""The stall-cause taxonomy (primer §10.3), used as pause reason codes."""

#: Agencies whose steps overrun more often (embassies, course providers, foreigners' authority).
SLOW_AGENCIES = frozenset({"BOT", "IKT", "ABH"})

_DAYS_PER_UNIT = {
    DurationUnit.OFFICE_DAYS: 1.4,  # 5 office days are a calendar week
    DurationUnit.WORKING_DAYS: 7 / 6,
    DurationUnit.CALENDAR_DAYS: 1.0,
    DurationUnit.WEEKS: 7.0,
    DurationUnit.MONTHS: 30.4,
    DurationUnit.YEARS: 365.25,
}
_DAYS_PER_MONTH = 30.4
_BERLIN = ZoneInfo("Europe/Berlin")
_TICK_TIME = time(2, 0)  # the nightly tick job, 02:00 UTC
_NO_LIMIT = 10**9
_NO_EXPECTED_DAYS = 10.0  # dwell for a step without an expected duration (should not occur: the schema demands one)

# Probabilities per advance of a case.
_P_CANCEL_FIRST = 0.005  # opened in error, cancelled at the first look
_P_CLOSE = 0.012  # ended early (e.g. moved away)
_P_PAUSE = 0.10
_P_REASSIGN = 0.02
_P_WAIT_FOR_CHILD = 0.85  # a parent waiting for its child case mostly keeps waiting


def duration_days(duration: Duration | None) -> float:
    """An approximate length of ``duration`` in calendar days (office days count 1.4 each)."""
    if duration is None:
        return _NO_EXPECTED_DAYS
    return duration.amount * _DAYS_PER_UNIT[duration.unit]


@dataclass
class ProcessCounts:
    """What the simulation did with the cases of one process (or of all processes).

    Attributes:
        opened: Cases opened, child cases included.
        completed: Cases that reached a final step.
        closed: Cases ended early with an outcome.
        cancelled: Cases cancelled as opened in error.
        open: Cases still open at the end.
        stalled: Open, not paused cases whose current step is past its deadline at the end.
        events: Events in the histories of these cases (each change of a case appends one),
            timer events included.
        actions: Actions fired on behalf of caseworkers.
        paused: Pauses.
        consents: Consents recorded before handoffs.
    """

    opened: int = 0
    completed: int = 0
    closed: int = 0
    cancelled: int = 0
    open: int = 0
    stalled: int = 0
    events: int = 0
    actions: int = 0
    paused: int = 0
    consents: int = 0

    def add(self, other: ProcessCounts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass
class SimulationSummary:
    """The result of :func:`simulate`.

    Attributes:
        start/end: The simulated period (the clock stands at ``end`` afterwards).
        seed: The random seed; the same seed, start and definitions give the same summary.
        processes: Counts per process id, sorted by id.
        timers_fired: Timers fired by the nightly ticks.
        timers_skipped: Due timers whose action was unavailable.
    """

    start: datetime
    end: datetime
    seed: int
    processes: dict[str, ProcessCounts] = field(default_factory=dict)
    timers_fired: int = 0
    timers_skipped: int = 0

    @property
    def total(self) -> ProcessCounts:
        """Counts over all processes."""
        total = ProcessCounts()
        for counts in self.processes.values():
            total.add(counts)
        return total


@dataclass
class _Tracked:
    """The simulator's copy of one case and its bookkeeping."""

    case: Case
    definition: ProcessDefinition
    token: int = 0  # heap entries carrying an older token are stale
    advances: int = 0
    loops: int = 0  # actions without ``next`` fired in the current visit
    stuck: int = 0
    consents: dict[str, str] = field(default_factory=dict)  # agency -> valid until (ISO date)


_OPEN, _ADVANCE, _RESUME = 0, 1, 2


def simulate(
    engine: Engine,
    clock: FixedClock,
    *,
    cases: int,
    months: int,
    seed: int,
    process_ids: Sequence[str] | None = None,
    actor_pool: Sequence[str] = CASEWORKERS,
) -> SimulationSummary:
    """Open ``cases`` cases over ``months`` months from the clock's instant and drive them forward.

    Args:
        engine: An engine on a migrated database whose processes are deployed; its
            clock must be ``clock``.
        clock: The clock to move; the simulation starts at ``clock.now()`` and leaves
            the clock at the end of the period.
        cases: How many cases to open (child cases come on top).
        months: Length of the simulated period in months of 30.4 days.
        seed: Seed of the random generator.
        process_ids: Processes to open cases of (newest versions), spread evenly;
            default: every deployed process.
        actor_pool: Caseworker pseudonyms cases are assigned to.

    Returns:
        The counts per process.

    Raises:
        ValueError: If ``cases`` is negative, ``months`` not positive, ``actor_pool``
            empty, the engine does not use ``clock``, or no process is deployed.
        DefinitionNotFound: If a process in ``process_ids`` is not deployed.
    """
    if cases < 0:
        raise ValueError(f"cases must be >= 0, got {cases}")
    if months <= 0:
        raise ValueError(f"months must be > 0, got {months}")
    if not actor_pool:
        raise ValueError("actor_pool must name at least one caseworker")
    if engine.clock is not clock:
        raise ValueError("the engine must run on the simulation's clock")
    run = _Simulation(engine, clock, random.Random(seed), tuple(actor_pool), seed)
    return run.run(cases, months, process_ids)


class _Simulation:
    def __init__(
        self, engine: Engine, clock: FixedClock, rng: random.Random, actors: tuple[str, ...], seed: int
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.rng = rng
        self.actors = actors
        self.seed = seed
        self.heap: list[tuple[datetime, int, int, Any, int]] = []
        self.seq = 0
        self.tracked: dict[int, _Tracked] = {}
        self.counts: dict[str, ProcessCounts] = {}
        self.timers_fired = 0
        self.timers_skipped = 0
        self.next_tick = datetime.min.replace(tzinfo=UTC)
        self.hint_cache: dict[tuple[str, str], dict[str, list[tuple[str, Any]]]] = {}

    # ------------------------------------------------------------------ main loop

    def run(self, cases: int, months: int, process_ids: Sequence[str] | None) -> SimulationSummary:
        start = self.clock.now()
        end = start + timedelta(days=_DAYS_PER_MONTH * months)
        if process_ids is None:
            process_ids = sorted({d.process_id for d in self.engine.registry.list()})
            if not process_ids:
                raise ValueError("no process is deployed; deploy definitions before simulating")
        registry = self.engine.registry
        latest = [registry.get(pid, registry.latest_version(pid)).definition for pid in sorted(set(process_ids))]
        for definition in latest:
            self.counts.setdefault(definition.id, ProcessCounts())
        span = (end - start).total_seconds()
        for _ in range(cases):
            when = end + timedelta(days=1)
            while when > end:  # a draw moved past the end into office hours is drawn again
                when = self._office_hours(start + timedelta(seconds=self.rng.uniform(0, span)))
            self._push(when, _OPEN, self.rng.choice(latest))
        self.next_tick = datetime.combine(start.date() + timedelta(days=1), _TICK_TIME, tzinfo=UTC)

        while self.heap and self.heap[0][0] <= end:
            when, _, kind, payload, token = heapq.heappop(self.heap)
            self._tick_until(when)
            self.clock.set(when)
            if kind == _OPEN:
                self._open(payload)
            elif kind == _ADVANCE:
                self._advance(payload, token)
            else:
                self._resume(payload, token)
        self._tick_until(end)
        self.clock.set(end)
        self._final_counts(end)
        return SimulationSummary(
            start=start,
            end=end,
            seed=self.seed,
            processes={pid: self.counts[pid] for pid in sorted(self.counts)},
            timers_fired=self.timers_fired,
            timers_skipped=self.timers_skipped,
        )

    def _push(self, when: datetime, kind: int, payload: Any, token: int = 0) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (when, self.seq, kind, payload, token))

    def _schedule(self, tracked: _Tracked, when: datetime, kind: int = _ADVANCE) -> None:
        tracked.token += 1
        self._push(self._office_hours(when), kind, tracked.case.id, tracked.token)

    def _tick_until(self, when: datetime) -> None:
        while self.next_tick <= when:
            self.clock.set(self.next_tick)
            while True:
                result = self.engine.tick()
                self.timers_fired += result.fired
                self.timers_skipped += result.skipped
                if result.fired + result.skipped < 1000:  # Engine.tick's default limit
                    break
            self.next_tick += timedelta(days=1)

    def _office_hours(self, when: datetime) -> datetime:
        """Move ``when`` into office hours (Mon–Fri 08:00–16:00 Berlin); people do not work at night."""
        local = when.astimezone(_BERLIN)
        day = local.date()
        if 8 <= local.hour < 16 and day.weekday() < 5:
            return when
        if local.hour >= 16:
            day += timedelta(days=1)
        while day.weekday() >= 5:
            day += timedelta(days=1)
        minute = self.rng.randrange(8 * 60)
        moved = datetime.combine(day, time(8 + minute // 60, minute % 60), tzinfo=_BERLIN)
        return moved.astimezone(UTC)

    # ------------------------------------------------------------------ dwell times

    def _dwell(self, step: StepDef) -> timedelta:
        expected = duration_days(step.expected)
        slow = step.waiting_on in SLOW_AGENCIES
        median, sigma = (0.8, 0.8) if slow else (0.6, 0.6)
        days = self.rng.lognormvariate(math.log(median * expected), sigma)
        return timedelta(days=max(days, 1 / 24))

    def _pause_length(self) -> timedelta:
        return timedelta(days=self.rng.lognormvariate(math.log(14), 0.7))

    # ------------------------------------------------------------------ case events

    def _track(self, case: Case) -> _Tracked:
        definition = self.engine.registry.get(case.process_id, case.process_version).definition
        tracked = _Tracked(case, definition)
        self.tracked[case.id] = tracked
        counts = self.counts.setdefault(case.process_id, ProcessCounts())
        counts.opened += 1
        return tracked

    def _open(self, definition: ProcessDefinition) -> None:
        assignee = self.rng.choice(self.actors)
        case = self.engine.open_case(definition.id, actor=assignee, version=definition.version, assignee=assignee)
        tracked = self._track(case)
        self._enter_step(tracked, self.clock.now())

    def _enter_step(self, tracked: _Tracked, since: datetime) -> None:
        """Schedule the next look at a case that entered its current step at ``since``."""
        tracked.loops = 0
        tracked.stuck = 0
        if not tracked.case.is_open:
            return
        step = tracked.definition.steps[tracked.case.step]
        self._schedule(tracked, max(since + self._dwell(step), self.clock.now()))

    def _set(self, tracked: _Tracked, case: Case) -> None:
        """Take the engine's answer as the new copy; an ended case is counted and forgotten."""
        tracked.case = case
        if not case.is_open and self.tracked.pop(case.id, None) is not None:
            counts = self._counts(tracked)
            counts.events += case.version  # one event per change: the version counts them
            if case.status == "completed":
                counts.completed += 1
            elif case.status == "closed":
                counts.closed += 1
            else:
                counts.cancelled += 1

    def _counts(self, tracked: _Tracked) -> ProcessCounts:
        return self.counts[tracked.case.process_id]

    def _actor(self, tracked: _Tracked) -> str:
        return tracked.case.assignee or self.rng.choice(self.actors)

    def _advance(self, case_id: int, token: int) -> None:
        tracked = self.tracked.get(case_id)
        if tracked is None or token != tracked.token:
            return  # ended, or re-planned since this entry was pushed
        tracked.advances += 1
        case = tracked.case
        now = self.clock.now()
        step = tracked.definition.steps[case.step]
        try:
            roll = self.rng.random()
            if case.parent_id is None and tracked.advances == 1 and roll < _P_CANCEL_FIRST:
                self._set(
                    tracked,
                    self.engine.cancel(
                        case.id,
                        reason="Irrtümlich angelegt (Simulation)",
                        actor=self._actor(tracked),
                        expected_version=case.version,
                    ),
                )
                return
            if case.parent_id is None and roll < _P_CLOSE:
                self._set(
                    tracked,
                    self.engine.close(
                        case.id,
                        outcome="verzogen",
                        reason="In eine andere Kommune verzogen (Simulation)",
                        actor=self._actor(tracked),
                        expected_version=case.version,
                    ),
                )
                return
            if roll < _P_CLOSE + _P_PAUSE:
                self._pause(tracked, step)
                return
            if roll < _P_CLOSE + _P_PAUSE + _P_REASSIGN and len(self.actors) > 1:
                others = [a for a in self.actors if a != case.assignee]
                tracked.case = self.engine.assign(
                    case.id, self.rng.choice(others), actor=self._actor(tracked), expected_version=case.version
                )
            if step.wait_for_child and self.rng.random() < _P_WAIT_FOR_CHILD:
                self._schedule(tracked, now + self._dwell(step) * 0.5)
                return
            self._act(tracked, step)
        except ConcurrentUpdate:
            self._reload(tracked)
        except CaseClosed:
            self._set(tracked, self.engine.get_case(case_id))

    def _reload(self, tracked: _Tracked) -> None:
        """Re-read a case that changed behind the simulator's back (timer, child case) and re-plan it."""
        before = tracked.case
        self._set(tracked, self.engine.get_case(before.id))
        if not tracked.case.is_open:
            return
        if tracked.case.step != before.step:
            self._enter_step(tracked, tracked.case.updated_at)
        elif tracked.case.paused:
            self._schedule(tracked, self.clock.now() + self._pause_length(), _RESUME)
        else:
            self._schedule(tracked, self.clock.now() + timedelta(hours=1))

    def _pause(self, tracked: _Tracked, step: StepDef) -> None:
        causes = [c for c in step.stall_causes if c in PAUSE_REASONS] or list(PAUSE_REASONS)
        case = tracked.case
        tracked.case = self.engine.pause(
            case.id,
            reason=self.rng.choice(causes),
            note="Simulation",
            actor=self._actor(tracked),
            expected_version=case.version,
        )
        self._counts(tracked).paused += 1
        self._schedule(tracked, self.clock.now() + self._pause_length(), _RESUME)

    def _resume(self, case_id: int, token: int) -> None:
        tracked = self.tracked.get(case_id)
        if tracked is None or token != tracked.token:
            return
        case = tracked.case
        try:
            tracked.case = self.engine.resume(case.id, actor=self._actor(tracked), expected_version=case.version)
        except ConcurrentUpdate:
            self._reload(tracked)
            return
        step = tracked.definition.steps[tracked.case.step]
        self._schedule(tracked, self.clock.now() + self._dwell(step) * 0.4)

    # ------------------------------------------------------------------ choosing and firing

    def _act(self, tracked: _Tracked, step: StepDef) -> None:
        choice = self._choose(tracked, step)
        now = self.clock.now()
        if choice is None:
            tracked.stuck += 1
            if tracked.stuck <= 20:  # nothing a person can do now; look again later
                self._schedule(tracked, now + self._dwell(step) * 0.5)
            return
        action, data = choice
        case = tracked.case
        counts = self._counts(tracked)
        actor = self._actor(tracked)
        handoff = action.handoff
        today = now.astimezone(_BERLIN).date().isoformat()
        if handoff is not None and handoff.consent_required and tracked.consents.get(handoff.to_agency, "") < today:
            self._consent(tracked, action, actor)
        try:
            fired = self.engine.fire(
                case.id, action.name, actor=actor, data=data, expected_version=tracked.case.version
            )
        except (ActionUnavailable, ActionNotAllowed, InvalidCaseData):
            # The engine has the last word; look at the case again a little later.
            self._set(tracked, self.engine.get_case(case.id))
            if tracked.case.is_open:
                self._schedule(tracked, now + self._dwell(step) * 0.2)
            return
        counts.actions += 1
        self._set(tracked, fired)
        if action.start_child is not None:
            for child in self.engine.children(case.id):
                if child.id not in self.tracked:
                    self._enter_step(self._track(child), now)
        moved = tracked.case.step != step.id
        if moved:
            self._enter_step(tracked, now)
        else:
            tracked.loops += 1
            self._schedule(tracked, now + self._dwell(step) * 0.3)
        if tracked.case.parent_id is not None and not tracked.case.is_open:
            self._child_ended(tracked.case)

    def _child_ended(self, child: Case) -> None:
        parent = self.tracked.get(child.parent_id or 0)
        if parent is None or not parent.case.is_open:
            return
        before = parent.case
        self._set(parent, self.engine.get_case(before.id))
        if parent.case.step != before.step:
            self._enter_step(parent, self.clock.now())

    def _consent(self, tracked: _Tracked, action: ActionDef, actor: str) -> None:
        assert action.handoff is not None
        definition = tracked.definition
        agency = action.handoff.to_agency
        categories = action.handoff.categories or ("process",)  # a consent names at least one category
        valid_until = (self.clock.now().astimezone(_BERLIN).date() + timedelta(days=365)).isoformat()
        self.engine.record_consent(
            tracked.case.id,
            recipient=agency,
            purpose=f"Übermittlung an {definition.agencies.get(agency, agency)}: {action.title}",
            categories=categories,
            valid_until=valid_until,
            actor=actor,
            expected_version=tracked.case.version,
        )
        tracked.case.version += 1  # every change appends exactly one event and bumps the version by one
        tracked.consents[agency] = valid_until
        counts = self._counts(tracked)
        counts.consents += 1

    def _choose(self, tracked: _Tracked, step: StepDef) -> tuple[ActionDef, dict[str, Any]] | None:
        """Pick an action a person may fire now, with the data to fire it with; None if there is none.

        Weights: the first declared forward action whose condition holds is the likeliest
        (authors list the usual path first), other forward actions less so, actions a
        timer fires anyway rarely. An action without ``next`` is only a candidate if it
        records something new. When nothing leads on, the data such an action records is
        drawn again, as a caseworker would re-check the facts, up to three times per step.
        """
        case = tracked.case
        definition = tracked.definition
        compiled = self.engine.registry.get(case.process_id, case.process_version)
        timer_actions = {t.action for t in step.timers}
        hints = self._hints(definition, step)
        chosen: dict[str, tuple[ActionDef, dict[str, Any], float]] = {}
        first_forward = True
        for action in step.actions.values():
            if action.system_only:
                continue
            data = self._fill(definition, action, case.data, hints)
            if not compiled.condition_holds(step.id, action.name, {**case.data, **data}):
                continue
            if action.name in timer_actions:
                weight = 0.05  # the timer fires it when it is due
            elif action.next is None:
                if not data and (action.records or action.requires or tracked.loops):
                    continue  # would change nothing
                weight = 3.0
            else:
                weight, first_forward = (4.0 if first_forward else 1.0), False
            chosen[action.name] = (action, data, weight)
        if first_forward and tracked.loops < 3:
            for action in step.actions.values():
                if action.system_only or action.next is not None or not action.records or action.name in chosen:
                    continue
                data = self._fill(definition, action, case.data, hints, again=True)
                if data and compiled.condition_holds(step.id, action.name, {**case.data, **data}):
                    chosen[action.name] = (action, data, 3.0)
        if not chosen:
            return None
        candidates = list(chosen.values())
        action, data, _ = self.rng.choices(candidates, [weight for *_, weight in candidates])[0]
        return action, data

    # ------------------------------------------------------------------ synthetic data

    def _hints(self, definition: ProcessDefinition, step: StepDef) -> dict[str, list[tuple[str, Any]]]:
        """The comparisons the step's conditions make, per field: values worth generating."""
        key = (definition.ref, step.id)
        hints = self.hint_cache.get(key)
        if hints is None:
            hints = {}
            for action in step.actions.values():
                for name, comparison in _comparisons(action.when):
                    hints.setdefault(name, []).append(comparison)
            self.hint_cache[key] = hints
        return hints

    def _fill(
        self,
        definition: ProcessDefinition,
        action: ActionDef,
        current: dict[str, Any],
        hints: dict[str, list[tuple[str, Any]]],
        *,
        again: bool = False,
    ) -> dict[str, Any]:
        """Values for the fields an action requires (if unset) and records (if unset, mostly, or ``again``)."""
        data: dict[str, Any] = {}
        for name in action.requires:
            if current.get(name) in (None, ""):
                data[name] = self._value(definition.fields[name], hints.get(name))
        for name in action.records:
            if name in data:
                continue
            if again or (current.get(name) in (None, "") and self.rng.random() < 0.85):
                value = self._value(definition.fields[name], hints.get(name))
                if value != current.get(name):
                    data[name] = value
        return data

    def _value(self, spec: FieldDef, hints: list[tuple[str, Any]] | None = None) -> Any:
        """A synthetic value; mostly one that meets a condition of the step on this field, if there is one."""
        rng = self.rng
        today = self.clock.now().astimezone(_BERLIN).date()
        if hints and rng.random() < 0.75:
            op, target = rng.choice(hints)
            value = self._meeting(spec, op, target)
            if value is not None and spec.check(value) is None:
                return value
        kind = spec.type
        if kind == "enum":
            return rng.choice(sorted(spec.values))
        if kind == "boolean":
            return rng.random() < 0.5
        if kind == "date":
            return _synthetic_date(spec.name, today, rng).isoformat()
        if kind in ("integer", "number"):
            low = spec.minimum if spec.minimum is not None else 0
            high = spec.maximum if spec.maximum is not None else low + 10
            adult = (max(low, today.year - 65), min(high, today.year - 18))
            if any(word in spec.name for word in ("birth", "geburt")) and adult[0] <= adult[1]:
                low, high = adult  # a plausible adult's year of birth
            elif high - low > 100:
                high = low + 100
            if kind == "integer":
                return rng.randint(math.ceil(low), math.floor(high))
            return round(rng.uniform(low, high), 2)
        text = "Beispiel"
        return text[: spec.max_length] if spec.max_length else text

    def _meeting(self, spec: FieldDef, op: str, target: Any) -> Any:
        """A value for which ``field <op> target`` holds, or None to draw freely."""
        rng = self.rng
        if op == "equals":
            return target
        if op == "in" and target:
            return rng.choice(list(target))
        if op not in ("less_than", "at_most", "greater_than", "at_least"):
            return None  # not_equals, is_set: any value will mostly do
        sign = -1 if op in ("less_than", "at_most") else 1
        offset = rng.randint(1 if op in ("less_than", "greater_than") else 0, 365 if spec.type == "date" else 10)
        if spec.type == "date":
            try:
                return (date.fromisoformat(target) + timedelta(days=sign * offset)).isoformat()
            except (TypeError, ValueError):
                return None
        if spec.type in ("integer", "number") and isinstance(target, int | float):
            return target + sign * offset
        return None

    # ------------------------------------------------------------------ the end

    def _final_counts(self, end: datetime) -> None:
        """Re-read the open cases once (timers may have moved or ended them) and count them."""
        open_now: dict[int, Case] = {}
        for pid in sorted(self.counts):
            for case in self.engine.list_cases(process_id=pid, status="open", limit=_NO_LIMIT):
                if case.id in self.tracked:
                    open_now[case.id] = case
        for case_id, tracked in sorted(self.tracked.items()):
            if case_id not in open_now:
                self._set(tracked, self.engine.get_case(case_id))
                continue
            case = tracked.case = open_now[case_id]
            counts = self._counts(tracked)
            counts.open += 1
            counts.events += case.version
            if not case.paused and case.due_at is not None and case.due_at < end:
                counts.stalled += 1


def _comparisons(condition: Any) -> list[tuple[str, tuple[str, Any]]]:
    """Every ``(field, (operator, value))`` in a condition (all/any/not nest; lists may be tuples)."""
    if not isinstance(condition, Mapping):
        return []
    found = []
    for combinator in ("all", "any"):
        for item in condition.get(combinator) or ():
            found.extend(_comparisons(item))
    if "not" in condition:
        found.extend(_comparisons(condition["not"]))
    name = condition.get("field")
    comparison = conditions.comparison_of(condition) if isinstance(name, str) else None
    if comparison is not None:
        found.append((name, comparison))
    return found


def _synthetic_date(name: str, today: date, rng: random.Random) -> date:
    """A plausible date for a field: expiries lie ahead, "since" years back, everything else just passed."""
    lowered = name.lower()
    if any(word in lowered for word in ("seit", "since")):
        return today - timedelta(days=rng.randint(365, 8 * 365))
    if any(word in lowered for word in ("expires", "ablauf", "_bis", "until", "gueltig", "frist", "termin")):
        return today + timedelta(days=rng.randint(60, 540))
    return today - timedelta(days=rng.randint(0, 20))


__all__ = [
    "CASEWORKERS",
    "PAUSE_REASONS",
    "SLOW_AGENCIES",
    "ProcessCounts",
    "SimulationSummary",
    "duration_days",
    "simulate",
]
