"""YAML text -> plain data plus the line and column of every key and value.

This module owns the first, hostile-input stage of loading a definition. It builds
the data directly from the parser's event stream (never PyYAML's constructors), so:

* no tag outside the YAML core schema is ever honoured (``!!python/object`` is an error);
* duplicate keys are reported instead of the last one silently winning;
* keys that YAML 1.1 reads as booleans or numbers (``on:``, ``no:``) are reported;
* nesting depth, size, and alias expansion ("billion laughs") are bounded, so bad
  input fails within milliseconds instead of exhausting memory or the C stack
  (the C composer recurses per nesting level and crashes on ``[[[[…``);
* every value keeps its 1-based position for diagnostics.

Only this module and ``definition.py`` import ``yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml import events as ev

from engine.errors import DefinitionError, Diagnostic

MAX_BYTES = 512 * 1024
MAX_DEPTH = 40
MAX_NODES = 10_000  # the largest shipped definition has under 800

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_resolver = yaml.resolver.Resolver()
_constructor = yaml.constructor.SafeConstructor()
_CORE = "tag:yaml.org,2002:"
_SCALAR_BUILDERS = {
    _CORE + "str": None,
    _CORE + "int": _constructor.construct_yaml_int,
    _CORE + "float": _constructor.construct_yaml_float,
    _CORE + "bool": _constructor.construct_yaml_bool,
    _CORE + "null": _constructor.construct_yaml_null,
    # Dates stay text ("2026-05-12"): case data stores dates as ISO strings.
    _CORE + "timestamp": None,
}
_COLLECTION_TAGS = {None, "!", _CORE + "map", _CORE + "seq"}

Path = tuple[str | int, ...]


@dataclass(slots=True)
class ParsedSource:
    """A parsed document with positions.

    Attributes:
        file: The name diagnostics use for the file.
        text: The source text.
        data: The plain data (dicts, lists, str, int, float, bool, None).
        values: Path -> (line, column) of each value, 1-based.
        keys: Path -> (line, column) of the key that introduces each mapping value.
    """

    file: str
    text: str
    data: Any
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        """Position of ``path`` (its key if ``key``), else of its nearest known ancestor."""
        table = self.keys if key else self.values
        p = tuple(path)
        while p:
            if p in table:
                return table[p]
            if p in self.values:
                return self.values[p]
            p = p[:-1]
        return self.values.get((), (1, 1))

    def diagnostic(
        self, path: Path, code: str, message: str, *, hint: str | None = None, key: bool = False
    ) -> Diagnostic:
        line, column = self.locate(path, key=key)
        return Diagnostic(self.file, line, column, code, message, json_path(path), hint)


def json_path(path: Path) -> str:
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _short(tag: str | None) -> str:
    return "!!" + tag[len(_CORE) :] if tag and tag.startswith(_CORE) else str(tag)


def _pos(mark: Any) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1)


class _Abort(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        self.diagnostic = diagnostic


def parse_source(text: str | bytes, file: str) -> ParsedSource:
    """Parse one YAML document safely.

    Args:
        text: The YAML source (bytes are decoded as UTF-8).
        file: The file name to put into diagnostics.

    Returns:
        The parsed document. Recoverable problems (duplicate keys, odd keys) are
        collected and raised together.

    Raises:
        DefinitionError: With every problem found.
    """
    size = len(text) if isinstance(text, bytes) else len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise DefinitionError(
            [Diagnostic(file, 1, 1, "too-large", f"file has {size} bytes; the limit is {MAX_BYTES} bytes")]
        )
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DefinitionError(
                [Diagnostic(file, 1, 1, "encoding", f"file is not valid UTF-8 (byte {exc.start})")]
            ) from None
    if not text.strip() or all(not line.strip() or line.lstrip().startswith("#") for line in text.splitlines()):
        raise DefinitionError([Diagnostic(file, 1, 1, "empty-file", "the file contains no definition")])
    builder = _Builder(file, text)
    try:
        builder.run()
    except _Abort as abort:
        raise DefinitionError([*builder.problems, abort.diagnostic]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = _pos(mark) if mark else (1, 1)
        message = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        hint = None
        code = "yaml-syntax"
        if mark is not None and 0 <= mark.index < len(text) and text[mark.index] == "\t":
            hint = "indent with spaces; YAML does not allow tabs"
        if "maximum nesting depth" in message:
            # Newer libyaml (PyYAML >= 6.0.4) refuses deep flow nesting while scanning ahead,
            # before our own depth limit is reached: the same problem, so the same code.
            code, message = "too-deep", f"nesting too deep ({message.splitlines()[-1]})"
        raise DefinitionError([*builder.problems, Diagnostic(file, line, column, code, message, hint=hint)]) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - text.rfind("\n", 0, exc.position)
        message = f"character {exc.character!r} is not allowed ({exc.reason})"
        raise DefinitionError([Diagnostic(file, line, column, "yaml-syntax", message)]) from None
    except yaml.YAMLError as exc:
        raise DefinitionError([Diagnostic(file, 1, 1, "yaml-syntax", str(exc))]) from None
    if builder.problems:
        raise DefinitionError(builder.problems)
    return builder.parsed


class _Builder:
    """Turns the event stream into data, one frame per open collection (no recursion)."""

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.parsed = ParsedSource(file, text, None)
        self.problems: list[Diagnostic] = []
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.nodes = 0

    def _abort(self, mark: Any, code: str, message: str, path: Path = ()) -> _Abort:
        line, column = _pos(mark)
        return _Abort(Diagnostic(self.file, line, column, code, message, json_path(path)))

    def _scalar(self, event: ev.ScalarEvent, path: Path) -> Any:
        tag = event.tag
        if tag is None or tag == "!":
            tag = _resolver.resolve(yaml.ScalarNode, event.value, event.implicit)
        if tag not in _SCALAR_BUILDERS:
            raise self._abort(
                event.start_mark,
                "unsafe-tag",
                f"the tag '{_short(event.tag)}' is not allowed; definitions are plain data "
                "(text, numbers, true/false, lists and mappings)",
                path,
            )
        build = _SCALAR_BUILDERS[tag]
        if build is None:
            return event.value
        return build(yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark))

    def run(self) -> None:
        loader = _Loader(self.parsed.text)
        try:
            self._run(loader)
        finally:
            loader.dispose()

    def _run(self, loader: Any) -> None:
        # Each frame: [container, path, pending_key, pending_key_mark, size_before, anchor]
        stack: list[list[Any]] = []
        documents = 0
        root: Any = None
        while True:
            event = loader.get_event()
            if event is None or isinstance(event, ev.StreamEndEvent):
                break
            if isinstance(event, ev.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise self._abort(
                        event.start_mark, "multiple-documents", "a definition file holds exactly one document"
                    )
                continue
            if isinstance(event, (ev.StreamStartEvent, ev.DocumentEndEvent)):
                continue

            if isinstance(event, (ev.MappingEndEvent, ev.SequenceEndEvent)):
                frame = stack.pop()
                value, size, anchor = frame[0], self.nodes - frame[4], frame[5]
                if anchor:
                    self.anchors[anchor] = (value, size)
                if stack:
                    self._attach(stack[-1], value, frame[1], event.start_mark)
                else:
                    root = value
                continue

            parent = stack[-1] if stack else None
            # A scalar in key position of a mapping is a key, not a value.
            if parent is not None and isinstance(parent[0], dict) and parent[2] is _NO_KEY:
                if not isinstance(event, ev.ScalarEvent):
                    raise self._abort(
                        event.start_mark,
                        "non-string-key",
                        "keys must be plain names, not lists or mappings",
                        parent[1],
                    )
                self._take_key(parent, event)
                continue

            path: Path = parent[1] + (self._child_key(parent),) if parent is not None else ()
            self.nodes += 1
            if self.nodes > MAX_NODES:
                raise self._abort(
                    event.start_mark, "too-complex", f"the document has more than {MAX_NODES} elements", path
                )
            if parent is not None:
                self.parsed.values[path] = _pos(event.start_mark)
            else:
                self.parsed.values[()] = _pos(event.start_mark)

            if isinstance(event, ev.AliasEvent):
                if event.anchor not in self.anchors:
                    raise self._abort(event.start_mark, "yaml-syntax", f"unknown alias '*{event.anchor}'", path)
                value, size = self.anchors[event.anchor]
                # Expanded size counts: a shared subtree is walked once per use later on.
                self.nodes += size
                if self.nodes > MAX_NODES:
                    raise self._abort(
                        event.start_mark,
                        "too-complex",
                        f"aliases expand the document beyond {MAX_NODES} elements (an 'alias bomb')",
                        path,
                    )
                self._place(parent, value, path, event.start_mark)
                root = value if parent is None else root
                continue

            if isinstance(event, ev.ScalarEvent):
                value = self._scalar(event, path)
                if event.anchor:
                    self.anchors[event.anchor] = (value, 1)
                self._place(parent, value, path, event.start_mark)
                root = value if parent is None else root
                continue

            if isinstance(event, (ev.MappingStartEvent, ev.SequenceStartEvent)):
                if event.tag not in _COLLECTION_TAGS:
                    raise self._abort(
                        event.start_mark, "unsafe-tag", f"the tag '{_short(event.tag)}' is not allowed", path
                    )
                if len(stack) >= MAX_DEPTH:
                    raise self._abort(event.start_mark, "too-deep", f"nesting deeper than {MAX_DEPTH} levels", path)
                container: Any = {} if isinstance(event, ev.MappingStartEvent) else []
                stack.append([container, path, _NO_KEY, None, self.nodes, event.anchor])
                continue
        if documents == 0 or (root is None and not self.parsed.values):
            raise _Abort(Diagnostic(self.file, 1, 1, "empty-file", "the file contains no definition"))
        self.parsed.data = root

    @staticmethod
    def _child_key(frame: list[Any]) -> str | int:
        container = frame[0]
        return frame[2] if isinstance(container, dict) else len(container)

    def _take_key(self, frame: list[Any], event: ev.ScalarEvent) -> None:
        if event.value == "<<" and event.tag is None and event.implicit[0]:
            raise self._abort(event.start_mark, "unsupported", "YAML merge keys ('<<') are not supported", frame[1])
        key = self._scalar(event, frame[1])
        if not isinstance(key, str):
            shown = "true/false" if isinstance(key, bool) else type(key).__name__
            self.problems.append(
                Diagnostic(
                    self.file,
                    *_pos(event.start_mark),
                    "non-string-key",
                    f"the key '{event.value}' is read by YAML as {shown}, not as a name",
                    json_path(frame[1]),
                    f"write it in quotes: '\"{event.value}\"'",
                )
            )
            key = event.value
        container = frame[0]
        if key in container:
            first_line, _ = self.parsed.keys.get(frame[1] + (key,), (0, 0))
            self.problems.append(
                Diagnostic(
                    self.file,
                    *_pos(event.start_mark),
                    "duplicate-key",
                    f"the key '{key}' appears twice in this mapping (first on line {first_line}); "
                    "YAML would silently keep only the last one",
                    json_path(frame[1] + (key,)),
                )
            )
            frame[2] = _DUPLICATE
            frame[3] = event.start_mark
            return
        frame[2] = key
        frame[3] = event.start_mark
        self.parsed.keys[frame[1] + (key,)] = _pos(event.start_mark)

    def _place(self, parent: list[Any] | None, value: Any, path: Path, mark: Any) -> None:
        if parent is None:
            return
        self._attach(parent, value, path, mark)

    @staticmethod
    def _attach(frame: list[Any], value: Any, path: Path, mark: Any) -> None:
        container = frame[0]
        if isinstance(container, dict):
            if frame[2] is not _DUPLICATE:
                container[frame[2]] = value
            frame[2] = _NO_KEY
        else:
            container.append(value)


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_NO_KEY: Any = _Marker("<no key>")
_DUPLICATE: Any = _Marker("<duplicate>")

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "ParsedSource", "json_path", "parse_source"]
