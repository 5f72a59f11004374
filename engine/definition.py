"""Process definitions: the immutable model and the loader that builds it.

Loading a definition is three stages, each reporting *every* problem it finds with
file, line and column:

1. ``source.parse_source``: hostile-input-safe YAML with positions;
2. the JSON Schema ``schemas/process.schema.json`` (Draft 2020-12), whose raw
   messages are translated into plain language here;
3. semantic checks the schema cannot express: references to steps, agencies and
   fields, reachability, a path to a final step, types in conditions, handoffs,
   timers, reserved names, durations.

The result is a :class:`ProcessDefinition` made of frozen dataclasses, safe to
share between threads and cases. Only this module and ``source.py`` import
``yaml``/``jsonschema``.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import jsonschema

from engine import conditions
from engine.calendar import Calendar
from engine.durations import Duration, DurationUnit, parse_duration
from engine.errors import DefinitionError, Diagnostic
from engine.source import ParsedSource, json_path, parse_source

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "process.schema.json"

#: Action names that would clash with the engine's own operations on a case or with
#: attributes ``transitions`` generates; checked at load time, with a location.
RESERVED_ACTION_NAMES = frozenset(
    {
        "pause",
        "resume",
        "assign",
        "close",
        "cancel",
        "consent",
        "revoke",
        "trigger",
        "state",
        "data",
        "version",
        "step",
        "case",
        "machine",
        "open",
        "fire",
        "history",
    }
)
RESERVED_ACTION_PREFIXES = ("to_", "may_", "is_")

FIELD_TYPES = ("string", "text", "date", "integer", "number", "boolean", "enum")

#: Data-protection categories of fields (German, English). A consent names the categories it
#: covers; a handoff needs them all, except ``process`` (procedural facts such as a filing date).
CATEGORY_LABELS = {
    "identity": ("Identität", "identity"),
    "contact": ("Kontaktdaten", "contact details"),
    "residence": ("Aufenthaltsstatus", "residence status"),
    "benefits": ("Sozialleistungen", "benefits"),
    "employment": ("Arbeit und Beschäftigung", "employment"),
    "education": ("Bildung und Sprache", "education and language"),
    "family": ("Familie und Haushalt", "family and household"),
    "health": ("Gesundheit (Art. 9 DSGVO)", "health (Art. 9 GDPR)"),
    "process": ("Verfahrensangaben", "procedural data"),
}


# --------------------------------------------------------------------------- model


@dataclass(frozen=True, slots=True)
class FieldDef:
    """A typed case data field."""

    name: str
    type: str
    label: str
    label_en: str | None = None
    help: str | None = None
    values: Mapping[str, str] = field(default_factory=dict)
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    category: str = "process"

    def check(self, value: Any) -> str | None:
        """Return why ``value`` does not fit this field (English), or None if it does."""
        if value is None:
            return None
        kind = self.type
        if kind in ("string", "text"):
            if not isinstance(value, str):
                return "expected text"
            if "\x00" in value:
                return "must not contain NUL characters"
            if self.max_length is not None and len(value) > self.max_length:
                return f"longer than {self.max_length} characters"
            return None
        if kind == "date":
            if not isinstance(value, str):
                return "expected a date YYYY-MM-DD"
            try:
                date.fromisoformat(value)
            except ValueError:
                return f"'{value}' is not a date YYYY-MM-DD"
            return None
        if kind == "boolean":
            return None if isinstance(value, bool) else "expected true or false"
        if kind == "enum":
            return None if value in self.values else f"'{value}' is not one of {', '.join(self.values)}"
        if kind == "integer" and (not isinstance(value, int) or isinstance(value, bool)):
            return "expected a whole number"
        if kind == "number" and (not isinstance(value, int | float) or isinstance(value, bool)):
            return "expected a number"
        if isinstance(value, float) and not math.isfinite(value):
            return "expected a finite number"
        if self.minimum is not None and value < self.minimum:
            return f"less than the minimum {self.minimum:g}"
        if self.maximum is not None and value > self.maximum:
            return f"greater than the maximum {self.maximum:g}"
        return None


@dataclass(frozen=True, slots=True)
class HandoffDef:
    """Passing a case's data from one agency to another."""

    from_agency: str
    to_agency: str
    shares: tuple[str, ...]
    consent_required: bool = True
    legal_basis: str | None = None
    categories: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ChildDef:
    """Opening a case of another process as a child of the current one."""

    process: str
    name: str
    copy: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ActionDef:
    """A named action of a step (a transition when it has ``next``)."""

    name: str
    title: str
    title_en: str | None = None
    next: str | None = None
    when: Mapping[str, Any] | None = None
    requires: tuple[str, ...] = ()
    records: tuple[str, ...] = ()
    handoff: HandoffDef | None = None
    start_child: ChildDef | None = None
    system_only: bool = False


