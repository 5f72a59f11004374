"""The hostile-input stage: bounded, position-keeping YAML parsing.

Each robustness test asserts a clear ``DefinitionError`` *and* that it came within one
second. The second is a bound on a hang (an alias bomb that expands, a recursion that
crashes), not a performance target.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable

import pytest

from engine import DefinitionError, Diagnostic, source
from engine.source import MAX_BYTES, MAX_DEPTH, json_path, parse_source

HANG_BOUND_SECONDS = 1.0


def _refused(text: str | bytes) -> tuple[list[Diagnostic], float]:
    started = time.perf_counter()
    with pytest.raises(DefinitionError) as caught:
        parse_source(text, "boese.yaml")
    return list(caught.value.diagnostics), time.perf_counter() - started


def _billion_laughs() -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    names = "abcdefghij"
    for previous, name in itertools.pairwise(names):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def _garbage() -> bytes:
    return random.Random(4711).randbytes(64 * 1024)


ROBUSTNESS: dict[str, tuple[Callable[[], str | bytes], str, tuple[int, int] | None]] = {
    # name: (input, expected code, expected (line, column) or None when any position will do)
    "billion-laughs alias bomb": (_billion_laughs, "too-complex", None),
    # Where libyaml stops depends on its version (our limit, or its own while scanning ahead).
    "100,000 nested '['": (lambda: "[" * 100_000, "too-deep", None),
    "100,000 nested flow mappings": (lambda: "a: " + "{b: " * 100_000, "too-deep", None),
    "100,000 nested block sequences": (lambda: "- " * 100_000 + "x\n", "too-deep", None),
    "file over the size limit (text)": (lambda: "x: " + "a" * MAX_BYTES + "\n", "too-large", (1, 1)),
    "file over the size limit (bytes)": (lambda: b"x: " + b"a" * MAX_BYTES + b"\n", "too-large", (1, 1)),
    "binary garbage": (_garbage, "encoding", (1, 1)),
    "invalid UTF-8": (lambda: "id: Überleitung\n".encode("latin-1"), "encoding", (1, 1)),
    "huge single line": (lambda: "title: " + "x" * (MAX_BYTES - 100), None, None),
    "tabs in indentation": (lambda: "steps:\n\tintake:\n\t\ttitle: Erfassung\n", "yaml-syntax", (2, 1)),
}


@pytest.mark.parametrize("name", list(ROBUSTNESS))
def test_hostile_input_fails_clearly_and_quickly(name: str) -> None:
    make, code, position = ROBUSTNESS[name]
    text = make()

    if code is None:  # a long but harmless document: parsed, not refused
        started = time.perf_counter()
        parsed = parse_source(text, "lang.yaml")
        elapsed = time.perf_counter() - started
        assert len(parsed.data["title"]) == MAX_BYTES - 100
    else:
        diagnostics, elapsed = _refused(text)
        assert [d.code for d in diagnostics] == [code]
        (diagnostic,) = diagnostics
        assert diagnostic.file == "boese.yaml"
        assert diagnostic.line >= 1 and diagnostic.column >= 1
        assert "\n" not in diagnostic.message
        if position is not None:
            assert (diagnostic.line, diagnostic.column) == position
    assert elapsed < HANG_BOUND_SECONDS


def test_alias_bomb_message_names_the_problem() -> None:
    diagnostics, _ = _refused(_billion_laughs())
    assert "alias" in diagnostics[0].message


def test_a_few_harmless_aliases_are_allowed() -> None:
    parsed = parse_source("base: &b [1, 2]\ncopy: *b\n", "a.yaml")
    assert parsed.data == {"base": [1, 2], "copy": [1, 2]}


def test_too_many_elements_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source, "MAX_NODES", 1_000)  # the real limit takes seconds to reach
    diagnostics, _ = _refused("[" + "1, " * 1_001 + "]")
    assert [(d.code, d.line) for d in diagnostics] == [("too-complex", 1)]
    assert "1000 elements" in diagnostics[0].message


def test_a_huge_flow_sequence_within_the_size_limit_is_refused_quickly() -> None:
    """The worst case under the size limit: the node budget, not the size, stops it.

    Measured in CPU time: the legitimate work here is about half a second, so on a busy
    machine wall-clock time says little about a hang.
    """
    text = "[" + "1," * ((MAX_BYTES - 10) // 2) + "]"
    started = time.process_time()
    diagnostics, _ = _refused(text)
    assert [d.code for d in diagnostics] == ["too-complex"]
    assert time.process_time() - started < HANG_BOUND_SECONDS


def test_a_control_character_is_reported_where_it_is() -> None:
    diagnostics, elapsed = _refused("id: a\ntitle: b\nowner: c\x07d\n")
    (diagnostic,) = diagnostics
    assert elapsed < HANG_BOUND_SECONDS
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("yaml-syntax", 3, 9)
    assert "\n" not in diagnostic.message


def test_a_tab_in_indentation_is_named_as_such() -> None:
    diagnostics, _ = _refused("steps:\n\tintake:\n\t\ttitle: Erfassung\n")
    assert diagnostics[0].hint == "indent with spaces; YAML does not allow tabs"


def test_positions_are_one_based_for_keys_and_values() -> None:
    parsed = parse_source("id: intake\nsteps:\n  intake:\n    title: Erfassung\n", "p.yaml")

    assert parsed.values[()] == (1, 1)
    assert parsed.keys[("id",)] == (1, 1)
    assert parsed.values[("id",)] == (1, 5)
    assert parsed.keys[("steps", "intake")] == (3, 3)
    assert parsed.values[("steps", "intake", "title")] == (4, 12)
    assert parsed.locate(("steps", "intake", "title")) == (4, 12)
    assert parsed.locate(("steps", "intake", "title"), key=True) == (4, 5)


def test_list_items_have_positions_by_index() -> None:
    parsed = parse_source("legal_refs:\n  - § 15 SGB II\n  - § 35 SGB I\n", "p.yaml")
    assert parsed.values[("legal_refs", 1)] == (3, 5)
    assert parsed.data == {"legal_refs": ["§ 15 SGB II", "§ 35 SGB I"]}


def test_locate_falls_back_to_the_nearest_known_ancestor() -> None:
    parsed = parse_source("steps:\n  intake:\n    title: x\n", "p.yaml")
    assert parsed.locate(("steps", "intake", "actions", "go")) == (3, 5)
    assert parsed.locate(("nothing", "here")) == (1, 1)


def test_diagnostic_carries_the_json_path() -> None:
    parsed = parse_source("steps:\n  intake:\n    timers:\n      - {after: x}\n", "p.yaml")
    diagnostic = parsed.diagnostic(("steps", "intake", "timers", 0, "after"), "invalid-duration", "bad")
    assert diagnostic.path == "$.steps.intake.timers[0].after"
    assert (diagnostic.line, diagnostic.column) == (4, 17)
    assert json_path(()) == "$"


def test_scalars_follow_the_core_schema_but_dates_stay_text() -> None:
    parsed = parse_source(
        "n: 3\nf: 2.5\nb: true\nnull_value: null\ntext: '3'\ndate: 2026-05-12\nquoted_on: 'on'\n", "p.yaml"
    )
    assert parsed.data == {
        "n": 3,
        "f": 2.5,
        "b": True,
        "null_value": None,
        "text": "3",
        "date": "2026-05-12",
        "quoted_on": "on",
    }


@pytest.mark.parametrize("word", ["on", "off", "yes", "no", "true", "False", "1", "null"])
def test_keys_that_yaml_reads_as_non_text_are_reported(word: str) -> None:
    diagnostics, _ = _refused(f"id: x\n{word}: 1\n")
    assert [(d.code, d.line, d.column) for d in diagnostics] == [("non-string-key", 2, 1)]
    assert diagnostics[0].hint == f"write it in quotes: '\"{word}\"'"


def test_quoted_boolean_words_are_fine_as_keys() -> None:
    assert parse_source('"on": 1\n', "p.yaml").data == {"on": 1}


def test_duplicate_keys_are_all_reported_with_the_first_line() -> None:
    diagnostics, _ = _refused("id: a\ntitle: x\nid: b\ntitle: y\n")
    assert [(d.code, d.line) for d in diagnostics] == [("duplicate-key", 3), ("duplicate-key", 4)]
    assert "first on line 1" in diagnostics[0].message
    assert "first on line 2" in diagnostics[1].message


def test_merge_keys_are_refused_as_unsupported() -> None:
    diagnostics, _ = _refused("base: &b {a: 1}\nother:\n  <<: *b\n")
    assert [(d.code, d.line, d.column) for d in diagnostics] == [("unsupported", 3, 3)]
    assert "merge keys" in diagnostics[0].message


def test_an_unknown_alias_is_a_syntax_error() -> None:
    diagnostics, _ = _refused("a: *nowhere\n")
    assert diagnostics[0].code == "yaml-syntax"


@pytest.mark.parametrize(
    "text",
    [
        "x: !!python/object/apply:os.system ['id']\n",
        "x: !!python/name:os.system\n",
        "x: !custom 1\n",
        "x: !!set {a, b}\n",
        "x: !!binary aGVsbG8=\n",
    ],
)
def test_tags_outside_the_core_schema_are_refused(text: str) -> None:
    diagnostics, _ = _refused(text)
    assert [(d.code, d.line, d.column) for d in diagnostics] == [("unsafe-tag", 1, 4)]


def test_complex_keys_are_refused() -> None:
    diagnostics, _ = _refused("? [a, b]\n: 1\n")
    assert diagnostics[0].code == "non-string-key"


def test_a_second_document_is_refused_at_its_start() -> None:
    diagnostics, _ = _refused("id: a\n---\nid: b\n")
    assert [(d.code, d.line, d.column) for d in diagnostics] == [("multiple-documents", 2, 1)]


def test_an_explicit_single_document_is_fine() -> None:
    assert parse_source("---\nid: a\n...\n", "p.yaml").data == {"id": "a"}


def test_the_nesting_limit_itself_is_allowed() -> None:
    text = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert parse_source(text, "p.yaml").data is not None
