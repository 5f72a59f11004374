"""The ``kimflow`` command line: a thin adapter over :class:`engine.Engine`.

Each command parses its arguments, calls one engine operation and prints the
result: German text for people, ``--format json`` for scripts. Nothing is decided
here that the engine decides. Exit codes: 0 done, 1 problems found or the engine
refused (a one-line German message on stderr, never a traceback), 2 usage error.

The database is opened lazily, when a command needs it; importing this module
connects to nothing and reads no environment. ``--database`` defaults to
``$KIMFLOW_DATABASE_URL``, else ``sqlite:///kimflow.db`` in the working directory;
``--actor`` (who is recorded as making changes) to ``$KIMFLOW_ACTOR``, else the
operating-system user.
"""

from __future__ import annotations

import dataclasses
import difflib
import getpass
import json
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn
from zoneinfo import ZoneInfo

import typer
from typer.core import TyperGroup

from engine import (
    ActionNotAllowed,
    ActionUnavailable,
    Case,
    CaseClosed,
    CaseNotFound,
    ConcurrentUpdate,
    ConsentNotFound,
    DefinitionError,
    DefinitionNotFound,
    Engine,
    EngineError,
    EventLogError,
    FindingNotAllowed,
    FixedClock,
    InvalidCaseData,
    ProcessDefinition,
    StoreError,
    check_files,
)
from engine.accounts import ROLES, Accounts, InvalidAccount, InvalidCredentials, UserExists, UserNotFound
from engine.anonymise import anonymise_case
from engine.definition import CATEGORY_LABELS, FieldDef, definition_files
from engine.simulation import SimulationSummary, simulate

DEFAULT_DATABASE_URL = "sqlite:///kimflow.db"
DEFAULT_PROCESSES = Path("processes")
NOT_SET_UP = "Datenbank nicht eingerichtet: kimflow db upgrade ausführen"

_BERLIN = ZoneInfo("Europe/Berlin")
_STATUS = {"open": "offen", "completed": "abgeschlossen", "closed": "beendet", "cancelled": "storniert"}
_EVENT_KINDS = {
    "opened": "eröffnet",
    "fired": "Aktion",
    "paused": "pausiert",
    "resumed": "fortgesetzt",
    "assigned": "zugewiesen",
    "consent_recorded": "Einwilligung erfasst",
    "consent_revoked": "Einwilligung widerrufen",
    "closed": "beendet",
    "cancelled": "storniert",
}
# SQLAlchemy's exceptions for a database that cannot be used at all (matched by name: only
# engine/store.py imports SQLAlchemy).
_DATABASE_UNREACHABLE = frozenset({"ArgumentError", "NoSuchModuleError", "OperationalError", "InterfaceError"})
_TRUE = frozenset({"ja", "j", "true", "wahr", "yes", "y", "1"})
_FALSE = frozenset({"nein", "n", "false", "falsch", "no", "0"})


class OutputFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class CaseStatus(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class CliError(Exception):
    """Bad input or an unusable environment, reported as one line with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# --------------------------------------------------------------------------- app and error handling


class _Group(TyperGroup):
    """The root command group: turns engine refusals and bad input into a message and exit code 1."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CliError as exc:
            _fail([str(exc)], exc.exit_code)
        except EngineError as exc:
            _fail(describe_error(exc), 1)
        except Exception as exc:
            # A database that cannot be reached (bad URL, missing directory, server down, locked)
            # is the user's to fix, not a bug: one line, no traceback. Anything else is a bug.
            if type(exc).__name__ in _DATABASE_UNREACHABLE and type(exc).__module__.startswith("sqlalchemy"):
                _fail([f"Datenbankfehler: {_first_line(getattr(exc, 'orig', None) or exc)}"], 1)
            raise


def _fail(lines: Sequence[str], code: int) -> NoReturn:
    first, *rest = lines
    typer.echo(f"Fehler: {first}", err=True)
    for line in rest:
        typer.echo(line, err=True)
    raise typer.Exit(code)


def _first_line(exc: object) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


app = typer.Typer(
    cls=_Group,
    name="kimflow",
    help="kimflow – Prozesse und Fälle des Kommunalen Integrationsmanagements (KIM NRW).",
    no_args_is_help=True,
    add_completion=False,
    # Plain tracebacks for real bugs, and never local variables: they may hold case data.
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Datenbankschema einrichten und prüfen.", no_args_is_help=True)
processes_app = typer.Typer(help="Bereitgestellte Prozessdefinitionen ansehen.", no_args_is_help=True)
case_app = typer.Typer(help="Fälle eröffnen, bearbeiten und ansehen.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(processes_app, name="processes")
app.add_typer(case_app, name="case")
report_app = typer.Typer(
    help="Berichte für Projektgruppen und Auswertungen (ohne personenbezogene Daten).", no_args_is_help=True
)
app.add_typer(report_app, name="report")
user_app = typer.Typer(help="Benutzerkonten der HTTP-API verwalten.", no_args_is_help=True)
app.add_typer(user_app, name="user")


@dataclasses.dataclass
class _State:
    """Global options, and the engine once a command asks for it."""

    database: str
    actor: str
    _engine: Engine | None = None

    def engine(self, clock: FixedClock | None = None, *, durable: bool = True) -> Engine:
        if self._engine is None:
            self._engine = Engine(self.database, clock=clock, durable=durable)
        return self._engine

    def ready_engine(self) -> Engine:
        """The engine, after checking that the database exists and its schema is current."""
        path = _sqlite_file(self.database)
        if path is not None and not path.exists():
            raise CliError(NOT_SET_UP)  # do not leave an empty database file behind
        engine = self.engine()
        try:
            engine.store.require_schema()
        except StoreError:
            current = engine.store.current_revision()
            if current is None:
                raise CliError(NOT_SET_UP) from None
            head = engine.store.head_revision()
            raise CliError(
                f"Datenbankschema veraltet (Stand {current}, benötigt {head}): kimflow db upgrade ausführen"
            ) from None
        return engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.store.dispose()


def _sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///…`` URL (None for other databases and in-memory SQLite)."""
    if not url.startswith("sqlite") or ":///" not in url:
        return None
    path = url.split(":///", 1)[1].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def _default_actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in the container's passwd
        return "unbekannt"


@app.callback()
def _main(
    ctx: typer.Context,
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            envvar="KIMFLOW_DATABASE_URL",
            help="Datenbank-URL (sqlite:///datei.db oder postgresql://…); Standard: sqlite:///kimflow.db",
            show_default=False,
        ),
    ] = None,
    actor: Annotated[
        str | None,
        typer.Option(
            "--actor",
            envvar="KIMFLOW_ACTOR",
            help="Wer Änderungen vornimmt (für die Historie); Standard: Benutzername",
            show_default=False,
        ),
    ] = None,
) -> None:
    state = _State(database or DEFAULT_DATABASE_URL, actor or _default_actor())
    ctx.obj = state
    ctx.call_on_close(state.close)


def _state(ctx: typer.Context) -> _State:
    state = ctx.find_object(_State)
    assert state is not None, "the root callback sets the state"
    return state


FormatOption = Annotated[
    OutputFormat, typer.Option("--format", help="Ausgabe als Text oder JSON", case_sensitive=False)
]
ExpectedVersion = Annotated[
    int | None,
    typer.Option("--expected-version", help="Nur ändern, wenn der Fall noch diese Version hat"),
]
DataOption = Annotated[
    list[str] | None,
    typer.Option("--data", "-d", help="Falldaten als feld=wert (mehrfach möglich)", show_default=False),
]


# --------------------------------------------------------------------------- output helpers


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    try:
        return dict(value)  # mappingproxy and other read-only mappings
    except (TypeError, ValueError):
        return str(value)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=_json_default))


