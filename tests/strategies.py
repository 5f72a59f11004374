"""Hypothesis strategies: small valid definitions and values for case data.

``definitions()`` draws the *shape* of a process (steps, actions, conditions, handoffs,
timers) and renders it with ``tests.factories.process_yaml``, so every example goes
through the real loader. Every drawn definition is valid by construction: a chain of
actions leads from the start step through every step to a final step, extra actions
only add edges, and no action leads back into its own step (see ``engine.history``:
such a self-loop cannot be told from an action without ``next`` in the events).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import date
from typing import Any

from hypothesis import strategies as st

from tests.factories import FIELDS, process_yaml

AGENCY_CODES = ("KIM-CM", "JC", "ABH")
EXPECTED = ("2 Arbeitstage", "1 Woche", "P10D", "3 Werktage", "1 Monat")
REASON_CODES = ("W-DOC", "W-CLIENT", "W-APPT")
PEOPLE = ("anna", "bernd", "carla")
CATEGORIES = ("identity", "residence", "benefits")


@dataclass(frozen=True)
class DrawnDefinition:
    """A drawn definition: its YAML text and the names the operations choose from."""

    process_id: str
    text: str
    actions: tuple[str, ...]


def conditions() -> st.SearchStrategy[dict[str, Any]]:
    """A condition over the factory fields, nested at most two levels."""
    leaves = st.one_of(
        st.builds(lambda n: {"field": "age", "less_than": n}, st.integers(0, 80)),
        st.builds(lambda n: {"field": "age", "at_least": n}, st.integers(0, 80)),
        st.builds(lambda b: {"field": "urgent", "equals": b}, st.booleans()),
        st.builds(
            lambda vs: {"field": "path", "in": vs},
            st.lists(st.sampled_from(["p25a", "p25b", "other"]), min_size=1, max_size=3, unique=True),
        ),
        st.builds(lambda b: {"field": "name", "is_set": b}, st.booleans()),
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.builds(lambda cs: {"all": cs}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda cs: {"any": cs}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda c: {"not": c}, inner),
        ),
        max_leaves=4,
    )


FIELD_NAMES = tuple(FIELDS)
field_lists = st.lists(st.sampled_from(FIELD_NAMES), max_size=3, unique=True)


@st.composite
def _action(draw: st.DrawFn, *, next_step: str | None, system_only: bool = False) -> dict[str, Any]:
    action: dict[str, Any] = {"title": draw(st.sampled_from(["Weiter", "Erledigt", "Notiz", "Prüfen"]))}
    if next_step is not None:
        action["next"] = next_step
    if system_only:
        action["system_only"] = True
        return action
    if draw(st.integers(0, 3)) == 0:
        action["when"] = draw(conditions())
    if requires := draw(st.lists(st.sampled_from(FIELD_NAMES), max_size=1)):
        action["requires"] = requires
    if records := draw(field_lists):
        action["records"] = records
    if next_step is not None and draw(st.integers(0, 4)) == 0:
        action["handoff"] = {"to": "JC", "shares": draw(st.lists(st.sampled_from(FIELD_NAMES), min_size=1, max_size=2))}
    return action


@st.composite
def definitions(draw: st.DrawFn, process_id: str = "zufall") -> DrawnDefinition:
    """A small valid definition with 1–4 working steps and one or two final steps."""
    count = draw(st.integers(1, 4))
    working = [f"s{i}" for i in range(count)]
    finals = ["ok"] + (["abbruch"] if draw(st.booleans()) else [])
    steps: dict[str, Any] = {}
    all_steps = working + finals
    for index, step_id in enumerate(working):
        chain_target = working[index + 1] if index + 1 < count else "ok"
        expected = draw(st.sampled_from(EXPECTED))
        step: dict[str, Any] = {
            "title": f"Schritt {index}",
            "agency": draw(st.sampled_from(AGENCY_CODES)),
            "expected": expected,
            "actions": {f"go{index}": draw(_action(next_step=chain_target))},
        }
        if expected == "2 Arbeitstage" and draw(st.booleans()):
            step["warn_after"] = "1 Arbeitstag"
        if draw(st.booleans()):
            step["client_wait_stops_clock"] = True
        for extra in range(draw(st.integers(0, 3))):
            kind = draw(st.sampled_from(["note", "jump", "system"]))
            name = f"x{index}_{extra}"
            if kind == "note":
                step["actions"][name] = draw(_action(next_step=None))
            elif kind == "jump":
                target = draw(st.sampled_from([s for s in all_steps if s != step_id]))
                step["actions"][name] = draw(_action(next_step=target))
            else:
                step["actions"][name] = draw(_action(next_step=None, system_only=True))
                if draw(st.booleans()):
                    step["timers"] = [
                        {"after": draw(st.sampled_from(["1 Arbeitstag", "P2D", "1 Woche"])), "action": name}
                    ]
        steps[step_id] = step
    if "abbruch" in finals:
        steps[working[0]]["actions"]["give_up"] = {"title": "Abbrechen", "next": "abbruch"}
        steps["abbruch"] = {"title": "Abgebrochen", "final": True, "outcome": "abgebrochen"}
    steps["ok"] = {"title": "Erledigt", "final": True, "outcome": "erledigt"}
    text = process_yaml(id=process_id, data=copy.deepcopy(FIELDS), steps=steps)
    actions = tuple(sorted({a for s in steps.values() for a in s.get("actions", {})}))
    return DrawnDefinition(process_id, text, actions)


_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
_VALID: dict[str, st.SearchStrategy[Any]] = {
    "name": _TEXT,
    "age": st.integers(0, 130),
    "income": st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False),
    "urgent": st.booleans(),
    "permit_expires": st.dates(date(2025, 1, 1), date(2030, 12, 31)).map(date.isoformat),
    "path": st.sampled_from(["p25a", "p25b", "other"]),
    "note": _TEXT,
}
_INVALID: dict[str, st.SearchStrategy[Any]] = {
    "name": st.text(min_size=41, max_size=45, alphabet="x"),
    "age": st.sampled_from([-1, 131, "zehn", 2.5]),
    "income": st.sampled_from(["viel", True]),
    "urgent": st.sampled_from(["ja", 1]),
    "permit_expires": st.sampled_from(["31.12.2026", "2026-02-30", 20260101]),
    "path": st.sampled_from(["p99", 3]),
    "note": st.sampled_from([7, ["a"]]),
}


def valid_value(name: str) -> st.SearchStrategy[Any]:
    """A value that fits the factory field ``name``.

    Never None (see ``test_setting_a_field_to_nothing_is_in_the_history``) and never NUL or
    non-finite numbers, which PostgreSQL's JSONB cannot store (see ``test_case_data_must_be_storable``).
    """
    return _VALID[name]


def field_values(name: str) -> st.SearchStrategy[Any]:
    """Values for a factory field: mostly valid, sometimes of the wrong type or out of range."""
    return st.one_of(_VALID[name], _VALID[name], _VALID[name], _INVALID[name])


@st.composite
def valid_data(draw: st.DrawFn) -> dict[str, Any]:
    """A few fields with values that fit them."""
    names = draw(st.lists(st.sampled_from(FIELD_NAMES), max_size=4, unique=True))
    return {name: draw(valid_value(name)) for name in names}


@st.composite
def action_data(draw: st.DrawFn) -> dict[str, Any]:
    """Data sent with an action: a few fields, occasionally one the process does not have."""
    names = draw(st.lists(st.sampled_from(FIELD_NAMES), max_size=3, unique=True))
    data = {name: draw(field_values(name)) for name in names}
    if draw(st.integers(0, 15)) == 0:
        data["shoe_size"] = 42
    return data


__all__ = [
    "AGENCY_CODES",
    "CATEGORIES",
    "PEOPLE",
    "REASON_CODES",
    "DrawnDefinition",
    "action_data",
    "conditions",
    "definitions",
    "field_values",
    "valid_data",
    "valid_value",
]