@dataclass(frozen=True, slots=True)
class TimerDef:
    """Fires ``action`` after a time in the step, or before/after a date field."""

    action: str
    after: Duration | None = None
    before: Duration | None = None
    field: str | None = None


@dataclass(frozen=True, slots=True)
class StepDef:
    """One step of a process."""

    id: str
    title: str
    title_en: str | None = None
    description: str | None = None
    agency: str | None = None
    waiting_on: str | None = None
    expected: Duration | None = None
    warn_after: Duration | None = None
    client_wait_stops_clock: bool = False
    final: bool = False
    outcome: str | None = None
    wait_for_child: str | None = None
    on_child_done: str | None = None
    actions: Mapping[str, ActionDef] = field(default_factory=dict)
    timers: tuple[TimerDef, ...] = ()
    legal_refs: tuple[str, ...] = ()
    stall_causes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class ProcessDefinition:
    """A validated, immutable process definition (one ``id@version``)."""

    id: str
    version: int
    title: str
    start: str
    steps: Mapping[str, StepDef]
    agencies: Mapping[str, str]
    fields: Mapping[str, FieldDef]
    calendar: Calendar
    source_text: str
    checksum: str
    file: str
    title_en: str | None = None
    description: str | None = None
    owner: str | None = None
    decision_ref: str | None = None
    legal_refs: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """The identifier ``id@version``."""
        return f"{self.id}@{self.version}"

    def child_processes(self) -> tuple[str, ...]:
        """Ids of the processes this one can open as child cases."""
        return tuple(
            sorted({a.start_child.process for s in self.steps.values() for a in s.actions.values() if a.start_child})
        )


# --------------------------------------------------------------------------- loading


def checksum_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@cache
def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def check_definition(text: str | bytes, file: str = "<text>") -> tuple[ProcessDefinition | None, list[Diagnostic]]:
    """Validate one definition and build it if it is valid.

    Args:
        text: The YAML source.
        file: The name diagnostics use for the file.

    Returns:
        ``(definition, [])`` if valid, else ``(None, diagnostics)`` sorted by position.
    """
    try:
        parsed = parse_source(text, file)
    except DefinitionError as exc:
        return None, sorted(exc.diagnostics, key=_order)
    if not isinstance(parsed.data, dict):
        kind = "empty" if parsed.data is None else type(parsed.data).__name__
        return None, [parsed.diagnostic((), "not-a-mapping", f"the document must be a mapping of keys, not {kind}")]
    diagnostics = _schema_diagnostics(parsed)
    checker = _SemanticChecker(parsed)
    diagnostics.extend(checker.run())
    if diagnostics:
        return None, sorted(_dedupe(diagnostics), key=_order)
    return checker.build(), []


def load_definition(text: str | bytes, file: str = "<text>") -> ProcessDefinition:
    """Validate and build one definition.

    Raises:
        DefinitionError: With every problem found.
    """
    definition, diagnostics = check_definition(text, file)
    if definition is None:
        raise DefinitionError(diagnostics)
    return definition


def definition_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand directories into their ``*.yaml``/``*.yml`` files, sorted; keep files as given."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()))
        else:
            files.append(path)
    return files