def _local(instant: datetime | None) -> str:
    return instant.astimezone(_BERLIN).strftime("%d.%m.%Y %H:%M") if instant else "–"


def _count(n: int, singular: str, plural: str) -> str:
    return f"{n} {singular if n == 1 else plural}"


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]


def _require_paths(paths: Sequence[Path]) -> None:
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise CliError(f"Pfad nicht gefunden: {', '.join(missing)}", exit_code=2)


# --------------------------------------------------------------------------- engine errors in German


def describe_error(exc: EngineError) -> list[str]:
    """German lines for an engine error: a one-line message, plus diagnostics for definition errors."""
    if isinstance(exc, DefinitionError):
        errors = sum(1 for d in exc.diagnostics if d.severity == "error")
        files = len({d.file for d in exc.diagnostics})
        head = f"{_count(errors, 'Problem', 'Probleme')} in {_count(files, 'Datei', 'Dateien')}"
        return [head, *(str(d) for d in exc.diagnostics)]
    if isinstance(exc, DefinitionNotFound):
        ref = exc.process_id if exc.version is None else f"{exc.process_id}@{exc.version}"
        return [f"Prozess '{ref}' ist nicht bereitgestellt (kimflow deploy ausführen)"]
    if isinstance(exc, CaseNotFound):
        return [f"Fall {exc.case_id} gibt es nicht"]
    if isinstance(exc, CaseClosed):
        return [f"Fall {exc.case_id} ist {_STATUS.get(exc.status, exc.status)} und kann nicht mehr geändert werden"]
    if isinstance(exc, ActionNotAllowed):
        if exc.action in exc.allowed:
            return [
                f"Fall {exc.case_id}: Aktion '{exc.action}' wird automatisch ausgelöst "
                "und kann nicht von Hand ausgelöst werden"
            ]
        allowed = ", ".join(exc.allowed) or "keine"
        return [
            f"Fall {exc.case_id}: Aktion '{exc.action}' gibt es im Schritt '{exc.step}' nicht "
            f"(mögliche Aktionen: {allowed})"
        ]
    if isinstance(exc, ActionUnavailable):
        reasons = "; ".join(r.message for r in exc.reasons) or "ohne Angabe von Gründen"
        return [f"Fall {exc.case_id}: Aktion '{exc.action}' ist derzeit nicht möglich: {reasons}"]
    if isinstance(exc, InvalidCaseData):
        problems = "; ".join(f"{name}: {problem}" for name, problem in sorted(exc.problems.items()))
        subject = f"Fall {exc.case_id}: ungültige Daten" if exc.case_id else "Ungültige Daten"
        return [f"{subject} – {problems}"]
    if isinstance(exc, ConsentNotFound):
        return [f"Fall {exc.case_id} hat keine aktive Einwilligung Nr. {exc.consent_id}"]
    if isinstance(exc, ConcurrentUpdate):
        return [
            f"Fall {exc.case_id} wurde inzwischen geändert (erwartete Version {exc.expected_version}, "
            f"aktuelle Version {exc.actual_version}) – neu laden und erneut versuchen"
        ]
    if isinstance(exc, FindingNotAllowed):
        return [f"Fall {exc.case_id}: Besuch {exc.visit_id} war nicht überfällig – Hinweise beschreiben Stockungen"]
    if isinstance(exc, EventLogError):
        return [f"Ereignisprotokoll nicht lesbar: {exc}"]
    if isinstance(exc, StoreError):
        return [f"Datenbankfehler: {str(exc).removeprefix('database error: ')}"]
    if isinstance(exc, InvalidAccount):
        return ["Benutzerkonto ungültig – " + "; ".join(f"{k}: {v}" for k, v in sorted(exc.problems.items()))]
    if isinstance(exc, UserExists):
        return [f"Benutzer '{exc.name}' gibt es schon"]
    if isinstance(exc, UserNotFound):
        return [f"Benutzer '{exc.name}' gibt es nicht"]
    if isinstance(exc, InvalidCredentials):
        return ["Anmeldung fehlgeschlagen: Name oder Passwort falsch, Konto gesperrt oder Token abgelaufen"]
    return [str(exc)]


# --------------------------------------------------------------------------- case data from the command line


def parse_data(definition: ProcessDefinition, items: Sequence[str] | None) -> dict[str, Any]:
    """Turn ``feld=wert`` arguments into case data typed by the process's field declarations.

    Raises:
        CliError: For a malformed argument, an unknown field or a value of the wrong type.
    """
    data: dict[str, Any] = {}
    for item in items or ():
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise CliError(f"--data erwartet feld=wert, nicht '{item}'")
        spec = definition.fields.get(name)
        if spec is None:
            close = difflib.get_close_matches(name, list(definition.fields), n=1)
            hint = f" (meinten Sie '{close[0]}'?)" if close else f" (Felder: {', '.join(definition.fields)})"
            raise CliError(f"{definition.ref} hat kein Feld '{name}'{hint}")
        data[name] = _convert(spec, raw)
    return data


def _convert(spec: FieldDef, raw: str) -> Any:
    value = raw.strip()
    if value == "":
        return None  # "feld=" clears the field
    label = f"{spec.name} ({spec.label})"
    if spec.type == "integer":
        try:
            return int(value)
        except ValueError:
            raise CliError(f"{label}: '{raw}' ist keine ganze Zahl") from None
    if spec.type == "number":
        try:
            return float(value.replace(",", "."))
        except ValueError:
            raise CliError(f"{label}: '{raw}' ist keine Zahl") from None
    if spec.type == "boolean":
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise CliError(f"{label}: '{raw}' ist weder ja noch nein")
    if spec.type == "enum" and value not in spec.values:
        raise CliError(f"{label}: '{raw}' ist keiner der Werte {', '.join(spec.values)}")
    return value  # dates are checked by the engine, text is text


