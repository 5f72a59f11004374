"""``kimflow export xes``, ``kimflow import xes`` and ``kimflow report dwell``.

The commands are attached to the main application by :func:`register` (``api/cli.py``
calls it), so this module imports nothing from ``api.cli``: the engine and the actor come
from the callables passed in. Conventions as in ``api/cli.py``: German messages,
``--format text|json``, engine refusals surface as :class:`~engine.errors.EngineError`
(the root group turns them into one line and exit code 1), usage errors exit with 2.
"""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from engine import Engine
from engine.dwell import StepDwell, dwell_report
from engine.xes import export_xes, import_xes


class OutputFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


FormatOption = Annotated[
    OutputFormat, typer.Option("--format", help="Ausgabe als Text oder JSON", case_sensitive=False)
]


EngineSource = Callable[[], Engine] | Callable[[typer.Context], Engine]
ActorSource = Callable[[], str] | Callable[[typer.Context], str]


def _root_actor(ctx: typer.Context) -> str:
    """The ``--actor`` of the root command (``api.cli``'s state object has ``actor``)."""
    return getattr(ctx.find_root().obj, "actor", None) or "xes-import"


def _call(source: Callable[..., Any], ctx: typer.Context) -> Any:
    """Call ``source`` with the current context if it takes a parameter, else without."""
    try:
        takes_context = bool(inspect.signature(source).parameters)
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        takes_context = False
    return source(ctx) if takes_context else source()


def register(
    app: typer.Typer,
    report_app: typer.Typer,
    get_engine: EngineSource,
    get_actor: ActorSource | None = None,
) -> None:
    """Attach ``export xes`` and ``import xes`` to ``app`` and ``dwell`` to ``report_app``.

    Args:
        app: The root application (gets the groups ``export`` and ``import``).
        report_app: The ``report`` group.
        get_engine: Returns the engine of the current invocation (schema checked). It may take
            the current ``typer.Context`` (typer vendors click, so ``click.get_current_context``
            does not see typer's contexts), e.g. ``lambda ctx: _state(ctx).ready_engine()``.
        get_actor: Returns who is acting (may take the context too); by default the ``actor``
            attribute of the root context's ``obj`` (``--actor`` in ``api/cli.py``).
    """
    actor_of: ActorSource = get_actor or _root_actor
    export_app = typer.Typer(help="Daten für andere Werkzeuge exportieren.", no_args_is_help=True)
    import_app = typer.Typer(help="Daten aus anderen Werkzeugen einlesen.", no_args_is_help=True)
    app.add_typer(export_app, name="export")
    app.add_typer(import_app, name="import")

    @export_app.command("xes")
    def export_xes_command(
        ctx: typer.Context,
        process: Annotated[str | None, typer.Option("--process", help="Nur Fälle dieses Prozesses")] = None,
        output: Annotated[
            Path | None,
            typer.Option(
                "--output", "-o", help="Zieldatei (.xes, oder .xes.gz komprimiert); Standard: Standardausgabe"
            ),
        ] = None,
    ) -> None:
        """Das Ereignisprotokoll als XES (IEEE 1849) für ProM, PM4Py, Disco oder Celonis schreiben.

        Akteure werden pseudonymisiert; Falldaten werden nie exportiert.
        """
        engine = _call(get_engine, ctx)
        if output is None:
            summary = export_xes(engine, sys.stdout.buffer, process_id=process)
            sys.stdout.buffer.flush()
            typer.echo(_export_line(summary.traces, summary.events, "Standardausgabe"), err=True)
            return
        summary = export_xes(engine, output, process_id=process)
        typer.echo(_export_line(summary.traces, summary.events, str(output)))

    @import_app.command("xes")
    def import_xes_command(
        ctx: typer.Context,
        file: Annotated[
            Path,
            typer.Argument(
                metavar="DATEI", help="XES-Datei (.xes oder .xes.gz)", exists=True, dir_okay=False, readable=True
            ),
        ],
        process_id: Annotated[
            str, typer.Option("--process-id", help="Kennung des neuen Prozesses, z. B. baugenehmigung_2011")
        ],
        fmt: FormatOption = OutputFormat.TEXT,
    ) -> None:
        """Ein historisches Ereignisprotokoll (XES) als Prozess mit Fällen einlesen.

        Ein Schritt je Aktivität; ein Aufenthalt dauert bis zum nächsten Ereignis des Falls;
        das letzte Ereignis beendet den Fall. Nur Ereignisse mit Lebenszyklus 'complete'.
        """
        engine = _call(get_engine, ctx)
        summary = import_xes(engine, file, process_id=process_id, actor=_call(actor_of, ctx))
        if fmt is OutputFormat.JSON:
            _print_json(summary.as_dict())
            return
        rate = f"{summary.events / max(summary.seconds, 1e-9):,.0f}".replace(",", ".")
        typer.echo(
            f"Prozess {summary.process_id}@{summary.version} aus {file.name} eingelesen: "
            f"{summary.cases} Fälle, {summary.events} Ereignisse, {summary.activities} Aktivitäten "
            f"({_decimal(summary.seconds)} s, {rate} Ereignisse/s)"
        )
        notes = []
        if summary.skipped_events:
            notes.append(f"{summary.skipped_events} Ereignisse ohne Lebenszyklus 'complete' übersprungen")
        if summary.skipped_traces:
            notes.append(f"{summary.skipped_traces} Fälle ohne solche Ereignisse übersprungen")
        if summary.naive_timestamps:
            notes.append(f"{summary.naive_timestamps} Zeitstempel ohne Zeitzone als UTC gelesen")
        for note in notes:
            typer.echo(f"Hinweis: {note}")
        typer.echo(
            f"Zeitraum: {summary.first_event:%d.%m.%Y} – {summary.last_event:%d.%m.%Y} (UTC). "
            f"Verweildauern: kimflow report dwell --process {summary.process_id}"
        )

    @report_app.command("dwell")
    def dwell_command(
        ctx: typer.Context,
        process: Annotated[str, typer.Option("--process", help="Prozess-ID")],
        version: Annotated[int | None, typer.Option("--version", min=1, help="Nur Fälle dieser Version")] = None,
        fmt: FormatOption = OutputFormat.TEXT,
    ) -> None:
        """Verweildauer je Schritt (Kalenderzeit): Aufenthalte, Mittelwert, Median und 90. Perzentil."""
        engine = _call(get_engine, ctx)
        steps = dwell_report(engine, process, version=version)
        if fmt is OutputFormat.JSON:
            out: dict[str, Any] = {"process": process}
            if version is not None:
                out["version"] = version
            out["steps"] = [s.as_dict() for s in steps]
            _print_json(out)
            return
        for line in dwell_lines(process, steps):
            typer.echo(line)