def check_files(
    paths: Iterable[str | Path], known: Mapping[str, ProcessDefinition] | None = None
) -> tuple[list[ProcessDefinition], list[Diagnostic]]:
    """Validate files (directories are expanded) and the references between them.

    Args:
        paths: Files or directories.
        known: Already deployed definitions (latest version per id) that child-case
            references may point to besides the files themselves.

    Returns:
        The valid definitions and the diagnostics of all files.
    """
    definitions: list[ProcessDefinition] = []
    diagnostics: list[Diagnostic] = []
    for path in definition_files(paths):
        name = str(path)
        try:
            if path.stat().st_size > 4 * 1024 * 1024:
                raise OSError("file too large to read")
            raw = path.read_bytes()
        except OSError as exc:
            diagnostics.append(Diagnostic(name, 0, 0, "unreadable", f"cannot read file: {exc.strerror or exc}"))
            continue
        definition, found = check_definition(raw, name)
        diagnostics.extend(found)
        if definition is not None:
            definitions.append(definition)
    available = dict(known or {})
    wanted = {c for d in definitions for c in d.child_processes()} - {d.id for d in definitions} - set(available)
    if wanted:
        # A file checked on its own may start child cases of processes defined beside it.
        given = {p.resolve() for p in definition_files(paths)}
        for sibling in definition_files(sorted({p.parent for p in given})):
            if sibling.resolve() in given:
                continue
            found, _ = check_definition(sibling.read_bytes(), str(sibling))
            if found is not None and found.id in wanted:
                available[found.id] = found
    diagnostics.extend(check_references(definitions, available))
    return definitions, diagnostics


def check_references(
    definitions: Iterable[ProcessDefinition], known: Mapping[str, ProcessDefinition]
) -> list[Diagnostic]:
    """Check child-case references across definitions: the process exists, copied fields match."""
    available: dict[str, ProcessDefinition] = dict(known)
    definitions = list(definitions)
    for d in definitions:
        current = available.get(d.id)
        if current is None or current.version <= d.version:
            available[d.id] = d
    problems: list[Diagnostic] = []
    for d in definitions:
        located = _relocator(d)  # parses the file again only when a problem must be located
        for step in d.steps.values():
            for action in step.actions.values():
                child = action.start_child
                if child is None:
                    continue
                path = ("steps", step.id, "actions", action.name, "start_child")
                target = available.get(child.process)
                if target is None:
                    problems.append(
                        located(
                            path + ("process",),
                            "unknown-process",
                            f"child process '{child.process}' is neither in these files nor deployed",
                            _suggest(child.process, available),
                        )
                    )
                    continue
                for index, name in enumerate(child.copy):
                    theirs = target.fields.get(name)
                    ours = d.fields[name]
                    if theirs is None:
                        problems.append(
                            located(
                                path + ("copy", index),
                                "unknown-field",
                                f"field '{name}' is copied into '{target.id}', which does not declare it",
                                _suggest(name, target.fields),
                            )
                        )
                    elif theirs.type != ours.type:
                        problems.append(
                            located(
                                path + ("copy", index),
                                "type-mismatch",
                                f"field '{name}' is {ours.type} here but {theirs.type} in '{target.id}'",
                            )
                        )
    return problems


def _relocator(definition: ProcessDefinition):  # type: ignore[no-untyped-def]
    """Re-parse a valid definition (lazily) to locate cross-file problems precisely."""
    parsed: list[ParsedSource] = []

    def located(path: tuple, code: str, message: str, hint: str | None = None) -> Diagnostic:
        if not parsed:
            parsed.append(parse_source(definition.source_text, definition.file))
        return parsed[0].diagnostic(path, code, message, hint=hint)

    return located


def _order(d: Diagnostic) -> tuple[str, int, int, str]:
    return (d.file, d.line, d.column, d.code)


