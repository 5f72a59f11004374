"""Declarative conditions: what they mean, which values fit a field, and how they read."""

from __future__ import annotations

from typing import Any

import pytest

from engine.conditions import comparison_of, compile_condition, describe, value_type_problem, walk

LABELS = {"age": "Alter", "path": "Zielpfad", "urgent": "Dringend", "since": "Eingereist am"}
LABELS_EN = {"age": "Age", "path": "Target path", "urgent": "Urgent", "since": "Arrived on"}


@pytest.mark.parametrize(
    ("condition", "data", "expected"),
    [
        ({"field": "age", "equals": 26}, {"age": 26}, True),
        ({"field": "age", "equals": 26}, {"age": 27}, False),
        ({"field": "age", "not_equals": 26}, {"age": 27}, True),
        ({"field": "age", "not_equals": 26}, {}, True),
        ({"field": "path", "in": ["p25a", "p25b"]}, {"path": "p25b"}, True),
        ({"field": "path", "in": ["p25a", "p25b"]}, {"path": "other"}, False),
        ({"field": "age", "less_than": 27}, {"age": 26}, True),
        ({"field": "age", "less_than": 27}, {"age": 27}, False),
        ({"field": "age", "at_most": 27}, {"age": 27}, True),
        ({"field": "age", "at_most": 27}, {"age": 28}, False),
        ({"field": "age", "greater_than": 17}, {"age": 18}, True),
        ({"field": "age", "greater_than": 17}, {"age": 17}, False),
        ({"field": "age", "at_least": 18}, {"age": 18}, True),
        ({"field": "age", "at_least": 18}, {"age": 17}, False),
        ({"field": "since", "less_than": "2026-01-01"}, {"since": "2025-12-31"}, True),
        ({"field": "since", "less_than": "2026-01-01"}, {"since": "2026-01-01"}, False),
        ({"field": "urgent", "is_set": True}, {"urgent": False}, True),
        ({"field": "urgent", "is_set": True}, {"urgent": None}, False),
        ({"field": "urgent", "is_set": False}, {}, True),
        ({"field": "path", "is_set": True}, {"path": ""}, False),
    ],
)
def test_comparison_semantics(condition: dict[str, Any], data: dict[str, Any], expected: bool) -> None:
    assert compile_condition(condition)(data) is expected


@pytest.mark.parametrize("op", ["less_than", "at_most", "greater_than", "at_least"])
def test_a_missing_value_satisfies_no_ordering(op: str) -> None:
    """ "age < 27" is not true for an unknown age, and neither is "age >= 27"."""
    assert compile_condition({"field": "age", op: 27})({}) is False
    assert compile_condition({"field": "age", op: 27})({"age": None}) is False


@pytest.mark.parametrize(("op", "expected"), [("equals", False), ("in", False), ("not_equals", True)])
def test_a_missing_value_is_none_for_equality(op: str, expected: bool) -> None:
    value: Any = ["p25a"] if op == "in" else "p25a"
    assert compile_condition({"field": "path", op: value})({}) is expected


def test_a_bare_field_means_is_set() -> None:
    predicate = compile_condition({"field": "age"})
    assert predicate({"age": 0}) is True
    assert predicate({}) is False


YOUNG = {"field": "age", "less_than": 27}
TARGET = {"field": "path", "equals": "p25a"}


@pytest.mark.parametrize(
    ("data", "all_", "any_", "not_"),
    [
        ({"age": 20, "path": "p25a"}, True, True, False),
        ({"age": 20, "path": "other"}, False, True, False),
        ({"age": 40, "path": "p25a"}, False, True, True),
        ({"age": 40, "path": "other"}, False, False, True),
        ({}, False, False, True),
    ],
)
def test_all_any_not(data: dict[str, Any], all_: bool, any_: bool, not_: bool) -> None:
    assert compile_condition({"all": [YOUNG, TARGET]})(data) is all_
    assert compile_condition({"any": [YOUNG, TARGET]})(data) is any_
    assert compile_condition({"not": YOUNG})(data) is not_


def test_combinators_nest() -> None:
    condition = {"all": [{"any": [YOUNG, {"not": TARGET}]}, {"field": "urgent", "equals": True}]}
    predicate = compile_condition(condition)
    assert predicate({"age": 40, "path": "other", "urgent": True}) is True
    assert predicate({"age": 40, "path": "p25a", "urgent": True}) is False
    assert predicate({"age": 20, "path": "p25a", "urgent": False}) is False


def test_walk_yields_every_leaf_with_its_path() -> None:
    condition = {"all": [YOUNG, {"not": {"any": [TARGET, {"field": "urgent", "is_set": True}]}}]}
    assert [path for _, path in walk(condition)] == [
        ("all", 0),
        ("all", 1, "not", "any", 0),
        ("all", 1, "not", "any", 1),
    ]


@pytest.mark.parametrize("malformed", [None, "text", 3, [YOUNG], {"all": "x"}, {"not": 3}])
def test_walk_tolerates_malformed_conditions(malformed: Any) -> None:
    assert list(walk(malformed)) == []


def test_comparison_of_reads_the_operator() -> None:
    assert comparison_of(YOUNG) == ("less_than", 27)
    assert comparison_of({"field": "age"}) is None
    assert comparison_of({"all": [YOUNG]}) is None


