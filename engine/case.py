"""The runtime objects of a case: plain dataclasses, never database rows.

``Case`` is also the model object that ``transitions`` moves between steps (its
``step`` attribute), which is why it must be a plain object: ``transitions``
sets attributes on its models, which SQLModel rows do not tolerate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.errors import Reason

OPEN = "open"
COMPLETED = "completed"
CLOSED = "closed"
CANCELLED = "cancelled"
ENDED_STATUSES = frozenset({COMPLETED, CLOSED, CANCELLED})


@dataclass(slots=True)
class Case:
    """One case of a process, as read from the store.

    Attributes:
        id: Case number.
        process_id: Process it belongs to; stays on ``process_version`` for life.
        step: The current step id.
        status: ``open``, ``completed`` (reached a final step), ``closed`` (ended early
            with an outcome) or ``cancelled``.
        version: Incremented by every change; the expected version for optimistic concurrency.
        data: Case data by field name (dates as ISO text).
        paused: Whether the case is paused (waiting), with ``pause_reason``.
        outcome: Outcome code once ended.
        parent_id/child_name: Set on child cases.
        team: The team the case belongs to (given when it is opened; a child case inherits
            its parent's); who may see it is decided by the caller, e.g. the HTTP API.
    """

    id: int
    process_id: str
    process_version: int
    step: str
    status: str
    version: int
    data: dict[str, Any]
    opened_at: datetime
    updated_at: datetime
    assignee: str | None = None
    waiting_on: str | None = None
    paused: bool = False
    pause_reason: str | None = None
    outcome: str | None = None
    closed_at: datetime | None = None
    parent_id: int | None = None
    child_name: str | None = None
    due_at: datetime | None = None
    visit_id: int | None = None
    step_entered_at: datetime | None = None
    team: str | None = None

    @property
    def process_ref(self) -> str:
        return f"{self.process_id}@{self.process_version}"

    @property
    def is_open(self) -> bool:
        return self.status == OPEN


@dataclass(frozen=True, slots=True)
class CaseEvent:
    """One entry of a case's append-only history."""

    id: int
    case_id: int
    seq: int
    at: datetime
    actor: str
    kind: str
    action: str | None
    from_step: str | None
    to_step: str | None
    changes: dict[str, Any] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StepVisit:
    """A stay of a case in one step (derived from the events, kept in the same transaction)."""

    id: int
    case_id: int
    step: str
    agency: str | None
    waiting_on: str | None
    entered_at: datetime
    left_at: datetime | None
    due_at: datetime | None
    warn_at: datetime | None
    paused_seconds: int
    paused_since: datetime | None
    overran: bool | None
    office_days: int | None = None
    excess_office_days: int | None = None
    reason_code: str | None = None
    handoff_from: str | None = None


@dataclass(frozen=True, slots=True)
class Consent:
    """A recorded consent of the client to share data with an agency."""

    id: int
    case_id: int
    recipient: str
    purpose: str
    categories: tuple[str, ...]
    recorded_at: datetime
    recorded_by: str
    valid_until: str | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None

    def covers(self, agency: str, today: str) -> bool:
        """Whether this consent allows sharing with ``agency`` on ISO date ``today`` (categories aside)."""
        if self.revoked_at is not None or self.recipient != agency:
            return False
        return self.valid_until is None or self.valid_until >= today

    def missing_categories(self, categories: Iterable[str]) -> tuple[str, ...]:
        """The data categories among ``categories`` this consent does not name."""
        return tuple(sorted(set(categories) - set(self.categories)))


@dataclass(frozen=True, slots=True)
class Finding:
    """A structural finding: a reason code and a short text without personal data, on a visit that stalled.

    Findings are what caseworkers pass on to working and project groups (the Strukturansatz):
    the engine refuses texts that quote the case's own data, but a finding still belongs to
    one case, so whoever lists findings decides whether ``case_id`` and ``created_by`` go along.
    """

    id: int
    case_id: int
    visit_id: int
    process_id: str
    process_version: int
    step: str
    agency: str | None
    code: str
    text: str
    created_at: datetime
    created_by: str


@dataclass(frozen=True, slots=True)
class ActionOption:
    """An action of the current step and whether it can be fired now.

    Attributes:
        name/title/title_en: The action.
        next_step: Where it leads (None: stays in the step).
        available: True if it can be fired now by a person.
        reasons: Why not, if unavailable.
        asks_for: Fields the action records or requires (for the form).
    """

    name: str
    title: str
    title_en: str | None
    next_step: str | None
    available: bool
    reasons: tuple[Reason, ...] = ()
    asks_for: tuple[str, ...] = ()


__all__ = [
    "CANCELLED",
    "CLOSED",
    "COMPLETED",
    "ENDED_STATUSES",
    "OPEN",
    "ActionOption",
    "Case",
    "CaseEvent",
    "Consent",
    "Finding",
    "StepVisit",
]