def dwell_lines(process: str, steps: list[StepDwell]) -> list[str]:
    """The dwell report as a German text table."""
    rows = [["Schritt", "Aufenthalte", "Mittelwert", "Median", "90. Perzentil"]]
    for s in steps:
        rows.append(
            [
                f"{s.title} ({s.step})",
                str(s.visits),
                german_duration(s.mean_seconds),
                german_duration(s.median_seconds),
                german_duration(s.p90_seconds),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [f"Verweildauer je Schritt – Prozess {process} (Kalenderzeit, UTC)", ""]
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def german_duration(seconds: float | None) -> str:
    """A readable German duration: ``42 s``, ``3,5 min``, ``5,1 Std.``, ``12,3 Tage``; ``–`` for None."""
    if seconds is None:
        return "–"
    if seconds < 60:
        text = f"{seconds:.0f} s"
    elif seconds < 3600:
        text = f"{seconds / 60:.1f} min"
    elif seconds < 86_400:
        text = f"{seconds / 3600:.1f} Std."
    else:
        text = f"{seconds / 86_400:.1f} Tage"
    return text.replace(".", ",", 1)


def _decimal(value: float) -> str:
    return f"{value:.1f}".replace(".", ",")


def _export_line(traces: int, events: int, target: str) -> str:
    return f"XES geschrieben: {traces} Fälle, {events} Ereignisse → {target}"


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


__all__ = ["dwell_lines", "german_duration", "register"]