def _dedupe(items: list[Diagnostic]) -> list[Diagnostic]:
    seen: set[tuple] = set()
    out = []
    for d in items:
        key = (d.file, d.line, d.column, d.code, d.message)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def _suggest(name: Any, candidates: Iterable[str]) -> str | None:
    if not isinstance(name, str):
        return None
    found = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean '{found[0]}'?" if found else None


# --------------------------------------------------------------------------- schema stage

_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
}


def _describe_type(value: Any) -> str:
    if isinstance(value, bool):
        return f"'{str(value).lower()}' (true/false)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return f"'{value}'"
    return repr(value)


def _schema_diagnostics(parsed: ParsedSource) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for error in _validator().iter_errors(parsed.data):
        out.extend(_translate(parsed, error))
    return out


def _translate(parsed: ParsedSource, error: jsonschema.ValidationError) -> list[Diagnostic]:
    path = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    kind = error.validator
    instance = error.instance
    if schema.get("title") == "Dauer":
        return []  # durations are parsed (and reported precisely) by the semantic stage
    if kind == "additionalProperties" and isinstance(instance, dict):
        allowed = list(schema.get("properties", {}))
        extras = [k for k in instance if k not in allowed]
        return [
            parsed.diagnostic(
                path + (k,),
                "unknown-key",
                f"unknown key '{k}'" + _where(path),
                hint=_suggest(k, allowed),
                key=True,
            )
            for k in extras
        ]
    if kind == "required":
        missing = re.findall(r"'([^']+)' is a required property", error.message)
        name = missing[0] if missing else str(error.validator_value)
        return [parsed.diagnostic(path, "missing-key", f"missing required key '{name}'" + _where(path), key=True)]
    if kind == "propertyNames":
        bad = instance
        return []  # reported by the nested pattern error below (with the key's own position)
    if kind == "pattern" and error.relative_schema_path and "propertyNames" in error.relative_schema_path:
        bad = instance
        return [parsed.diagnostic(path + (bad,), "invalid-name", _name_message(schema, bad), key=True)]
    if kind == "type":
        expected = error.validator_value
        words = " or ".join(_TYPE_WORDS.get(t, t) for t in (expected if isinstance(expected, list) else [expected]))
        hint = None
        if isinstance(instance, bool) and "string" in str(expected):
            hint = "YAML reads yes/no/on/off/true/false as true/false; put the text in quotes"
        return [
            parsed.diagnostic(
                path,
                "wrong-type",
                f"expected {words}, got {_describe_type(instance)}" + _where(path[:-1] if path else path),
                hint=hint,
            )
        ]
    if kind == "enum":
        allowed = [str(v) for v in error.validator_value]
        return [
            parsed.diagnostic(
                path,
                "invalid-value",
                f"{_describe_type(instance)} is not allowed here; allowed: {', '.join(allowed)}",
                hint=_suggest(instance, allowed),
            )
        ]
    if kind == "const":
        return [
            parsed.diagnostic(
                path, "invalid-value", f"must be {error.validator_value!r}, got {_describe_type(instance)}"
            )
        ]
    if kind == "pattern":
        return [parsed.diagnostic(path, "invalid-value", _name_message(schema, instance))]
    if kind == "oneOf":
        title = schema.get("title")
        if title == "Timer":
            message = "a timer needs 'action' and either 'after', or 'before' together with 'field'"
        elif title == "Bedingung":
            message = (
                "a condition is one of all: [...], any: [...], not: {...}, or a comparison such as "
                "{field: name, equals: value}"
            )
        else:
            message = error.message
        return [parsed.diagnostic(path, "schema", message)]
    if kind in ("minProperties", "minItems", "minLength"):
        return [parsed.diagnostic(path, "empty-value", "must not be empty" + _where(path[:-1]))]
    if kind in ("maxProperties",) and schema.get("title") == "Bedingung":
        return [parsed.diagnostic(path, "schema", "a comparison has exactly one 'field' and one operator")]
    return [parsed.diagnostic(path, "schema", error.message)]


def _where(path: tuple) -> str:
    return f" in {json_path(path)}" if path else ""


