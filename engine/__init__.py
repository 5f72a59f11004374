"""kimflow's engine: process definitions, durable cases and their history.

The engine knows no web framework and reads no settings; ``api/`` adapts it to the
command line (and later HTTP). The public API is re-exported here::

    from engine import Engine, FixedClock
    engine = Engine("sqlite:///kimflow.db", clock=FixedClock(...))
"""

from engine.calendar import Calendar
from engine.case import ActionOption, Case, CaseEvent, Consent, StepVisit
from engine.cases import SYSTEM_ACTOR, Engine, TickResult
from engine.clock import Clock, FixedClock, SystemClock
from engine.compare import compare_periods, compare_versions
from engine.definition import (
    ProcessDefinition,
    check_definition,
    check_files,
    load_definition,
)
from engine.durations import Duration, DurationUnit, parse_duration
from engine.errors import (
    ActionNotAllowed,
    ActionUnavailable,
    CaseClosed,
    CaseError,
    CaseNotFound,
    ConcurrentUpdate,
    ConsentNotFound,
    DefinitionConflict,
    DefinitionError,
    DefinitionNotFound,
    Diagnostic,
    EngineError,
    EventLogError,
    FindingNotAllowed,
    InvalidCaseData,
    Reason,
    StoreError,
)
from engine.history import ReplayedCase, rebuild_visits, replay
from engine.registry import Deployment
from engine.reports import StallReport, stall_report
from engine.stalls import Stall, find_stalls
from engine.taxonomy import Taxonomy, load_taxonomy

__all__ = [
    "SYSTEM_ACTOR",
    "ActionNotAllowed",
    "ActionOption",
    "ActionUnavailable",
    "Calendar",
    "Case",
    "CaseClosed",
    "CaseError",
    "CaseEvent",
    "CaseNotFound",
    "Clock",
    "ConcurrentUpdate",
    "Consent",
    "ConsentNotFound",
    "DefinitionConflict",
    "DefinitionError",
    "DefinitionNotFound",
    "Deployment",
    "Diagnostic",
    "Duration",
    "DurationUnit",
    "Engine",
    "EngineError",
    "EventLogError",
    "FindingNotAllowed",
    "FixedClock",
    "InvalidCaseData",
    "ProcessDefinition",
    "Reason",
    "ReplayedCase",
    "Stall",
    "StallReport",
    "StepVisit",
    "StoreError",
    "SystemClock",
    "Taxonomy",
    "TickResult",
    "check_definition",
    "check_files",
    "compare_periods",
    "compare_versions",
    "find_stalls",
    "load_definition",
    "load_taxonomy",
    "parse_duration",
    "rebuild_visits",
    "replay",
    "stall_report",
]
