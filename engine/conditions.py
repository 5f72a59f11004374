"""Declarative conditions on case data: checking, compiling and explaining them.

A condition is plain data from the definition (``all``/``any``/``not`` and
comparisons such as ``{field: age, less_than: 27}``); nothing is ever evaluated as
code. This module turns such data into a predicate once per definition version,
checks at load time that every compared value has the field's type, and renders
a condition as German or English text for people ("Zielpfad ist § 25b").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import date
from typing import Any

Predicate = Callable[[Mapping[str, Any]], bool]

COMPARISONS = ("equals", "not_equals", "in", "less_than", "at_most", "greater_than", "at_least", "is_set")
_ORDERED = ("less_than", "at_most", "greater_than", "at_least")

_WORDS_DE = {
    "equals": "ist",
    "not_equals": "ist nicht",
    "in": "ist",
    "less_than": "ist kleiner als",
    "at_most": "ist höchstens",
    "greater_than": "ist größer als",
    "at_least": "ist mindestens",
}
_WORDS_EN = {
    "equals": "is",
    "not_equals": "is not",
    "in": "is",
    "less_than": "is less than",
    "at_most": "is at most",
    "greater_than": "is greater than",
    "at_least": "is at least",
}


def comparison_of(condition: Mapping[str, Any]) -> tuple[str, Any] | None:
    """The (operator, value) of a leaf condition, or None for all/any/not."""
    for op in COMPARISONS:
        if op in condition:
            return op, condition[op]
    return None


def walk(condition: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[Mapping[str, Any], tuple]]:
    """Yield every leaf comparison with its path inside the condition (robust to malformed data)."""
    if not isinstance(condition, Mapping):
        return
    for combinator in ("all", "any"):
        items = condition.get(combinator)
        if isinstance(items, list):
            for index, item in enumerate(items):
                yield from walk(item, (*path, combinator, index))
    if "not" in condition:
        yield from walk(condition["not"], (*path, "not"))
    if "field" in condition:
        yield condition, path


def value_type_problem(field_type: str, enum_values: tuple[str, ...], op: str, value: Any) -> str | None:
    """Why ``value`` cannot be compared with a field of ``field_type`` by ``op``, or None if it can."""
    if op == "is_set":
        return None if isinstance(value, bool) else "is_set takes true or false"
    values = value if op == "in" else [value]
    if op == "in" and not isinstance(value, list):
        return "'in' takes a list of values"
    for item in values:
        problem = _scalar_problem(field_type, enum_values, item)
        if problem:
            return problem
    if op in _ORDERED and field_type in ("boolean", "enum", "string", "text"):
        article = "an" if field_type[0] in "aeiou" else "a"
        return f"{article} {field_type} field cannot be compared by size ('{op}')"
    return None


def _scalar_problem(field_type: str, enum_values: tuple[str, ...], value: Any) -> str | None:
    if field_type == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else f"expected a whole number, got {value!r}"
    if field_type == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else f"expected a number, got {value!r}"
    if field_type == "boolean":
        return None if isinstance(value, bool) else f"expected true or false, got {value!r}"
    if field_type == "date":
        if not isinstance(value, str):
            return f"expected a date written 'YYYY-MM-DD' in quotes, got {value!r}"
        try:
            date.fromisoformat(value)
        except ValueError:
            return f"expected a date written 'YYYY-MM-DD', got {value!r}"
        return None
    if field_type == "enum":
        if value not in enum_values:
            return f"{value!r} is not one of the field's values ({', '.join(map(str, enum_values))})"
        return None
    return None if isinstance(value, str) else f"expected text, got {value!r}"


def compile_condition(condition: Mapping[str, Any]) -> Predicate:
    """Compile validated condition data into a predicate over case data."""
    if "all" in condition:
        parts = [compile_condition(c) for c in condition["all"]]
        return lambda data: all(p(data) for p in parts)
    if "any" in condition:
        parts = [compile_condition(c) for c in condition["any"]]
        return lambda data: any(p(data) for p in parts)
    if "not" in condition:
        inner = compile_condition(condition["not"])
        return lambda data: not inner(data)
    name = condition["field"]
    op, expected = comparison_of(condition) or ("is_set", True)
    if op == "is_set":
        return lambda data: (data.get(name) not in (None, "")) is expected
    if op == "equals":
        return lambda data: data.get(name) == expected
    if op == "not_equals":
        return lambda data: data.get(name) != expected
    if op == "in":
        allowed = tuple(expected)
        return lambda data: data.get(name) in allowed
    compare = {
        "less_than": lambda a, b: a < b,
        "at_most": lambda a, b: a <= b,
        "greater_than": lambda a, b: a > b,
        "at_least": lambda a, b: a >= b,
    }[op]

    def ordered(data: Mapping[str, Any]) -> bool:
        actual = data.get(name)
        # A missing value satisfies no ordering: "age < 27" is not true for an unknown age.
        return actual is not None and compare(actual, expected)

    return ordered


def describe(
    condition: Mapping[str, Any],
    labels: Mapping[str, str],
    *,
    english: bool = False,
    values: Mapping[str, Mapping[str, str]] | None = None,
    data: Mapping[str, Any] | None = None,
) -> str:
    """Render a condition as text for people, using the fields' labels.

    Args:
        condition: The condition data.
        labels: Field labels by field name.
        english: English words instead of German ones.
        values: Labels of enum values by field name, shown instead of the raw keys.
        data: If given, only the parts of an ``all`` that fail for this data are shown,
            so a person reads what is missing rather than the whole rule.
    """
    if "all" in condition:
        parts = list(condition["all"])
        if data is not None:
            failing = [c for c in parts if not compile_condition(c)(data)]
            parts = failing or parts
        glue = " and " if english else " und "
        return glue.join(describe(c, labels, english=english, values=values, data=data) for c in parts)
    if "any" in condition:
        glue = " or " if english else " oder "
        inner = glue.join(describe(c, labels, english=english, values=values) for c in condition["any"])
        return f"({inner})" if len(condition["any"]) > 1 else inner
    if "not" in condition:
        return (
            ("not " if english else "nicht ")
            + "("
            + describe(condition["not"], labels, english=english, values=values)
            + ")"
        )
    name = condition["field"]
    label = labels.get(name, name)
    op, value = comparison_of(condition) or ("is_set", True)
    if op == "is_set":
        if english:
            return f"{label} is {'filled in' if value else 'empty'}"
        return f"{label} ist {'ausgefüllt' if value else 'leer'}"
    words = _WORDS_EN if english else _WORDS_DE
    names = (values or {}).get(name, {})
    if op == "in":
        shown = (" or " if english else " oder ").join(_show(v, english, names) for v in value)
    else:
        shown = _show(value, english, names)
    return f"{label} {words[op]} {shown}"


def _show(value: Any, english: bool, names: Mapping[str, str] | None = None) -> str:
    if isinstance(value, bool):
        return ("yes" if value else "no") if english else ("ja" if value else "nein")
    if names and value in names:
        return f"„{names[value]}“" if not english else f'"{names[value]}"'
    if isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:
            day = date.fromisoformat(value)
        except ValueError:
            return value
        return day.isoformat() if english else day.strftime("%d.%m.%Y")
    return str(value)


__all__ = [
    "COMPARISONS",
    "Predicate",
    "comparison_of",
    "compile_condition",
    "describe",
    "value_type_problem",
    "walk",
]