def _definition(engine: Engine, case: Case) -> ProcessDefinition:
    return engine.registry.get(case.process_id, case.process_version).definition


def _load(ctx: typer.Context, case_id: int) -> tuple[Engine, Case, ProcessDefinition]:
    engine = _state(ctx).ready_engine()
    case = engine.get_case(case_id)
    return engine, case, _definition(engine, case)


# --------------------------------------------------------------------------- validate, deploy, diagram, tick


@app.command("validate")
def validate_command(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Dateien oder Verzeichnisse; Standard: processes/", show_default=False),
    ] = None,
    fmt: FormatOption = OutputFormat.TEXT,
) -> None:
    """Prozessdefinitionen prüfen, ohne etwas bereitzustellen."""
    targets = list(paths or [DEFAULT_PROCESSES])
    _require_paths(targets)
    files = definition_files(targets)
    definitions, diagnostics = check_files(targets)
    errors = [d for d in diagnostics if d.severity == "error"]
    valid = bool(files) and not errors
    if fmt is OutputFormat.JSON:
        _print_json(
            {
                "valid": valid,
                "files": len(files),
                "definitions": [d.ref for d in definitions],
                "diagnostics": [d.as_dict() for d in diagnostics],
            }
        )
    else:
        for diagnostic in diagnostics:
            typer.echo(str(diagnostic))
        if not files:
            typer.echo("Keine Prozessdefinitionen (*.yaml, *.yml) gefunden")
        elif errors:
            bad = len({d.file for d in errors})
            typer.echo(f"{_count(len(errors), 'Problem', 'Probleme')} in {_count(bad, 'Datei', 'Dateien')}")
        else:
            typer.echo(f"{_count(len(definitions), 'Definition', 'Definitionen')} gültig")
    if not valid:
        raise typer.Exit(1)


@app.command("deploy")
def deploy_command(
    ctx: typer.Context,
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Dateien oder Verzeichnisse; Standard: processes/", show_default=False),
    ] = None,
    fmt: FormatOption = OutputFormat.TEXT,
) -> None:
    """Prozessdefinitionen prüfen und bereitstellen (alles oder nichts)."""
    targets = list(paths or [DEFAULT_PROCESSES])
    _require_paths(targets)
    state = _state(ctx)
    deployments = state.ready_engine().deploy(targets, actor=state.actor)
    if fmt is OutputFormat.JSON:
        _print_json([{**dataclasses.asdict(d), "ref": d.ref} for d in deployments])
        return
    rows = [[d.ref, "neu" if d.created else "unverändert", d.title] for d in deployments]
    for line in _table(rows) if rows else []:
        typer.echo(line)
    created = sum(1 for d in deployments if d.created)
    typer.echo(f"{created} neu, {len(deployments) - created} unverändert")


@app.command("diagram")
def diagram_command(
    ctx: typer.Context,
    process_id: Annotated[str, typer.Argument(metavar="ID", help="Prozess-ID")],
    version: Annotated[int | None, typer.Option("--version", help="Version; Standard: die neueste")] = None,
) -> None:
    """Den Prozess als Mermaid-Zustandsdiagramm ausgeben."""
    registry = _state(ctx).ready_engine().registry
    compiled = registry.latest(process_id) if version is None else registry.get(process_id, version)
    typer.echo(compiled.diagram(), nl=False)


@app.command("tick")
def tick_command(ctx: typer.Context, fmt: FormatOption = OutputFormat.TEXT) -> None:
    """Fällige Zeitgeber auslösen (z. B. nächtlich per cron)."""
    result = _state(ctx).ready_engine().tick()
    if fmt is OutputFormat.JSON:
        _print_json(dataclasses.asdict(result))
    else:
        typer.echo(f"Zeitgeber: {result.fired} ausgelöst, {result.skipped} übersprungen")