def _name_message(schema: Mapping[str, Any], value: Any) -> str:
    title = schema.get("title", "")
    if title == "Kürzel einer Stelle":
        return f"'{value}' is not an agency code (capital letters, digits and '-', e.g. ABH, KIM-CM)"
    if title in ("Bezeichner", "Prozess-ID"):
        return f"'{value}' is not a valid name (lowercase letters, digits and '_', starting with a letter)"
    return f"'{value}' does not have the required form"


# --------------------------------------------------------------------------- semantic stage


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


class _SemanticChecker:
    """Checks the meaning of a (possibly schema-invalid) document, defensively, collecting all problems."""

    def __init__(self, parsed: ParsedSource) -> None:
        self.parsed = parsed
        self.doc: dict[str, Any] = parsed.data
        self.problems: list[Diagnostic] = []
        self.durations: dict[tuple, Duration] = {}

    def report(self, path: tuple, code: str, message: str, hint: str | None = None, *, key: bool = False) -> None:
        self.problems.append(self.parsed.diagnostic(path, code, message, hint=hint, key=key))

    def run(self) -> list[Diagnostic]:
        doc = self.doc
        self.agencies = {k for k in _as_dict(doc.get("agencies")) if isinstance(k, str)}
        self.fields = {k: v for k, v in _as_dict(doc.get("data")).items() if isinstance(v, dict)}
        self.steps = {k: v for k, v in _as_dict(doc.get("steps")).items() if isinstance(v, dict)}
        self._check_fields()
        self._check_calendar()
        start = doc.get("start")
        if isinstance(start, str) and self.steps and start not in self.steps:
            self.report(
                ("start",),
                "unknown-step",
                f"start step '{start}' is not declared",
                _suggest(start, self.steps),
            )
        children = {
            _as_dict(a.get("start_child")).get("as")
            for s in self.steps.values()
            for a in _as_dict(s.get("actions")).values()
            if isinstance(a, dict)
        } - {None}
        for step_id, step in self.steps.items():
            self._check_step(step_id, step, children)
        self._check_graph()
        return self.problems

    # -- pieces

    def _check_fields(self) -> None:
        for name, spec in self.fields.items():
            if spec.get("type") == "enum" and not spec.get("values"):
                self.report(("data", name), "enum-without-values", f"enum field '{name}' needs 'values'", key=True)
            if spec.get("type") != "enum" and "values" in spec:
                self.report(
                    ("data", name, "values"),
                    "values-without-enum",
                    f"'values' only applies to enum fields; field '{name}' is {spec.get('type')}",
                    key=True,
                )

    def _check_calendar(self) -> None:
        for index, day in enumerate(_as_list(_as_dict(self.doc.get("calendar")).get("closing_days"))):
            if not isinstance(day, str):
                continue
            try:
                Calendar(closing_days=[day])
            except ValueError as exc:
                self.report(("calendar", "closing_days", index), "invalid-value", str(exc))

    def _agency(self, path: tuple, code: Any) -> None:
        if isinstance(code, str) and code not in self.agencies:
            self.report(
                path,
                "unknown-agency",
                f"agency '{code}' is not declared under 'agencies'",
                _suggest(code, self.agencies),
            )

    def _field(self, path: tuple, name: Any, code: str = "unknown-field", what: str = "field") -> None:
        if isinstance(name, str) and name not in self.fields:
            self.report(path, code, f"{what} '{name}' is not declared under 'data'", _suggest(name, self.fields))

    def _duration(self, path: tuple, text: Any) -> Duration | None:
        if not isinstance(text, str):
            return None
        try:
            duration = parse_duration(text)
        except ValueError as exc:
            self.report(path, "invalid-duration", str(exc))
            return None
        self.durations[path] = duration
        return duration

    def _check_step(self, step_id: str, step: dict[str, Any], children: set[Any]) -> None:
        base = ("steps", step_id)
        final = step.get("final") is True
        actions = {k: v for k, v in _as_dict(step.get("actions")).items() if isinstance(v, dict)}
        self._agency(base + ("agency",), step.get("agency"))
        self._agency(base + ("waiting_on",), step.get("waiting_on"))
        expected = self._duration(base + ("expected",), step.get("expected"))
        warn = self._duration(base + ("warn_after",), step.get("warn_after"))
        if final:
            if actions:
                self.report(
                    base + ("actions",),
                    "final-with-actions",
                    f"final step '{step_id}' cannot have actions",
                    key=True,
                )
            if step.get("timers"):
                self.report(
                    base + ("timers",),
                    "final-with-timers",
                    f"final step '{step_id}' cannot have timers",
                    key=True,
                )
        else:
            if "agency" not in step:
                self.report(
                    base,
                    "missing-agency",
                    f"step '{step_id}' needs an 'agency' (who is responsible)",
                    key=True,
                )
            if "expected" not in step:
                self.report(
                    base,
                    "missing-expected",
                    f"step '{step_id}' needs 'expected' (the duration after which it counts as stalled)",
                    key=True,
                )
            if "outcome" in step:
                self.report(base + ("outcome",), "outcome-not-final", "only final steps have an 'outcome'", key=True)
        if expected and warn and _comparable(warn, expected) and warn.amount >= expected.amount:
            self.report(
                base + ("warn_after",),
                "warn-after-expected",
                f"'warn_after' ({warn.german()}) must be shorter than 'expected' ({expected.german()})",
            )
        for name, action in actions.items():
            self._check_action(base + ("actions", name), name, action)
        for index, timer in enumerate(_as_list(step.get("timers"))):
            if not isinstance(timer, dict):
                continue
            tpath = base + ("timers", index)
            action_name = timer.get("action")
            if isinstance(action_name, str) and action_name not in actions:
                self.report(
                    tpath + ("action",),
                    "timer-unknown-action",
                    f"timer fires '{action_name}', which is not an action of step '{step_id}'",
                    _suggest(action_name, actions),
                )
            self._duration(tpath + ("after",), timer.get("after"))
            self._duration(tpath + ("before",), timer.get("before"))
            fname = timer.get("field")
            self._field(tpath + ("field",), fname)
            if isinstance(fname, str) and fname in self.fields and self.fields[fname].get("type") != "date":
                self.report(
                    tpath + ("field",),
                    "type-mismatch",
                    f"a timer needs a date field; '{fname}' is {self.fields[fname].get('type')}",
                )
        awaited = step.get("wait_for_child")
        if awaited is not None:
            if awaited not in children:
                self.report(
                    base + ("wait_for_child",),
                    "unknown-child",
                    f"no action of this process starts a child case named '{awaited}'",
                    _suggest(awaited, [c for c in children if isinstance(c, str)]),
                )
            done = step.get("on_child_done")
            if done is None:
                self.report(
                    base + ("wait_for_child",),
                    "missing-key",
                    "a step with 'wait_for_child' needs 'on_child_done' (the action to fire)",
                    key=True,
                )
            elif isinstance(done, str) and done not in actions:
                self.report(
                    base + ("on_child_done",),
                    "unknown-action",
                    f"'{done}' is not an action of step '{step_id}'",
                    _suggest(done, actions),
                )
        elif "on_child_done" in step:
            self.report(base + ("on_child_done",), "missing-key", "'on_child_done' needs 'wait_for_child'", key=True)

    def _check_action(self, path: tuple, name: str, action: dict[str, Any]) -> None:
        if name in RESERVED_ACTION_NAMES or name.startswith(RESERVED_ACTION_PREFIXES):
            self.report(
                path,
                "reserved-name",
                f"'{name}' is reserved for the engine; choose another action name",
                key=True,
            )
        target = action.get("next")
        if isinstance(target, str) and target not in self.steps:
            self.report(
                path + ("next",),
                "unknown-step",
                f"action '{name}' leads to unknown step '{target}'",
                _suggest(target, self.steps),
            )
        for key in ("requires", "records"):
            for index, fname in enumerate(_as_list(action.get(key))):
                self._field(path + (key, index), fname)
        handoff = _as_dict(action.get("handoff"))
        if handoff:
            self._agency(path + ("handoff", "from"), handoff.get("from"))
            self._agency(path + ("handoff", "to"), handoff.get("to"))
            for index, fname in enumerate(_as_list(handoff.get("shares"))):
                self._field(
                    path + ("handoff", "shares", index),
                    fname,
                    "handoff-unknown-field",
                    "handoff shares field",
                )
            if handoff.get("consent_required") is False and not handoff.get("legal_basis"):
                self.report(
                    path + ("handoff",),
                    "handoff-without-basis",
                    "a handoff without consent needs a 'legal_basis'",
                    key=True,
                )
        child = _as_dict(action.get("start_child"))
        for index, fname in enumerate(_as_list(child.get("copy"))):
            self._field(path + ("start_child", "copy", index), fname)
        when = action.get("when")
        for leaf, leaf_path in conditions.walk(when):
            cpath = path + ("when",) + leaf_path
            fname = leaf.get("field")
            if not isinstance(fname, str):
                continue
            if fname not in self.fields:
                self._field(cpath + ("field",), fname)
                continue
            comparison = conditions.comparison_of(leaf)
            if comparison is None:
                continue
            op, value = comparison
            spec = self.fields[fname]
            problem = conditions.value_type_problem(
                str(spec.get("type")), tuple(_as_dict(spec.get("values"))), op, value
            )
            if problem:
                self.report(
                    cpath + (op,),
                    "type-mismatch",
                    f"condition compares {spec.get('type')} field '{fname}': {problem}",
                )

    def _check_graph(self) -> None:
        if not self.steps:
            return
        start = self.doc.get("start")
        if not isinstance(start, str) or start not in self.steps:
            start = next(iter(self.steps))
        edges: dict[str, set[str]] = {s: set() for s in self.steps}
        for step_id, step in self.steps.items():
            for action in _as_dict(step.get("actions")).values():
                target = _as_dict(action).get("next")
                if isinstance(target, str) and target in self.steps:
                    edges[step_id].add(target)
        finals = {s for s, spec in self.steps.items() if spec.get("final") is True}
        if not finals:
            self.report(("steps",), "no-final-step", "the process has no final step ('final: true')", key=True)
            return
        reached = _closure({start}, edges)
        for step_id in self.steps:
            if step_id not in reached:
                self.report(
                    ("steps", step_id),
                    "unreachable-step",
                    f"step '{step_id}' cannot be reached from the start step '{start}'",
                    key=True,
                )
        reverse: dict[str, set[str]] = {s: set() for s in self.steps}
        for source, targets in edges.items():
            for target in targets:
                reverse[target].add(source)
        finishing = _closure(finals, reverse)
        for step_id in self.steps:
            if step_id in reached and step_id not in finishing:
                self.report(
                    ("steps", step_id),
                    "no-path-to-final",
                    f"from step '{step_id}' no path leads to a final step; cases would be stuck there",
                    key=True,
                )

    # -- building

    def build(self) -> ProcessDefinition:
        doc = self.doc
        fields = {
            name: FieldDef(
                name=name,
                type=spec["type"],
                label=spec["label"],
                label_en=spec.get("label_en"),
                help=spec.get("help"),
                values=MappingProxyType(dict(spec.get("values", {}))),
                minimum=spec.get("minimum"),
                maximum=spec.get("maximum"),
                max_length=spec.get("max_length"),
                category=spec.get("category", "process"),
            )
            for name, spec in _as_dict(doc.get("data")).items()
        }
        steps = {}
        for step_id, spec in doc["steps"].items():
            base = ("steps", step_id)
            agency = spec.get("agency")
            actions = {
                name: _build_action(name, a, agency, fields) for name, a in _as_dict(spec.get("actions")).items()
            }
            timers = tuple(
                TimerDef(
                    action=t["action"],
                    after=self.durations.get(base + ("timers", i, "after")),
                    before=self.durations.get(base + ("timers", i, "before")),
                    field=t.get("field"),
                )
                for i, t in enumerate(_as_list(spec.get("timers")))
            )
            steps[step_id] = StepDef(
                id=step_id,
                title=spec["title"],
                title_en=spec.get("title_en"),
                description=spec.get("description"),
                agency=agency,
                waiting_on=spec.get("waiting_on", agency),
                expected=self.durations.get(base + ("expected",)),
                warn_after=self.durations.get(base + ("warn_after",)),
                client_wait_stops_clock=bool(spec.get("client_wait_stops_clock", False)),
                final=bool(spec.get("final", False)),
                outcome=spec.get("outcome"),
                wait_for_child=spec.get("wait_for_child"),
                on_child_done=spec.get("on_child_done"),
                actions=MappingProxyType(actions),
                timers=timers,
                legal_refs=tuple(spec.get("legal_refs", ())),
                stall_causes=tuple(spec.get("stall_causes", ())),
            )
        calendar_spec = _as_dict(doc.get("calendar"))
        return ProcessDefinition(
            id=doc["id"],
            version=doc["version"],
            title=doc["title"],
            start=doc.get("start") or next(iter(steps)),
            steps=MappingProxyType(steps),
            agencies=MappingProxyType(dict(doc["agencies"])),
            fields=MappingProxyType(fields),
            calendar=calendar_for(calendar_spec.get("state", "NW"), tuple(calendar_spec.get("closing_days", ()))),
            source_text=self.parsed.text,
            checksum=checksum_of(self.parsed.text),
            file=self.parsed.file,
            title_en=doc.get("title_en"),
            description=doc.get("description"),
            owner=doc.get("owner"),
            decision_ref=doc.get("decision_ref"),
            legal_refs=tuple(doc.get("legal_refs", ())),
        )


