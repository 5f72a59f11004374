"""Builders for test inputs (definition YAML text, definitions, plain cases) and shared checks.

``process_yaml`` emits YAML *text* so that tests exercise the real loader (positions,
schema, semantic checks), never a shortcut around it. Ids are readable and nothing
is random: property tests get their randomness from ``tests/strategies.py``.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import yaml

from engine import Engine
from engine.case import OPEN, Case
from engine.definition import ProcessDefinition, load_definition
from engine.history import ReplayedCase, rebuild_visits, replay

T0 = datetime(2026, 3, 2, 8, tzinfo=UTC)  # a Monday; the default time of the ``clock`` fixture

AGENCIES: dict[str, str] = {
    "KIM-CM": "KIM-Case Management",
    "JC": "Jobcenter",
    "ABH": "Ausländerbehörde",
    "KLIENT": "Klientin / Klient",
}

FIELDS: dict[str, dict[str, Any]] = {
    "name": {"type": "string", "label": "Name", "label_en": "Name", "max_length": 40, "category": "identity"},
    "age": {
        "type": "integer",
        "label": "Alter",
        "label_en": "Age",
        "minimum": 0,
        "maximum": 130,
        "category": "identity",
    },
    "income": {"type": "number", "label": "Einkommen", "label_en": "Income", "category": "benefits"},
    "urgent": {"type": "boolean", "label": "Dringend", "label_en": "Urgent"},
    "permit_expires": {
        "type": "date",
        "label": "Aufenthaltstitel gültig bis",
        "label_en": "Permit valid until",
        "category": "residence",
    },
    "path": {
        "type": "enum",
        "label": "Zielpfad",
        "label_en": "Target path",
        "values": {"p25a": "§ 25a", "p25b": "§ 25b", "other": "Sonstiges"},
        "category": "residence",
    },
    "note": {"type": "text", "label": "Vermerk", "label_en": "Note"},
}

# intake --forward--> review --approve--> approved (final)
#                           \--reject---> rejected (final)
STEPS: dict[str, dict[str, Any]] = {
    "intake": {
        "title": "Erfassung",
        "title_en": "Intake",
        "agency": "KIM-CM",
        "expected": "3 Arbeitstage",
        "warn_after": "2 Arbeitstage",
        "actions": {
            "capture": {"title": "Daten erfassen", "records": ["name", "age", "path", "note"]},
            "forward": {"title": "Weiterleiten", "title_en": "Forward", "requires": ["name"], "next": "review"},
        },
    },
    "review": {
        "title": "Prüfung",
        "title_en": "Review",
        "agency": "JC",
        "expected": "2 Wochen",
        "actions": {
            "approve": {"title": "Bewilligen", "next": "approved"},
            "reject": {"title": "Ablehnen", "next": "rejected"},
        },
    },
    "approved": {"title": "Bewilligt", "final": True, "outcome": "bewilligt"},
    "rejected": {"title": "Abgelehnt", "final": True, "outcome": "abgelehnt"},
}


def process_yaml(
    *,
    id: str = "intake",
    version: int = 1,
    title: str = "Aufnahme",
    agencies: dict[str, str] | None = None,
    data: dict[str, dict[str, Any]] | None = None,
    steps: dict[str, dict[str, Any]] | None = None,
    start: str | None = None,
    calendar: dict[str, Any] | None = None,
    **extra: Any,
) -> str:
    """YAML text of a definition; every part defaults to a small valid process.

    Args:
        id, version, title: The header.
        agencies, data, steps: Replace the default agencies, fields and steps.
        start: The start step (default: the first step).
        calendar: An optional ``calendar`` mapping.
        **extra: More top-level keys (e.g. ``description``).

    Returns:
        The text, with keys in the order given (``schema_version`` first).
    """
    doc: dict[str, Any] = {"schema_version": 1, "id": id, "version": version, "title": title}
    doc.update(extra)
    if calendar is not None:
        doc["calendar"] = calendar
    doc["agencies"] = dict(AGENCIES if agencies is None else agencies)
    doc["data"] = copy.deepcopy(FIELDS if data is None else data)
    if start is not None:
        doc["start"] = start
    doc["steps"] = copy.deepcopy(STEPS if steps is None else steps)
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, default_flow_style=False)


def make_definition(**overrides: Any) -> ProcessDefinition:
    """A loaded (validated) definition built from ``process_yaml(**overrides)``."""
    return load_definition(process_yaml(**overrides), "factory.yaml")


def make_case(**overrides: Any) -> Case:
    """A plain ``Case`` object (not stored) in the default process's first step."""
    values: dict[str, Any] = {
        "id": 42,
        "process_id": "intake",
        "process_version": 1,
        "step": "intake",
        "status": OPEN,
        "version": 1,
        "data": {},
        "opened_at": T0,
        "updated_at": T0,
    }
    values.update(overrides)
    return Case(**values)


# --------------------------------------------------------------------------- checks


def final_steps(definition: ProcessDefinition) -> dict[str, str | None]:
    """The definition's final steps with their outcomes, as ``engine.history`` takes them."""
    return {s.id: s.outcome for s in definition.steps.values() if s.final}


def replayed_from(case: Case) -> ReplayedCase:
    """The part of a stored case that its history must reproduce."""
    return ReplayedCase(
        step=case.step,
        status=case.status,
        data=dict(case.data),
        assignee=case.assignee,
        paused=case.paused,
        pause_reason=case.pause_reason,
        outcome=case.outcome,
        version=case.version,
    )


def assert_history_explains_case(engine: Engine, case_id: int) -> None:
    """Replaying the stored events gives the stored case and its stored step visits."""
    case = engine.get_case(case_id)
    finals = final_steps(engine.process(case.process_id, case.process_version))
    events = engine.history(case_id)
    assert [e.seq for e in events] == list(range(1, case.version + 1))
    assert replay(events, final_steps=finals) == replayed_from(case)
    stored = [(v.step, v.entered_at, v.left_at) for v in engine.visits(case_id)]
    assert rebuild_visits(events, final_steps=finals) == stored


__all__ = [
    "AGENCIES",
    "FIELDS",
    "STEPS",
    "T0",
    "assert_history_explains_case",
    "final_steps",
    "make_case",
    "make_definition",
    "process_yaml",
    "replayed_from",
]
