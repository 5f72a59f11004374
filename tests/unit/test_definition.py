"""Loading definitions: the golden corpus of invalid files, the rendered form, and the model.

Every file in ``tests/data/invalid/`` opens with one ``# expect: LINE:COL CODE [TEXT]``
line per problem it holds; ``check_definition`` must report exactly those positions
and codes (and, where given, TEXT somewhere in the rendered diagnostic).
"""

from __future__ import annotations

import copy
import re
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from engine import DefinitionError, Diagnostic, check_definition, load_definition
from tests.factories import STEPS, make_definition, process_yaml

CORPUS = Path(__file__).resolve().parent.parent / "data" / "invalid"
CORPUS_FILES = sorted(CORPUS.glob("*.yaml"))
EXPECT = re.compile(r"^#\s*expect:\s*(\d+):(\d+):?\s+([a-z][a-z-]*)(?:\s+(.+?))?\s*$")


def _expectations(text: str) -> list[tuple[int, int, str, str | None]]:
    found = []
    for line in text.splitlines():
        match = EXPECT.match(line)
        if match:
            found.append((int(match[1]), int(match[2]), match[3], match[4]))
    return found


def test_the_corpus_is_large_and_every_file_states_its_expectations() -> None:
    assert len(CORPUS_FILES) >= 25
    assert [p.name for p in CORPUS_FILES if not _expectations(p.read_text(encoding="utf-8"))] == []


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.stem)
def test_invalid_definition_reports_exactly_the_expected_problems(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    expected = _expectations(text)

    definition, diagnostics = check_definition(text, path.name)

    assert definition is None
    assert [(d.line, d.column, d.code) for d in diagnostics] == [(line, col, code) for line, col, code, _ in expected]
    for diagnostic, (_, _, _, contains) in zip(diagnostics, expected, strict=True):
        assert diagnostic.file == path.name
        assert diagnostic.severity == "error"
        if contains:
            assert contains in str(diagnostic)


@pytest.mark.parametrize("text", ["", "   \n\n", "\n# nur ein Kommentar\n", b""], ids=repr)
def test_empty_input_is_an_empty_file(text: str | bytes) -> None:
    _, diagnostics = check_definition(text, "leer.yaml")
    assert [(d.line, d.column, d.code) for d in diagnostics] == [(1, 1, "empty-file")]


def test_a_file_with_several_problems_reports_all_of_them() -> None:
    text = process_yaml(title="Aufnahme").replace("title: Aufnahme\n", "titel: Aufnahme\n", 1)
    text = text.replace("agency: JC\n", "agency: JOBCENTER\n").replace("expected: 2 Wochen", "expected: 2 Wochn")

    _, diagnostics = check_definition(text, "viele.yaml")

    assert {d.code for d in diagnostics} == {"missing-key", "unknown-key", "unknown-agency", "invalid-duration"}
    assert diagnostics == sorted(diagnostics, key=lambda d: (d.line, d.column, d.code))


def test_load_definition_raises_one_error_carrying_every_diagnostic() -> None:
    text = (CORPUS / "several-problems.yaml").read_text(encoding="utf-8")

    with pytest.raises(DefinitionError) as caught:
        load_definition(text, "processes/aufnahme.yaml")

    assert len(caught.value.diagnostics) == len(_expectations(text)) == 4
    assert str(caught.value).count("\n") == 3


def test_diagnostics_render_in_compiler_form_with_the_suggestion() -> None:
    steps = copy.deepcopy(STEPS)
    steps["intake"]["actions"]["skip"] = {"title": "Überspringen", "next": "reviwe"}
    text = process_yaml(steps=steps)

    with pytest.raises(DefinitionError) as caught:
        load_definition(text, "processes/aufnahme.yaml")

    (diagnostic,) = caught.value.diagnostics
    line = text.splitlines().index("        next: reviwe") + 1
    assert str(caught.value) == (
        f"processes/aufnahme.yaml:{line}:15: error[unknown-step]: "
        "action 'skip' leads to unknown step 'reviwe' (did you mean 'review'?)"
    )
    assert diagnostic.hint == "did you mean 'review'?"
    assert diagnostic.path == "$.steps.intake.actions.skip.next"


def test_diagnostic_as_dict_has_every_field_for_json_output() -> None:
    diagnostic = Diagnostic("a.yaml", 3, 7, "unknown-step", "bad", "$.steps", "did you mean 'x'?")
    assert diagnostic.as_dict() == {
        "file": "a.yaml",
        "line": 3,
        "column": 7,
        "severity": "error",
        "code": "unknown-step",
        "message": "bad",
        "path": "$.steps",
        "hint": "did you mean 'x'?",
    }


def test_unknown_key_suggests_the_closest_key() -> None:
    _, diagnostics = check_definition(process_yaml().replace("title: Aufnahme", "titel: Aufnahme", 1), "t.yaml")
    unknown = [d for d in diagnostics if d.code == "unknown-key"]
    assert [d.hint for d in unknown] == ["did you mean 'title'?"]


def test_a_yaml_boolean_where_text_belongs_gets_a_quoting_hint() -> None:
    _, diagnostics = check_definition(process_yaml(title="x").replace("title: x", "title: yes", 1), "t.yaml")
    (diagnostic,) = diagnostics
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("wrong-type", 4, 8)
    assert "quotes" in (diagnostic.hint or "")


def test_a_valid_definition_builds_an_immutable_model() -> None:
    definition = make_definition()

    assert definition.ref == "intake@1"
    assert definition.start == "intake"
    assert list(definition.steps) == list(STEPS)
    assert definition.steps["approved"].final and definition.steps["approved"].outcome == "bewilligt"
    assert definition.steps["intake"].actions["forward"].requires == ("name",)
    assert definition.steps["intake"].expected is not None and definition.steps["intake"].expected.german() == (
        "3 Arbeitstage"
    )
    with pytest.raises(FrozenInstanceError):
        definition.steps["intake"].title = "anders"  # type: ignore[misc]
    with pytest.raises(TypeError):
        definition.steps["new"] = definition.steps["intake"]  # type: ignore[index]


def test_the_checksum_identifies_the_exact_text() -> None:
    a = make_definition()
    b = load_definition(process_yaml() + "# ein Kommentar\n", "b.yaml")
    assert a.checksum != b.checksum
    assert a.checksum == make_definition().checksum


def test_the_start_step_defaults_to_the_first_step() -> None:
    steps = {"triage": {"title": "Sichtung", "agency": "KIM-CM", "expected": "1 Arbeitstag"}, **STEPS}
    steps["triage"]["actions"] = {"accept": {"title": "Annehmen", "next": "intake"}}
    assert make_definition(steps=steps).start == "triage"
    assert make_definition(start="intake").start == "intake"


def test_bytes_are_accepted_as_utf8() -> None:
    definition, diagnostics = check_definition(process_yaml(title="Überleitung").encode("utf-8"), "u.yaml")
    assert diagnostics == []
    assert definition is not None and definition.title == "Überleitung"