@pytest.mark.parametrize(
    ("field_type", "op", "value"),
    [
        ("integer", "equals", 3),
        ("integer", "less_than", 27),
        ("integer", "in", [1, 2]),
        ("number", "at_least", 2.5),
        ("number", "at_least", 2),
        ("boolean", "equals", True),
        ("date", "less_than", "2026-01-01"),
        ("enum", "equals", "p25a"),
        ("enum", "in", ["p25a", "p25b"]),
        ("string", "equals", "Köln"),
        ("text", "not_equals", "x"),
        ("string", "is_set", False),
    ],
)
def test_values_that_fit_the_field_type(field_type: str, op: str, value: Any) -> None:
    assert value_type_problem(field_type, ("p25a", "p25b"), op, value) is None


@pytest.mark.parametrize(
    ("field_type", "op", "value", "problem"),
    [
        ("integer", "equals", "3", "expected a whole number, got '3'"),
        ("integer", "equals", True, "expected a whole number, got True"),
        ("integer", "equals", 2.5, "expected a whole number, got 2.5"),
        ("number", "less_than", "viel", "expected a number, got 'viel'"),
        ("boolean", "equals", "ja", "expected true or false, got 'ja'"),
        ("date", "less_than", "31.12.2026", "expected a date written 'YYYY-MM-DD', got '31.12.2026'"),
        ("date", "less_than", 20260101, "expected a date written 'YYYY-MM-DD' in quotes, got 20260101"),
        ("enum", "equals", "p25c", "'p25c' is not one of the field's values (p25a, p25b)"),
        ("enum", "in", ["p25a", "p25c"], "'p25c' is not one of the field's values (p25a, p25b)"),
        ("string", "equals", 3, "expected text, got 3"),
        ("integer", "in", 3, "'in' takes a list of values"),
        ("integer", "is_set", "yes", "is_set takes true or false"),
        ("enum", "less_than", "p25a", "an enum field cannot be compared by size ('less_than')"),
        ("boolean", "at_least", True, "a boolean field cannot be compared by size ('at_least')"),
        ("string", "greater_than", "m", "a string field cannot be compared by size ('greater_than')"),
    ],
)
def test_values_that_do_not_fit_the_field_type(field_type: str, op: str, value: Any, problem: str) -> None:
    assert value_type_problem(field_type, ("p25a", "p25b"), op, value) == problem


@pytest.mark.parametrize(
    ("condition", "german", "english"),
    [
        (YOUNG, "Alter ist kleiner als 27", "Age is less than 27"),
        ({"field": "age", "at_most": 27}, "Alter ist höchstens 27", "Age is at most 27"),
        ({"field": "age", "greater_than": 17}, "Alter ist größer als 17", "Age is greater than 17"),
        ({"field": "age", "at_least": 18}, "Alter ist mindestens 18", "Age is at least 18"),
        (TARGET, "Zielpfad ist p25a", "Target path is p25a"),
        ({"field": "path", "not_equals": "p25a"}, "Zielpfad ist nicht p25a", "Target path is not p25a"),
        (
            {"field": "path", "in": ["p25a", "p25b"]},
            "Zielpfad ist p25a oder p25b",
            "Target path is p25a or p25b",
        ),
        ({"field": "urgent", "is_set": True}, "Dringend ist ausgefüllt", "Urgent is filled in"),
        ({"field": "urgent", "is_set": False}, "Dringend ist leer", "Urgent is empty"),
        ({"field": "unlabelled", "equals": 1}, "unlabelled ist 1", "unlabelled is 1"),
        (
            {"all": [YOUNG, TARGET]},
            "Alter ist kleiner als 27 und Zielpfad ist p25a",
            "Age is less than 27 and Target path is p25a",
        ),
        (
            {"any": [YOUNG, TARGET]},
            "(Alter ist kleiner als 27 oder Zielpfad ist p25a)",
            "(Age is less than 27 or Target path is p25a)",
        ),
        ({"not": TARGET}, "nicht (Zielpfad ist p25a)", "not (Target path is p25a)"),
    ],
)
def test_describe_renders_german_and_english(condition: dict[str, Any], german: str, english: str) -> None:
    assert describe(condition, LABELS) == german
    assert describe(condition, LABELS_EN, english=True) == english


def test_describe_shows_booleans_as_ja_nein_in_german() -> None:
    assert describe({"field": "urgent", "equals": True}, LABELS) == "Dringend ist ja"
    assert describe({"field": "urgent", "equals": False}, LABELS) == "Dringend ist nein"


def test_describe_shows_booleans_as_yes_no_in_english() -> None:
    assert describe({"field": "urgent", "equals": True}, LABELS_EN, english=True) == "Urgent is yes"
    assert describe({"field": "urgent", "in": [True, False]}, LABELS_EN, english=True) == "Urgent is yes or no"


def test_describe_names_enum_values_and_german_dates() -> None:
    condition = {"all": [{"field": "target", "equals": "p25b"}, {"field": "expires", "at_most": "2025-12-31"}]}
    labels = {"target": "Zielpfad", "expires": "Ablauf"}
    values = {"target": {"p25a": "§ 25a", "p25b": "§ 25b"}}
    assert describe(condition, labels, values=values) == "Zielpfad ist „§ 25b“ und Ablauf ist höchstens 31.12.2025"


def test_describe_with_data_shows_only_the_failing_parts() -> None:
    condition = {"all": [{"field": "target", "equals": "p25b"}, {"field": "age", "less_than": 27}]}
    labels = {"target": "Zielpfad", "age": "Alter"}
    assert describe(condition, labels, data={"target": "p25b", "age": 30}) == "Alter ist kleiner als 27"
