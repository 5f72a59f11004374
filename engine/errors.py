"""The one exception hierarchy of kimflow.

Every condition that a process author or a client of the engine can cause is an
:class:`EngineError`; misuse of the Python API by a programmer raises builtins
(``TypeError``, ``ValueError``). The interfaces in ``api/`` map these classes to
exit codes and, later, to RFC 9457 problem documents without parsing messages:
the structured fields are on the exceptions.

::

    EngineError
    ├── DefinitionError           .diagnostics (all problems of one or more files)
    │   └── DefinitionConflict    same id@version deployed with other content
    ├── DefinitionNotFound        .process_id, .version
    ├── CaseError                 .case_id
    │   ├── CaseNotFound
    │   ├── CaseClosed            .status
    │   ├── ActionNotAllowed      .action, .step, .allowed (unknown here / not a person's action)
    │   ├── ActionUnavailable     .action, .reasons (condition, missing data, missing consent)
    │   ├── InvalidCaseData       .problems {field: message}
    │   ├── ConsentNotFound       .consent_id
    │   ├── FindingNotAllowed     .visit_id (the visit did not stall)
    │   └── ConcurrentUpdate      .expected_version, .actual_version
    ├── EventLogError             an event log (XES) that cannot be imported
    └── StoreError                storage faults the caller can act on
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem found in a process definition, with its place.

    Attributes:
        file: The file name as given to the loader.
        line: 1-based line, 0 if unknown.
        column: 1-based column, 0 if unknown.
        code: A stable machine-readable code such as ``unknown-step``.
        message: What is wrong, naming the bad value and what was expected.
        path: Where inside the document, as a JSON path like ``$.steps.intake``.
        hint: An optional suggestion (e.g. the closest valid name).
        severity: ``error`` or ``warning``.
    """

    file: str
    line: int
    column: int
    code: str
    message: str
    path: str = "$"
    hint: str | None = None
    severity: str = "error"

    def __str__(self) -> str:
        suffix = f" ({self.hint})" if self.hint else ""
        return f"{self.file}:{self.line}:{self.column}: {self.severity}[{self.code}]: {self.message}{suffix}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "path": self.path,
            "hint": self.hint,
        }


class EngineError(Exception):
    """Base of every error a process author or an engine client can cause."""


class DefinitionError(EngineError):
    """A process definition is invalid; carries every problem found, not just the first."""

    def __init__(self, diagnostics: list[Diagnostic] | tuple[Diagnostic, ...]) -> None:
        self.diagnostics = tuple(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics) or "invalid process definition")


class DefinitionConflict(DefinitionError):
    """An ``id@version`` is already deployed with different content (deployed versions are immutable)."""


class DefinitionNotFound(EngineError):
    """No deployed definition has this id (and version)."""

    def __init__(self, process_id: str, version: int | None = None) -> None:
        self.process_id = process_id
        self.version = version
        ref = process_id if version is None else f"{process_id}@{version}"
        super().__init__(f"process '{ref}' is not deployed")


class CaseError(EngineError):
    """An operation on one case failed."""

    def __init__(self, case_id: int, message: str) -> None:
        self.case_id = case_id
        super().__init__(message)


class CaseNotFound(CaseError):
    def __init__(self, case_id: int) -> None:
        super().__init__(case_id, f"case {case_id} does not exist")


class CaseClosed(CaseError):
    """The case has ended (completed, closed or cancelled); it cannot change any more."""

    def __init__(self, case_id: int, status: str) -> None:
        self.status = status
        super().__init__(case_id, f"case {case_id} is {status} and cannot change")


class ActionNotAllowed(CaseError):
    """The action does not exist in the current step, or a person may not fire it."""

    def __init__(self, case_id: int, action: str, step: str, allowed: tuple[str, ...], why: str = "") -> None:
        self.action = action
        self.step = step
        self.allowed = allowed
        listed = ", ".join(allowed) or "none"
        super().__init__(
            case_id,
            why or f"action '{action}' is not possible in step '{step}' (possible actions: {listed})",
        )


@dataclass(frozen=True, slots=True)
class Reason:
    """Why an action is unavailable right now.

    Attributes:
        code: ``condition``, ``missing-data``, ``missing-consent``, ``paused``, ``system-only``
            or ``invalid-data``.
        message: German text for people.
        message_en: English text.
        fields: Data fields concerned (for ``missing-data``).
        agency: The agency a missing consent must cover.
    """

    code: str
    message: str
    message_en: str
    fields: tuple[str, ...] = ()
    agency: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "message_en": self.message_en,
            "fields": list(self.fields),
            "agency": self.agency,
        }


class ActionUnavailable(CaseError):
    """The action exists in the step but cannot be fired now; ``reasons`` says why."""

    def __init__(self, case_id: int, action: str, reasons: tuple[Reason, ...]) -> None:
        self.action = action
        self.reasons = reasons
        why = "; ".join(r.message_en for r in reasons)
        super().__init__(case_id, f"action '{action}' is unavailable: {why}")


class InvalidCaseData(CaseError):
    """Submitted case data does not fit the process's field declarations."""

    def __init__(self, case_id: int, problems: dict[str, str]) -> None:
        self.problems = dict(problems)
        detail = "; ".join(f"{k}: {v}" for k, v in sorted(self.problems.items()))
        super().__init__(case_id, f"invalid case data: {detail}")


class ConsentNotFound(CaseError):
    def __init__(self, case_id: int, consent_id: int) -> None:
        self.consent_id = consent_id
        super().__init__(case_id, f"case {case_id} has no active consent {consent_id}")


class FindingNotAllowed(CaseError):
    """Findings are attached to stalled (or at-risk) visits only; this visit was on time."""

    def __init__(self, case_id: int, visit_id: int) -> None:
        self.visit_id = visit_id
        super().__init__(case_id, f"visit {visit_id} of case {case_id} did not stall; findings describe stalls")


class ConcurrentUpdate(CaseError):
    """Someone else changed the case since it was read; reload and retry."""

    def __init__(self, case_id: int, expected_version: int, actual_version: int | None) -> None:
        self.expected_version = expected_version
        self.actual_version = actual_version
        super().__init__(
            case_id,
            f"case {case_id} was changed by someone else "
            f"(expected version {expected_version}, current version {actual_version})",
        )


class EventLogError(EngineError):
    """An event log (XES) cannot be read or imported; the message says where and why."""


class StoreError(EngineError):
    """A storage fault the caller can act on (e.g. the schema is not migrated)."""


__all__ = [
    "ActionNotAllowed",
    "ActionUnavailable",
    "CaseClosed",
    "CaseError",
    "CaseNotFound",
    "ConcurrentUpdate",
    "ConsentNotFound",
    "DefinitionConflict",
    "DefinitionError",
    "DefinitionNotFound",
    "Diagnostic",
    "EngineError",
    "EventLogError",
    "FindingNotAllowed",
    "InvalidCaseData",
    "Reason",
    "StoreError",
]