@cache
def calendar_for(state: str, closing_days: tuple[str, ...]) -> Calendar:
    """The shared calendar of one configuration (calendars cache holidays per year, so share them)."""
    return Calendar(state=state, closing_days=closing_days)


def _build_action(
    name: str, spec: dict[str, Any], step_agency: str | None, fields: Mapping[str, FieldDef]
) -> ActionDef:
    handoff = spec.get("handoff")
    child = spec.get("start_child")
    return ActionDef(
        name=name,
        title=spec["title"],
        title_en=spec.get("title_en"),
        next=spec.get("next"),
        when=_freeze(spec["when"]) if "when" in spec else None,
        requires=tuple(spec.get("requires", ())),
        records=tuple(spec.get("records", ())),
        handoff=HandoffDef(
            from_agency=handoff.get("from") or step_agency or "",
            to_agency=handoff["to"],
            shares=tuple(handoff["shares"]),
            consent_required=handoff.get("consent_required", True),
            legal_basis=handoff.get("legal_basis"),
            categories=tuple(sorted({fields[name].category for name in handoff["shares"]} - {"process"})),
        )
        if handoff
        else None,
        start_child=ChildDef(process=child["process"], name=child["as"], copy=tuple(child.get("copy", ())))
        if child
        else None,
        system_only=bool(spec.get("system_only", False)),
    )


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _comparable(a: Duration, b: Duration) -> bool:
    days = {DurationUnit.OFFICE_DAYS, DurationUnit.WORKING_DAYS}
    return a.unit == b.unit or (a.unit in days and b.unit in days)


def _closure(seeds: set[str], edges: Mapping[str, set[str]]) -> set[str]:
    seen = set(seeds)
    todo = list(seeds)
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


__all__ = [
    "CATEGORY_LABELS",
    "RESERVED_ACTION_NAMES",
    "ActionDef",
    "ChildDef",
    "FieldDef",
    "HandoffDef",
    "ProcessDefinition",
    "StepDef",
    "TimerDef",
    "calendar_for",
    "check_definition",
    "check_files",
    "check_references",
    "checksum_of",
    "definition_files",
    "load_definition",
]
