"""Rebuilding a case from its history: the event log as the source of truth.

``engine/cases.py`` writes one :class:`~engine.case.CaseEvent` per change and, in the
same transaction, updates the case row and its step visits. This module derives the
case's state (:func:`replay`) and its step visits (:func:`rebuild_visits`) from the
events alone, so tests and audits can check that the stored rows and the history
tell the same story, and a history can be read without the database.

What each event kind carries (see ``Engine._open``, ``_fire``, ``_end``, ``_record``):

* ``opened``: ``to_step`` (the start step), ``changes`` ``{field: [None, value]}`` for the
  initial data, ``detail.assignee``;
* ``fired``: ``from_step``, ``to_step`` (equal for an action without ``next``) and
  ``changes`` ``{field: [old, new]}``;
* ``paused``: ``detail.reason``; ``resumed``: nothing beyond the version;
* ``waiting``: ``detail.waiting_on`` (whom the case waits on; not part of the replayed state);
* ``assigned``: ``detail.assignee``;
* ``consent_recorded``, ``consent_revoked``: nothing that changes the case itself;
* ``closed``, ``cancelled``: ``detail.outcome``; they end the case.

The ``seq`` of an event is the case version it produced. A ``fired`` event that moves
the case into a final step completes it, but the event itself does not say so (nor
the outcome): callers pass ``final_steps`` (final step id -> outcome) from the
definition. If a future ``fired`` event carries ``detail.status``/``detail.outcome``
or ``detail.visit_id`` (a new visit began, also for an action leading back into its
own step), those take precedence.

Standard library and ``engine.case`` only; this module must not import the store,
the definition loader or any framework.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.case import CANCELLED, CLOSED, COMPLETED, OPEN, CaseEvent

#: Event kinds written by ``engine/cases.py``; any other kind is refused by :func:`replay`.
EVENT_KINDS = frozenset(
    {
        "opened",
        "fired",
        "paused",
        "resumed",
        "assigned",
        "waiting",
        "consent_recorded",
        "consent_revoked",
        CLOSED,
        CANCELLED,
    }
)

Visit = tuple[str, datetime, datetime | None]


@dataclass(frozen=True, slots=True)
class ReplayedCase:
    """The state of a case as its history tells it.

    Attributes:
        step: The current step id.
        status: ``open``, ``completed``, ``closed`` or ``cancelled``.
        data: Case data by field name.
        assignee: Who is responsible, if anyone.
        paused: Whether the case is paused, and ``pause_reason`` why.
        outcome: The outcome code once the case has ended.
        version: The case version, i.e. the ``seq`` of the last event.
    """

    step: str
    status: str
    data: dict[str, Any] = field(default_factory=dict)
    assignee: str | None = None
    paused: bool = False
    pause_reason: str | None = None
    outcome: str | None = None
    version: int = 0


def replay(events: Sequence[CaseEvent], *, final_steps: Mapping[str, str | None] | None = None) -> ReplayedCase:
    """Rebuild a case's state from its events.

    Args:
        events: The case's complete history, oldest first (as ``Engine.history`` returns it).
        final_steps: The process's final steps with their outcomes; entering one of them
            completes the case.

    Returns:
        The state after the last event.

    Raises:
        ValueError: If the history is empty, does not start with ``opened``, skips or
            repeats a version, mixes cases, or holds an unknown kind of event.
    """
    finals = final_steps or {}
    _check_sequence(events)
    first = events[0]
    step = _target(first)
    status = OPEN
    data: dict[str, Any] = {}
    _apply_changes(data, first)
    assignee = first.detail.get("assignee")
    paused = False
    pause_reason: str | None = None
    outcome: str | None = None
    for event in events[1:]:
        kind = event.kind
        if kind == "fired":
            _apply_changes(data, event)
            step = _target(event)
            if _completes(event, finals):
                status = COMPLETED
                outcome = event.detail.get("outcome", finals.get(step))
        elif kind == "paused":
            paused, pause_reason = True, event.detail.get("reason")
        elif kind == "resumed":
            paused, pause_reason = False, None
        elif kind == "assigned":
            assignee = event.detail.get("assignee")
        elif kind in (CLOSED, CANCELLED):
            status, outcome, paused = kind, event.detail.get("outcome"), False
        # waiting, consent_recorded and consent_revoked change nothing replayed here but the version.
    return ReplayedCase(
        step=step,
        status=status,
        data=data,
        assignee=assignee,
        paused=paused,
        pause_reason=pause_reason,
        outcome=outcome,
        version=events[-1].seq,
    )


def rebuild_visits(events: Sequence[CaseEvent], *, final_steps: Mapping[str, str | None] | None = None) -> list[Visit]:
    """Rebuild a case's step visits from its events.

    A visit begins when the case is opened or an action moves it to another step; it
    ends when the case moves on or is closed or cancelled. Entering a final step is a
    visit that ends at once (as the engine records it).

    Args:
        events: The case's complete history, oldest first.
        final_steps: The process's final steps (their outcomes are not used here).

    Returns:
        ``(step, entered_at, left_at)`` per visit, oldest first; ``left_at`` is None for
        the visit the case is in now.

    Raises:
        ValueError: As :func:`replay`.
    """
    finals = final_steps or {}
    _check_sequence(events)
    visits: list[list[Any]] = []

    def enter(step: str, at: datetime) -> None:
        ends_at_once = step in finals
        visits.append([step, at, at if ends_at_once else None])

    def leave(at: datetime) -> None:
        if visits and visits[-1][2] is None:
            visits[-1][2] = at

    enter(_target(events[0]), events[0].at)
    for event in events[1:]:
        if event.kind == "fired" and _enters_step(event):
            leave(event.at)
            enter(_target(event), event.at)
        elif event.kind in (CLOSED, CANCELLED):
            leave(event.at)
    return [(step, entered, left) for step, entered, left in visits]


def _check_sequence(events: Sequence[CaseEvent]) -> None:
    if not events:
        raise ValueError("cannot replay an empty history")
    first = events[0]
    if first.kind != "opened":
        raise ValueError(f"a history starts with an 'opened' event, not '{first.kind}'")
    for expected_seq, event in enumerate(events, start=1):
        if event.case_id != first.case_id:
            raise ValueError(f"event {event.id} belongs to case {event.case_id}, not {first.case_id}")
        if event.seq != expected_seq:
            raise ValueError(
                f"history of case {first.case_id} is not contiguous: expected seq {expected_seq}, got {event.seq}"
            )
        if event.kind not in EVENT_KINDS:
            raise ValueError(f"unknown kind of event '{event.kind}' (seq {event.seq} of case {event.case_id})")
        if event.kind == "opened" and expected_seq != 1:
            raise ValueError(f"case {event.case_id} is opened a second time at seq {event.seq}")


def _target(event: CaseEvent) -> str:
    if event.to_step is None:
        raise ValueError(f"event {event.seq} of case {event.case_id} ('{event.kind}') names no step")
    return event.to_step


def _apply_changes(data: dict[str, Any], event: CaseEvent) -> None:
    for name, change in event.changes.items():
        if not isinstance(change, list | tuple) or len(change) != 2:
            raise ValueError(f"change of '{name}' in event {event.seq} is not [old, new]: {change!r}")
        data[name] = change[1]


def _enters_step(event: CaseEvent) -> bool:
    if "visit_id" in event.detail:
        return True
    return event.to_step is not None and event.to_step != event.from_step


def _completes(event: CaseEvent, finals: Mapping[str, str | None]) -> bool:
    if "status" in event.detail:
        return bool(event.detail["status"] == COMPLETED)
    return event.to_step in finals and _enters_step(event)


__all__ = ["EVENT_KINDS", "ReplayedCase", "Visit", "rebuild_visits", "replay"]