# --------------------------------------------------------------------------- db


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Datenbankschema anlegen oder auf den neuesten Stand bringen."""
    store = _state(ctx).engine().store
    before = store.current_revision()
    store.upgrade()
    after = store.current_revision()
    if before == after:
        typer.echo(f"Datenbankschema ist aktuell ({after})")
    else:
        typer.echo(f"Datenbankschema aktualisiert: {before or 'leer'} → {after}")


@db_app.command("current")
def db_current(ctx: typer.Context, fmt: FormatOption = OutputFormat.TEXT) -> None:
    """Stand des Datenbankschemas mit dem neuesten vergleichen (Exit 1, wenn veraltet)."""
    state = _state(ctx)
    path = _sqlite_file(state.database)
    store = state.engine().store
    current = None if path is not None and not path.exists() else store.current_revision()
    head = store.head_revision()
    if fmt is OutputFormat.JSON:
        _print_json({"current": current, "head": head, "up_to_date": current == head})
    else:
        typer.echo(f"Stand: {current or 'nicht eingerichtet'}")
        typer.echo(f"Neuester Stand: {head}")
        typer.echo("aktuell" if current == head else "veraltet: kimflow db upgrade ausführen")
    if current != head:
        raise typer.Exit(1)


# --------------------------------------------------------------------------- processes


@processes_app.command("list")
def processes_list(ctx: typer.Context, fmt: FormatOption = OutputFormat.TEXT) -> None:
    """Bereitgestellte Prozesse mit ihren Versionen."""
    deployments = _state(ctx).ready_engine().registry.list()
    by_id: dict[str, list[Any]] = {}
    for d in deployments:
        by_id.setdefault(d.process_id, []).append(d)
    items = [
        {"id": pid, "versions": [d.version for d in ds], "latest": ds[-1].version, "title": ds[-1].title}
        for pid, ds in by_id.items()
    ]
    if fmt is OutputFormat.JSON:
        _print_json(items)
        return
    if not items:
        typer.echo("Keine Prozesse bereitgestellt (kimflow deploy ausführen)")
        return
    rows = [["Prozess", "Versionen", "Titel"]]
    rows += [[i["id"], ", ".join(str(v) for v in i["versions"]), i["title"]] for i in items]
    for line in _table(rows):
        typer.echo(line)


def _definition_summary(d: ProcessDefinition) -> dict[str, Any]:
    steps = []
    handoffs = []
    for step in d.steps.values():
        actions = []
        for action in step.actions.values():
            entry: dict[str, Any] = {
                "name": action.name,
                "title": action.title,
                "next": action.next,
                "system_only": action.system_only,
                "requires": list(action.requires),
                "records": list(action.records),
            }
            if action.start_child is not None:
                entry["start_child"] = {"process": action.start_child.process, "as": action.start_child.name}
            if action.handoff is not None:
                h = action.handoff
                handoff = {
                    "step": step.id,
                    "action": action.name,
                    "from": h.from_agency,
                    "to": h.to_agency,
                    "shares": list(h.shares),
                    "consent_required": h.consent_required,
                    "legal_basis": h.legal_basis,
                }
                entry["handoff"] = handoff
                handoffs.append(handoff)
            actions.append(entry)
        steps.append(
            {
                "id": step.id,
                "title": step.title,
                "agency": step.agency,
                "waiting_on": step.waiting_on,
                "expected": step.expected.german() if step.expected else None,
                "final": step.final,
                "outcome": step.outcome,
                "actions": actions,
                "timers": [
                    {
                        "action": t.action,
                        "after": t.after.german() if t.after else None,
                        "before": t.before.german() if t.before else None,
                        "field": t.field,
                    }
                    for t in step.timers
                ],
            }
        )
    return {
        "id": d.id,
        "version": d.version,
        "ref": d.ref,
        "title": d.title,
        "owner": d.owner,
        "start": d.start,
        "agencies": dict(d.agencies),
        "fields": {name: {"type": f.type, "label": f.label} for name, f in d.fields.items()},
        "steps": steps,
        "handoffs": handoffs,
    }


@processes_app.command("show")
def processes_show(
    ctx: typer.Context,
    process_id: Annotated[str, typer.Argument(metavar="ID", help="Prozess-ID")],
    version: Annotated[int | None, typer.Option("--version", help="Version; Standard: die neueste")] = None,
    source: Annotated[bool, typer.Option("--source", help="Den YAML-Quelltext ausgeben")] = False,
    fmt: FormatOption = OutputFormat.TEXT,
) -> None:
    """Schritte, Aktionen und Übergaben eines Prozesses (oder seinen Quelltext)."""
    definition = _state(ctx).ready_engine().process(process_id, version)
    if source:
        typer.echo(definition.source_text, nl=not definition.source_text.endswith("\n"))
        return
    summary = _definition_summary(definition)
    if fmt is OutputFormat.JSON:
        _print_json(summary)
        return
    typer.echo(f"{definition.ref} – {definition.title}")
    if definition.owner:
        typer.echo(f"Verantwortlich: {definition.owner}")
    typer.echo(f"Start: {definition.start}")
    typer.echo("")
    typer.echo("Schritte:")
    for step in summary["steps"]:
        typer.echo(f"  {step['id']} – {step['title']}")
        if step["final"]:
            typer.echo(f"      Ende{': ' + step['outcome'] if step['outcome'] else ''}")
            continue
        waiting = f" · wartet auf: {step['waiting_on']}" if step["waiting_on"] != step["agency"] else ""
        typer.echo(f"      Stelle: {step['agency']}{waiting} · erwartet: {step['expected'] or '–'}")
        for action in step["actions"]:
            target = f" → {action['next']}" if action["next"] else ""
            auto = " (automatisch)" if action["system_only"] else ""
            typer.echo(f"      • {action['name']}: {action['title']}{target}{auto}")
        for timer in step["timers"]:
            when = (
                f"{timer['before']} vor {timer['field']}"
                if timer["before"]
                else f"{timer['after']} nach {timer['field'] or 'Eintritt'}"
            )
            typer.echo(f"      ⏱ {when}: {timer['action']}")
    if summary["handoffs"]:
        typer.echo("")
        typer.echo("Übergaben:")
        for h in summary["handoffs"]:
            consent = "Einwilligung erforderlich" if h["consent_required"] else f"Rechtsgrundlage: {h['legal_basis']}"
            typer.echo(
                f"  {h['step']} / {h['action']}: {h['from']} → {h['to']} (teilt: {', '.join(h['shares'])}; {consent})"
            )


# --------------------------------------------------------------------------- cases


def _case_json(case: Case) -> dict[str, Any]:
    return {**dataclasses.asdict(case), "process_ref": case.process_ref}


def _step_title(definition: ProcessDefinition, step_id: str) -> str:
    step = definition.steps.get(step_id)
    return step.title if step else step_id


def _print_case_change(case: Case, message: str, fmt: OutputFormat) -> None:
    if fmt is OutputFormat.JSON:
        _print_json(_case_json(case))
    else:
        typer.echo(message)


@case_app.command("open")
def case_open(
    ctx: typer.Context,
    process_id: Annotated[str, typer.Argument(metavar="PROCESS", help="Prozess-ID")],
    data: DataOption = None,
    assignee: Annotated[str | None, typer.Option("--assignee", help="Zuständige Fachkraft")] = None,
    version: Annotated[int | None, typer.Option("--version", help="Version; Standard: die neueste")] = None,
    fmt: FormatOption = OutputFormat.TEXT,
) -> None:
    """Einen Fall eröffnen."""
    state = _state(ctx)
    engine = state.ready_engine()
    definition = engine.process(process_id, version)
    values = parse_data(definition, data)
    case = engine.open_case(process_id, actor=state.actor, data=values, version=definition.version, assignee=assignee)
    _print_case_change(
        case,
        f"Fall {case.id} geöffnet ({case.process_ref}, Schritt „{_step_title(definition, case.step)}“)",
        fmt,
    )


@case_app.command("actions")
def case_actions(
    ctx: typer.Context,
    case_id: Annotated[int, typer.Argument(metavar="ID", help="Fallnummer")],
    fmt: FormatOption = OutputFormat.TEXT,
) -> None:
    """Die Aktionen des aktuellen Schritts: verfügbare und nicht verfügbare mit Gründen."""
    engine, case, definition = _load(ctx, case_id)
    options = engine.available_actions(case_id)
    if fmt is OutputFormat.JSON:
        _print_json([dataclasses.asdict(o) for o in options])
        return
    typer.echo(f"Fall {case.id} – Schritt „{_step_title(definition, case.step)}“ ({case.step})")
    if not case.is_open:
        typer.echo(f"Der Fall ist {_STATUS.get(case.status, case.status)}.")
    manual = [o for o in options if not any(r.code == "system-only" for r in o.reasons)]
    automatic = [o for o in options if o not in manual]
    available = [o for o in manual if o.available]
    unavailable = [o for o in manual if not o.available]
    if available:
        typer.echo("Verfügbar:")
        for o in available:
            target = f" → {o.next_step}" if o.next_step else ""
            asks = f" [Angaben: {', '.join(o.asks_for)}]" if o.asks_for else ""
            typer.echo(f"  {o.name}: {o.title}{target}{asks}")
    if unavailable:
        typer.echo("Nicht verfügbar:")
        for o in unavailable:
            typer.echo(f"  {o.name}: {o.title} – {'; '.join(r.message for r in o.reasons)}")
    if automatic:
        typer.echo("Automatisch (Zeitgeber oder System):")
        for o in automatic:
            typer.echo(f"  {o.name}: {o.title}")
    if not options:
        typer.echo("Keine Aktionen.")


@case_app.command("fire")
def case_fire(
    ctx: typer.Context,
    case_id: Annotated[int, typer.Argument(metavar="ID", help="Fallnummer")],
    action: Annotated[str, typer.Argument(metavar="ACTION", help="Name der Aktion")],
    data: DataOption = None,
    expected_version: ExpectedVersion = None,
    fmt: FormatOption = OutputFormat.TEXT,
) -> None:
    """Eine Aktion auslösen und dabei Daten erfassen."""
    engine, case, definition = _load(ctx, case_id)
    values = parse_data(definition, data)
    before = case.step
    case = engine.fire(case_id, action, actor=_state(ctx).actor, data=values, expected_version=expected_version)
    step = definition.steps[before].actions.get(action)
    title = step.title if step else action
    now_in = _step_title(definition, case.step)
    lines = [f"Fall {case.id}: „{title}“ ausgeführt – Schritt „{now_in}“ (Version {case.version})"]
    if step is not None and step.start_child is not None:
        children = [c for c in engine.children(case.id) if c.child_name == step.start_child.name]
        if children:
            child = children[-1]
            lines.append(f"Teilfall {child.id} eröffnet ({child.process_ref})")
    if case.status == "completed":
        lines.append(f"Fall {case.id} abgeschlossen{': ' + case.outcome if case.outcome else ''}")
    _print_case_change(case, "\n".join(lines), fmt)


@case_app.command("show")
def case_show(
    ctx: typer.Context,
    case_id: Annotated[int, typer.Argument(metavar="ID", help="Fallnummer")],
    fmt: FormatOption = OutputFormat.TEXT,
) -> None:
    """Einen Fall mit Schritt, Frist, Daten und Einwilligungen anzeigen."""
    engine, case, definition = _load(ctx, case_id)
    consents = engine.consents(case_id)
    children = engine.children(case_id)
    step = definition.steps.get(case.step)
    if fmt is OutputFormat.JSON:
        _print_json(
            {
                **_case_json(case),
                "step_title": step.title if step else None,
                "consents": [dataclasses.asdict(c) for c in consents],
                "children": [{"id": c.id, "process_ref": c.process_ref, "status": c.status} for c in children],
            }
        )
        return
    now = datetime.now(UTC)
    rows = [
        ["Fall", f"{case.id} · {case.process_ref} – {definition.title}"],
        ["Status", f"{_STATUS.get(case.status, case.status)} (Version {case.version})"],
        ["Schritt", f"{_step_title(definition, case.step)} ({case.step})"],
    ]
    if step is not None and step.agency:
        waiting = f" · wartet auf: {case.waiting_on}" if case.waiting_on and case.waiting_on != step.agency else ""
        rows.append(["Stelle", f"{step.agency}{waiting}"])
    if case.is_open and case.due_at is not None:
        overdue = " (überschritten)" if case.due_at < now and not case.paused else ""
        rows.append(["Frist", f"{_local(case.due_at)}{overdue}"])
    if case.paused:
        rows.append(["Pausiert", f"ja ({case.pause_reason})"])
    rows.append(["Zuständig", case.assignee or "–"])
    rows.append(["Eröffnet", _local(case.opened_at)])
    rows.append(["Geändert", _local(case.updated_at)])
    if case.closed_at is not None:
        rows.append(["Beendet", f"{_local(case.closed_at)}{' · ' + case.outcome if case.outcome else ''}"])
    if case.parent_id is not None:
        rows.append(["Teilfall von", f"Fall {case.parent_id} ({case.child_name})"])
    for line in _table([[f"{label}:", value] for label, value in rows]):
        typer.echo(line)
    if case.data:
        typer.echo("Daten:")
        for name, value in case.data.items():
            spec = definition.fields.get(name)
            shown = spec.values.get(value, value) if spec is not None and spec.type == "enum" else value
            if isinstance(shown, bool):
                shown = "ja" if shown else "nein"
            typer.echo(f"  {spec.label if spec else name} ({name}): {shown if shown is not None else '–'}")
    if consents:
        typer.echo("Einwilligungen:")
        for c in consents:
            until = f", gültig bis {c.valid_until}" if c.valid_until else ""
            revoked = f" – widerrufen am {_local(c.revoked_at)}" if c.revoked_at else ""
            agency = definition.agencies.get(c.recipient, c.recipient)
            typer.echo(f"  Nr. {c.id}: {c.recipient} ({agency}) – {c.purpose}{until}{revoked}")
    if children:
        typer.echo("Teilfälle:")
        for child in children:
            typer.echo(f"  Fall {child.id} ({child.process_ref}, {_STATUS.get(child.status, child.status)})")


@case_app.command("history")
def case_history(
    ctx: typer.Context,
    case_id: Annotated[int, typer.Argument(metavar="ID", help="Fallnummer")],
    fmt: FormatOption = OutputFormat.TEXT,
) -> None:
    """Die Historie eines Falls, älteste Einträge zuerst."""
    engine = _state(ctx).ready_engine()
    events = engine.history(case_id)
    if fmt is OutputFormat.JSON:
        _print_json([dataclasses.asdict(e) for e in events])
        return
    rows = [["Nr", "Zeit", "Wer", "Was", "Schritt", "Änderungen"]]
    for e in events:
        what = _EVENT_KINDS.get(e.kind, e.kind)
        if e.action:
            what = f"{what} {e.action}"
        if e.kind in ("paused", "closed", "cancelled") and e.detail.get("reason"):
            what = f"{what} ({e.detail['reason']})"
        moved = f"{e.from_step} → {e.to_step}" if e.from_step and e.from_step != e.to_step else (e.to_step or "")
        changes = ", ".join(f"{k}={_short(v[1] if isinstance(v, list) else v)}" for k, v in e.changes.items())
        rows.append([str(e.seq), _local(e.at), e.actor, what, moved, changes])
    for line in _table(rows):
        typer.echo(line)


def _short(value: Any) -> str:
    if isinstance(value, bool):
        return "ja" if value else "nein"
    text = "–" if value is None else str(value)
    return text if len(text) <= 30 else text[:29] + "…"


@case_app.command("list")
def case_list(
    ctx: typer.Context,
    process: Annotated[str | None, typer.Option("--process", help="Nur dieser Prozess")] = None,
    step: Annotated[str | None, typer.Option("--step", help="Nur dieser Schritt")] = None,
    status: Annotated[CaseStatus | None, typer.Option("--status", help="Nur Fälle mit diesem Status")] = None,
    assignee: Annotated[str | None, typer.Option("--assignee", help="Nur diese Fachkraft")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Höchstens so viele Fälle")] = 50,
    fmt: FormatOption = OutputFormat.TEXT,
) -> None:
    """Fälle nach Prozess, Schritt, Status oder Zuständigkeit auflisten."""
    engine = _state(ctx).ready_engine()
    cases = engine.list_cases(
        process_id=process, step=step, status=status.value if status else None, assignee=assignee, limit=limit
    )
    if fmt is OutputFormat.JSON:
        _print_json([_case_json(c) for c in cases])
        return
    if not cases:
        typer.echo("Keine Fälle gefunden")
        return
    now = datetime.now(UTC)
    rows = [["Fall", "Prozess", "Schritt", "Status", "Zuständig", "Frist"]]
    for c in cases:
        due = _local(c.due_at) if c.is_open and c.due_at else "–"
        if c.is_open and c.due_at and c.due_at < now and not c.paused:
            due += " !"
        state = _STATUS.get(c.status, c.status) + (" (pausiert)" if c.paused else "")
        rows.append([str(c.id), c.process_ref, c.step, state, c.assignee or "–", due])
    for line in _table(rows):
        typer.echo(line)


@case_app.command("pause")
def case_pause(
    ctx: typer.Context,
    case_id: Annotated[int, typer.Argument(metavar="ID", help="Fallnummer")],
    reason: Annotated[str, typer.Option("--reason", help="Grund als Code, z. B. W-DOC, W-EMB, W-APPT")],
    note: Annotated[str | None, typer.Option("--note", help="Notiz")] = None,
    expected_version: ExpectedVersion = None,
    fmt: FormatOption = OutputFormat.TEXT,
) -> None:
    """Einen Fall pausieren; die Frist des Schritts ruht."""
    engine = _load(ctx, case_id)[0]
    case = engine.pause(case_id, reason=reason, note=note, actor=_state(ctx).actor, expected_version=expected_version)
    _print_case_change(case, f"Fall {case.id} pausiert ({reason})", fmt)


@case_app.command("wait")
def case_wait(
    ctx: typer.Context,
    case_id: Annotated[int, typer.Argument(metavar="ID", help="Fallnummer")],
    party: Annotated[str, typer.Argument(metavar="STELLE", help="Auf wen der Fall wartet (Kürzel, z. B. BOT, KLIENT)")],
    reason: Annotated[str, typer.Option("--reason", help="Grund als Code, z. B. W-EMB, W-DOC")],
    note: Annotated[str | None, typer.Option("--note", help="Notiz")] = None,
    expected_version: ExpectedVersion = None,
    fmt: FormatOption = OutputFormat.TEXT,
) -> None:
    """Festhalten, auf wen der Fall wartet und warum (die Frist ruht nur, wo der Schritt es vorsieht)."""
    engine = _load(ctx, case_id)[0]
    case = engine.wait_on(
        case_id, party, reason=reason, note=note, actor=_state(ctx).actor, expected_version=expected_version
    )
    due = f", Frist {_local(case.due_at)}" if case.due_at else ""
    _print_case_change(case, f"Fall {case.id} wartet auf {party} ({reason}){due}", fmt)


@case_app.command("finding")
def case_finding(
    ctx: typer.Context,
    case_id: Annotated[int, typer.Argument(metavar="ID", help="Fallnummer")],
    code: Annotated[str, typer.Option("--code", help="Stockungsursache, z. B. W-AUTH")],
    text: Annotated[str, typer.Option("--text", help="Kurze Beschreibung ohne personenbezogene Daten")],
    fmt: FormatOption = OutputFormat.TEXT,
) -> None:
    """Einen strukturellen Hinweis zu einem überfälligen Schritt erfassen (für Arbeits- und Projektgruppen)."""
    engine = _load(ctx, case_id)[0]
    finding_id = engine.add_finding(case_id, code=code, text=text, actor=_state(ctx).actor)
    if fmt is OutputFormat.JSON:
        _print_json({"id": finding_id, "case_id": case_id, "code": code})
        return
    typer.echo(f"Hinweis Nr. {finding_id} zu Fall {case_id} erfasst ({code})")


@case_app.command("resume")
def case_resume(
    ctx: typer.Context,
    case_id: Annotated[int, typer.Argument(metavar="ID", help="Fallnummer")],
    expected_version: ExpectedVersion = None,
    fmt: FormatOption = OutputFormat.TEXT,
) -> None:
    """Einen pausierten Fall fortsetzen; die Frist verschiebt sich um die Pause."""
    engine = _load(ctx, case_id)[0]
    case = engine.resume(case_id, actor=_state(ctx).actor, expected_version=expected_version)
    due = f", neue Frist {_local(case.due_at)}" if case.due_at else ""
    _print_case_change(case, f"Fall {case.id} fortgesetzt{due}", fmt)


@case_app.command("assign")
def case_assign(
    ctx: typer.Context,
    case_id: Annotated[int, typer.Argument(metavar="ID", help="Fallnummer")],
    name: Annotated[str, typer.Argument(metavar="NAME", help="Zuständige Fachkraft")],
    expected_version: ExpectedVersion = None,
    fmt: FormatOption = OutputFormat.TEXT,
) -> None:
    """Einen Fall einer Fachkraft zuweisen."""
    engine = _load(ctx, case_id)[0]
    case = engine.assign(case_id, name, actor=_state(ctx).actor, expected_version=expected_version)
    _print_case_change(case, f"Fall {case.id} ist {name} zugewiesen", fmt)


@case_app.command("consent")
def case_consent(
    ctx: typer.Context,
    case_id: Annotated[int, typer.Argument(metavar="ID", help="Fallnummer")],
    to: Annotated[str, typer.Option("--to", help="Empfangende Stelle (Kürzel, z. B. JC, ABH)")],
    purpose: Annotated[str, typer.Option("--purpose", help="Zweck der Übermittlung")],
    category: Annotated[
        list[str] | None,
        typer.Option(
            "--category",
            help=f"Datenkategorie, mindestens eine, mehrfach möglich: {', '.join(CATEGORY_LABELS)}",
            show_default=False,
        ),
    ] = None,
    valid_until: Annotated[str | None, typer.Option("--valid-until", help="Gültig bis YYYY-MM-DD")] = None,
    expected_version: ExpectedVersion = None,
    fmt: FormatOption = OutputFormat.TEXT,
) -> None:
    """Eine Einwilligung der Klientin / des Klienten zur Übermittlung an eine Stelle erfassen."""
    engine, _, definition = _load(ctx, case_id)
    consent = engine.record_consent(
        case_id,
        recipient=to,
        purpose=purpose,
        categories=category or (),
        valid_until=valid_until,
        actor=_state(ctx).actor,
        expected_version=expected_version,
    )
    if fmt is OutputFormat.JSON:
        _print_json(dataclasses.asdict(consent))
        return
    until = f", gültig bis {consent.valid_until}" if consent.valid_until else ""
    agency = definition.agencies.get(to, to)
    typer.echo(f"Einwilligung Nr. {consent.id} für Fall {case_id} erfasst: {to} ({agency}){until}")


@case_app.command("revoke-consent")
def case_revoke_consent(
    ctx: typer.Context,
    case_id: Annotated[int, typer.Argument(metavar="ID", help="Fallnummer")],
    consent_id: Annotated[int, typer.Argument(metavar="CONSENT_ID", help="Nummer der Einwilligung")],
    expected_version: ExpectedVersion = None,
    fmt: FormatOption = OutputFormat.TEXT,
) -> None:
    """Eine Einwilligung widerrufen; davon abhängige Übergaben sind ab jetzt gesperrt."""
    engine = _load(ctx, case_id)[0]
    case = engine.revoke_consent(case_id, consent_id, actor=_state(ctx).actor, expected_version=expected_version)
    _print_case_change(case, f"Einwilligung Nr. {consent_id} von Fall {case.id} widerrufen", fmt)


@case_app.command("close")
def case_close(
    ctx: typer.Context,
    case_id: Annotated[int, typer.Argument(metavar="ID", help="Fallnummer")],
    outcome: Annotated[str, typer.Option("--outcome", help="Ergebnis, z. B. verzogen")],
    reason: Annotated[str, typer.Option("--reason", help="Begründung")],
    expected_version: ExpectedVersion = None,
    fmt: FormatOption = OutputFormat.TEXT,
) -> None:
    """Einen Fall vorzeitig mit einem Ergebnis beenden."""
    engine = _load(ctx, case_id)[0]
    case = engine.close(
        case_id, outcome=outcome, reason=reason, actor=_state(ctx).actor, expected_version=expected_version
    )
    _print_case_change(case, f"Fall {case.id} beendet ({outcome})", fmt)


@case_app.command("cancel")
def case_cancel(
    ctx: typer.Context,
    case_id: Annotated[int, typer.Argument(metavar="ID", help="Fallnummer")],
    reason: Annotated[str, typer.Option("--reason", help="Begründung")],
    expected_version: ExpectedVersion = None,
    fmt: FormatOption = OutputFormat.TEXT,
) -> None:
    """Einen irrtümlich eröffneten Fall stornieren."""
    engine = _load(ctx, case_id)[0]
    case = engine.cancel(case_id, reason=reason, actor=_state(ctx).actor, expected_version=expected_version)
    _print_case_change(case, f"Fall {case.id} storniert", fmt)


@case_app.command("anonymise")
def case_anonymise(
    ctx: typer.Context,
    case_id: Annotated[int, typer.Argument(metavar="ID", help="Fallnummer")],
    fmt: FormatOption = OutputFormat.TEXT,
) -> None:
    """Personenbezogene Daten eines beendeten Falls entfernen (Schrittstatistik bleibt erhalten)."""
    state = _state(ctx)
    engine = state.ready_engine()
    removed = anonymise_case(engine, case_id, actor=state.actor, route="kimflow case anonymise")
    if fmt is OutputFormat.JSON:
        _print_json({"case_id": case_id, "removed_fields": removed})
    else:
        typer.echo(f"Fall {case_id} anonymisiert ({_count(len(removed), 'Feld', 'Felder')} entfernt)")


# --------------------------------------------------------------------------- users and the HTTP server


def _accounts(ctx: typer.Context) -> Accounts:
    engine = _state(ctx).ready_engine()
    return Accounts(engine.store, engine.clock)


@user_app.command("add")
def user_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Benutzername")],
    role: Annotated[str, typer.Option("--role", help=f"Rolle: {', '.join(ROLES)}")],
    team: Annotated[
        str | None, typer.Option("--team", help="Team (Fallbearbeitung sieht nur Fälle ihres Teams)")
    ] = None,
) -> None:
    """Ein Benutzerkonto anlegen; das Passwort wird von der Standardeingabe gelesen."""
    import sys

    # Never a command-line argument: it would stand in the shell history and the process list.
    password = getpass.getpass("Passwort: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\r\n")
    user = _accounts(ctx).add_user(name, password, role=role, team=team)
    typer.echo(f"Benutzer {user.name} angelegt (Rolle {user.role}{', Team ' + user.team if user.team else ''})")


@user_app.command("list")
def user_list(ctx: typer.Context, fmt: FormatOption = OutputFormat.TEXT) -> None:
    """Benutzerkonten auflisten."""
    users = _accounts(ctx).list_users()
    if fmt is OutputFormat.JSON:
        _print_json([dataclasses.asdict(u) for u in users])
        return
    if not users:
        typer.echo("Keine Benutzer (kimflow user add NAME --role ROLLE)")
        return
    rows = [["Name", "Rolle", "Team", "Status"]]
    rows += [[u.name, u.role, u.team or "–", "gesperrt" if u.disabled else "aktiv"] for u in users]
    for line in _table(rows):
        typer.echo(line)


@user_app.command("disable")
def user_disable(ctx: typer.Context, name: Annotated[str, typer.Argument(metavar="NAME", help="Benutzername")]) -> None:
    """Ein Benutzerkonto sperren; seine Tokens gelten sofort nicht mehr."""
    user = _accounts(ctx).disable_user(name)
    typer.echo(f"Benutzer {user.name} gesperrt")


@app.command("serve")
def serve_command(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Adresse")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port")] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Anzahl Prozesse (mehrere nur mit PostgreSQL)")] = 1,
    demo: Annotated[
        bool,
        typer.Option("--demo", help="Mit einer neuen Demo-Datenbank starten: simuliertes Jahr, ein Konto je Rolle"),
    ] = False,
    demo_cases: Annotated[int, typer.Option("--demo-cases", min=0, help="Fälle der Demo-Simulation")] = 400,
    processes: Annotated[
        Path, typer.Option("--processes", help="Prozessdefinitionen für die Demo")
    ] = DEFAULT_PROCESSES,
) -> None:
    """Die Weboberfläche und HTTP-API mit uvicorn starten (Einstellungen aus KIMFLOW_*-Variablen)."""
    import os
    import secrets

    import uvicorn

    state = _state(ctx)
    if demo:
        from api.demo import DEMO_ACCOUNTS, build_demo

        _require_paths([processes])
        typer.echo(f"Demo wird vorbereitet: {demo_cases} Fälle über 12 Monate simulieren …")
        built = build_demo(processes, cases=demo_cases)
        os.environ["KIMFLOW_DATABASE_URL"] = built.database_url
        os.environ.setdefault("KIMFLOW_ENVIRONMENT", "dev")
        os.environ.setdefault("KIMFLOW_SECRET_KEY", secrets.token_urlsafe(32))
        width = max(len(name) for name in built.passwords)
        typer.echo(f"Demo-Datenbank: {built.directory / 'demo.db'}")
        typer.echo(f"Adresse: http://{host}:{port}/")
        typer.echo("Demo-Konten (Benutzername  Passwort  Rolle):")
        for name, password in built.passwords.items():
            typer.echo(f"  {name.ljust(width)}  {password}  {DEMO_ACCOUNTS[name]}")
    else:
        state.ready_engine()  # refuse to start on a database that is not set up
        state.close()
        # The workers are separate processes that build their settings from the environment.
        os.environ["KIMFLOW_DATABASE_URL"] = state.database
    uvicorn.run("api.app:app_from_environment", factory=True, host=host, port=port, workers=workers)


# --------------------------------------------------------------------------- simulate


@app.command("simulate")
def simulate_command(
    ctx: typer.Context,
    cases: Annotated[int, typer.Option("--cases", min=0, help="Wie viele Fälle eröffnet werden")] = 300,
    months: Annotated[int, typer.Option("--months", min=1, help="Simulierter Zeitraum in Monaten")] = 12,
    seed: Annotated[int, typer.Option("--seed", help="Startwert des Zufallsgenerators")] = 1,
    processes: Annotated[
        Path, typer.Option("--processes", help="Verzeichnis der Prozessdefinitionen")
    ] = DEFAULT_PROCESSES,
    start: Annotated[
        str | None,
        typer.Option("--start", help="Beginn YYYY-MM-DD; Standard: so, dass der Zeitraum heute endet"),
    ] = None,
    fmt: FormatOption = OutputFormat.TEXT,
) -> None:
    """Beispielfälle erzeugen: Schema einrichten, Prozesse bereitstellen, Fälle über Monate simulieren."""
    _require_paths([processes])
    state = _state(ctx)
    if start is None:
        begin = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30.4 * months)
    else:
        try:
            begin = datetime.combine(date.fromisoformat(start), datetime.min.time(), tzinfo=_BERLIN)
        except ValueError:
            raise CliError(f"--start: '{start}' ist kein Datum YYYY-MM-DD") from None
        begin = begin.replace(hour=8).astimezone(UTC)
    clock = FixedClock(begin)
    # Synthetic data: no fsync per commit (see engine.store.create_db_engine).
    engine = state.engine(clock=clock, durable=False)
    engine.upgrade_schema()
    deployments = engine.deploy([processes], actor=state.actor)
    started = time.perf_counter()
    summary = simulate(
        engine, clock, cases=cases, months=months, seed=seed, process_ids=[d.process_id for d in deployments]
    )
    elapsed = time.perf_counter() - started
    if fmt is OutputFormat.JSON:
        _print_json({**dataclasses.asdict(summary), "total": summary.total, "elapsed_seconds": round(elapsed, 2)})
        return
    for line in _summary_lines(summary, cases, months, elapsed):
        typer.echo(line)


def _summary_lines(summary: SimulationSummary, cases: int, months: int, elapsed: float) -> list[str]:
    total = summary.total
    period = f"{_local(summary.start)[:10]} – {_local(summary.end)[:10]}"
    lines = [f"Simulation: {cases} Fälle über {months} Monate (Seed {summary.seed}), {period}", ""]
    header = ["Prozess", "eröffnet", "abgeschlossen", "beendet", "storniert", "offen", "überfällig", "Ereignisse"]
    rows = [header]
    for pid, c in summary.processes.items():
        if c.opened:
            rows.append([pid, *(str(v) for v in (c.opened, c.completed, c.closed, c.cancelled, c.open, c.stalled))])
            rows[-1].append(str(c.events))
    rows.append(
        [
            "Summe",
            *(
                str(v)
                for v in (total.opened, total.completed, total.closed, total.cancelled, total.open, total.stalled)
            ),
            str(total.events),
        ]
    )
    lines += _table(rows)
    lines += [
        "",
        f"Ereignisse: {total.events} (davon {summary.timers_fired} durch Zeitgeber), "
        f"Pausen: {total.paused}, Einwilligungen: {total.consents}",
        f"Jetzt überfällig: {total.stalled} von {total.open} offenen Fällen",
        f"Dauer: {elapsed:.1f} s",
    ]
    return lines


@report_app.command("case")
def report_case(
    ctx: typer.Context,
    rank: Annotated[
        int, typer.Option("--rank", min=1, help="Rang des Optimierungskandidaten (1 = größte Überschreitung)")
    ],
    process: Annotated[str | None, typer.Option("--process", help="Bericht nur über diesen Prozess")] = None,
    cause: Annotated[str | None, typer.Option("--cause", help="Stockungsursache (Standard: häufigster Grund)")] = None,
    fmt: FormatOption = OutputFormat.TEXT,
) -> None:
    """Einen Optimierungskandidaten als Strukturhinweis-Fall eröffnen (nur anonyme Kennzahlen)."""
    from engine.reports import stall_report
    from engine.structural import open_structural_case

    state = _state(ctx)
    engine = state.ready_engine()
    report = stall_report(engine, now=engine.clock.now(), process_id=process)
    case = open_structural_case(engine, report, rank, actor=state.actor, cause=cause)
    candidate = next(c for c in report.candidates if c.rank == rank)
    _print_case_change(
        case, f"Fall {case.id} ({case.process_ref}) eröffnet für Kandidat {rank}: {candidate.title}", fmt
    )


def _register_extensions() -> None:
    """Commands that live beside this module, one concern each."""
    from api import cli_reports, cli_xes

    cli_xes.register(app, report_app, lambda ctx: _state(ctx).ready_engine())
    cli_reports.register(app, lambda ctx: _state(ctx).ready_engine(), report_app=report_app)


_register_extensions()


def main() -> None:
    """Entry point of the ``kimflow`` command."""
    app(prog_name="kimflow")


if __name__ == "__main__":
    main()
