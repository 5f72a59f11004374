"""``kimflow stalls``, ``kimflow report stalls`` and ``kimflow report compare``.

The commands are attached to the main application by :func:`register`; this module
imports nothing from ``api.cli``: the engine comes from the callable passed in (it may
take the current ``typer.Context``, e.g. ``lambda ctx: _state(ctx).ready_engine()``).
Conventions as in ``api/cli.py``: German messages, engine refusals surface as
:class:`~engine.errors.EngineError` (the root group turns them into one line and exit
code 1), usage errors exit with 2.

``stalls`` is the caseworkers' list (it names cases and caseworkers). ``report stalls``
and ``report compare`` are for working and project groups: no personal data, small
cells suppressed (``--min-cell``), as JSON, CSV for German spreadsheets or a printable
HTML page.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from datetime import date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer

from engine import Engine
from engine.compare import Comparison, compare_periods, compare_versions
from engine.report_formats import TABLES, VERDICTS_DE, render_comparison_csv, render_csv, render_json
from engine.report_html import render_comparison_html, render_html
from engine.reports import DEFAULT_MIN_CELL, StallReport, stall_report
from engine.stalls import AT_RISK, DEFAULT_LIMIT, Stall, find_stalls

_BERLIN = ZoneInfo("Europe/Berlin")

EngineSource = Callable[[], Engine] | Callable[[typer.Context], Engine]


class ListFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class ReportFormat(StrEnum):
    TEXT = "text"
    JSON = "json"
    CSV = "csv"
    HTML = "html"


def _call(source: Callable[..., Any], ctx: typer.Context) -> Any:
    """Call ``source`` with the current context if it takes a parameter, else without."""
    try:
        takes_context = bool(inspect.signature(source).parameters)
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        takes_context = False
    return source(ctx) if takes_context else source()


def _instant(text: str | None, option: str) -> datetime | None:
    """``--now``: an ISO 8601 instant (a time without zone is Berlin time)."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"'{text}' ist kein Zeitpunkt wie 2026-03-12T09:00", param_hint=option) from None
    return value.replace(tzinfo=_BERLIN) if value.tzinfo is None else value


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"'{text}' ist kein Datum JJJJ-MM-TT", param_hint=option) from None


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        typer.echo(text, nl=not text.endswith("\n"))
        return
    output.write_text(text, encoding="utf-8", newline="")
    typer.echo(f"Geschrieben: {output}", err=True)


def _decimal(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}".replace(".", ",")


def _count(value: int | None, min_cell: int) -> str:
    return f"<{min_cell}" if value is None else str(value)


def register(app: typer.Typer, get_engine: EngineSource, *, report_app: typer.Typer | None = None) -> None:
    """Attach ``stalls`` to ``app``, and ``stalls`` and ``compare`` to its ``report`` group.

    Args:
        app: The root application.
        get_engine: Returns the engine of the current invocation (schema checked); it may take
            the current ``typer.Context``.
        report_app: The ``report`` group; by default the one registered on ``app`` under that
            name, or a new one.
    """
    if report_app is None:
        existing = [g.typer_instance for g in app.registered_groups if g.name == "report"]
        if existing and existing[0] is not None:
            report_app = existing[0]
        else:
            report_app = typer.Typer(help="Berichte für Projektgruppen (ohne personenbezogene Daten).")
            app.add_typer(report_app, name="report")

    @app.command("stalls")
    def stalls_command(
        ctx: typer.Context,
        process: Annotated[str | None, typer.Option("--process", help="Nur dieser Prozess")] = None,
        step: Annotated[str | None, typer.Option("--step", help="Nur dieser Schritt")] = None,
        agency: Annotated[str | None, typer.Option("--agency", help="Nur Schritte dieser Stelle (Kürzel)")] = None,
        assignee: Annotated[str | None, typer.Option("--assignee", help="Nur Fälle dieser Fallbearbeitung")] = None,
        at_risk: Annotated[
            bool, typer.Option("--at-risk/--no-at-risk", help="Auch gefährdete Fälle (Warnschwelle überschritten)")
        ] = True,
        limit: Annotated[int, typer.Option("--limit", min=1, help="Höchstens so viele Fälle")] = DEFAULT_LIMIT,
        now: Annotated[
            str | None, typer.Option("--now", help="Stichzeitpunkt (ISO 8601); Standard: jetzt", show_default=False)
        ] = None,
        fmt: Annotated[ListFormat, typer.Option("--format", case_sensitive=False, help="text oder json")] = (
            ListFormat.TEXT
        ),
    ) -> None:
        """Überfällige und gefährdete Fälle, die überfälligsten zuerst (für Fallbearbeitung und Leitung)."""
        engine = _call(get_engine, ctx)
        at = _instant(now, "--now") or engine.clock.now()
        found = find_stalls(
            engine,
            now=at,
            process_id=process,
            step=step,
            agency=agency,
            assignee=assignee,
            include_at_risk=at_risk,
            limit=limit,
        )
        if fmt is ListFormat.JSON:
            typer.echo(json.dumps([s.as_dict() for s in found], ensure_ascii=False, indent=2))
            return
        for line in stall_lines(found, at):
            typer.echo(line)

    @report_app.command("stalls")
    def report_stalls_command(
        ctx: typer.Context,
        process: Annotated[str | None, typer.Option("--process", help="Nur dieser Prozess")] = None,
        period_from: Annotated[
            str | None, typer.Option("--from", help="Besuche eingetreten ab diesem Tag (JJJJ-MM-TT)")
        ] = None,
        period_to: Annotated[
            str | None, typer.Option("--to", help="… bis einschließlich diesem Tag (JJJJ-MM-TT)")
        ] = None,
        agency: Annotated[str | None, typer.Option("--agency", help="Nur Schritte dieser Stelle (Kürzel)")] = None,
        min_cell: Annotated[
            int, typer.Option("--min-cell", min=1, help="Zellen mit weniger Besuchen unterdrücken")
        ] = DEFAULT_MIN_CELL,
        fmt: Annotated[
            ReportFormat, typer.Option("--format", case_sensitive=False, help="text, json, csv oder html")
        ] = ReportFormat.TEXT,
        table: Annotated[str, typer.Option("--table", help=f"Tabelle der CSV-Ausgabe: {', '.join(TABLES)}")] = "steps",
        decimal_comma: Annotated[bool, typer.Option("--decimal-comma", help="CSV mit Dezimalkomma")] = False,
        output: Annotated[Path | None, typer.Option("--output", "-o", help="In diese Datei schreiben")] = None,
        now: Annotated[
            str | None, typer.Option("--now", help="Stichzeitpunkt (ISO 8601); Standard: jetzt", show_default=False)
        ] = None,
    ) -> None:
        """Stillstandsbericht für Arbeits- und Projektgruppen (keine Personendaten, kleine Zellen unterdrückt)."""
        if table not in TABLES:
            raise typer.BadParameter(f"'{table}': eine von {', '.join(TABLES)}", param_hint="--table")
        engine = _call(get_engine, ctx)
        report = stall_report(
            engine,
            now=_instant(now, "--now") or engine.clock.now(),
            process_id=process,
            period_from=_day(period_from, "--from") if period_from else None,
            period_to=_day(period_to, "--to") if period_to else None,
            agency=agency,
            min_cell=min_cell,
        )
        if fmt is ReportFormat.JSON:
            _emit(render_json(report), output)
        elif fmt is ReportFormat.CSV:
            _emit(render_csv(report, table=table, decimal_comma=decimal_comma), output)
        elif fmt is ReportFormat.HTML:
            _emit(render_html(report), output)
        else:
            _emit("\n".join(report_lines(report)) + "\n", output)

    @report_app.command("compare")
    def report_compare_command(
        ctx: typer.Context,
        process: Annotated[str, typer.Option("--process", help="Prozess-ID")],
        versions: Annotated[
            tuple[int, int] | None,
            typer.Option("--versions", help="Version A und Version B, z. B. --versions 1 2", show_default=False),
        ] = None,
        periods: Annotated[
            tuple[str, str, str, str] | None,
            typer.Option(
                "--periods",
                metavar="A_VON A_BIS B_VON B_BIS",
                help="Zeitraum A und Zeitraum B (Tage JJJJ-MM-TT, Ende eingeschlossen)",
                show_default=False,
            ),
        ] = None,
        min_cell: Annotated[
            int, typer.Option("--min-cell", min=1, help="Zellen mit weniger Besuchen unterdrücken")
        ] = DEFAULT_MIN_CELL,
        fmt: Annotated[
            ReportFormat, typer.Option("--format", case_sensitive=False, help="text, json, csv oder html")
        ] = ReportFormat.TEXT,
        decimal_comma: Annotated[bool, typer.Option("--decimal-comma", help="CSV mit Dezimalkomma")] = False,
        output: Annotated[Path | None, typer.Option("--output", "-o", help="In diese Datei schreiben")] = None,
    ) -> None:
        """Vorher-nachher-Vergleich je Schritt: Version A gegen B oder Zeitraum A gegen B."""
        if (versions is None) == (periods is None):
            raise typer.BadParameter("genau eines von --versions oder --periods angeben", param_hint="--versions")
        engine = _call(get_engine, ctx)
        if versions is not None:
            comparison = compare_versions(engine, process, versions[0], versions[1], min_cell=min_cell)
        else:
            assert periods is not None
            a_from, a_to, b_from, b_to = (_day(p, "--periods") for p in periods)
            comparison = compare_periods(engine, process, (a_from, a_to), (b_from, b_to), min_cell=min_cell)
        if fmt is ReportFormat.JSON:
            _emit(render_json(comparison), output)
        elif fmt is ReportFormat.CSV:
            _emit(render_comparison_csv(comparison, decimal_comma=decimal_comma), output)
        elif fmt is ReportFormat.HTML:
            _emit(render_comparison_html(comparison), output)
        else:
            _emit("\n".join(comparison_lines(comparison)) + "\n", output)


# --------------------------------------------------------------------------- text output


def _columns(rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def stall_lines(stalls: list[Stall], now: datetime) -> list[str]:
    """The stall list as a German text table."""
    when = now.astimezone(_BERLIN).strftime("%d.%m.%Y %H:%M")
    if not stalls:
        return [f"Keine überfälligen oder gefährdeten Fälle (Stand {when})."]
    rows = [["Fall", "Prozess", "Schritt", "Stelle", "wartet auf", "Bearbeitung", "Frist", "AT über", "Stand", "Grund"]]
    for s in stalls:
        # due_at is the end of the due day (local midnight after it)
        due_day = (s.due_at - timedelta(microseconds=1)).astimezone(_BERLIN).date()
        rows.append(
            [
                str(s.case_id),
                s.process_ref,
                s.step_title,
                s.agency or "–",
                s.waiting_on or "–",
                s.assignee or "–",
                due_day.strftime("%d.%m.%Y"),
                str(s.overdue_office_days) if s.status != AT_RISK else "–",
                ("gefährdet" if s.status == AT_RISK else "überfällig") + (" (pausiert)" if s.paused else ""),
                s.reason_code or "",
            ]
        )
    stalled = sum(1 for s in stalls if s.status != AT_RISK)
    head = f"Stand {when}: {stalled} überfällig, {len(stalls) - stalled} gefährdet (AT = Arbeitstage)"
    return [head, "", *_columns(rows, {0, 7})]


def report_lines(report: StallReport) -> list[str]:
    """A short German text view of the stall report: candidates, then the steps."""
    k = report.min_cell
    lines = [
        f"Stillstandsbericht, Stand {report.generated_at.astimezone(_BERLIN):%d.%m.%Y %H:%M} "
        f"(keine personenbezogenen Daten; Zellen unter {k} Besuchen unterdrückt)",
        "",
        "Optimierungskandidaten (nach Überschreitung in Arbeitstagen):",
    ]
    if not report.candidates:
        lines.append("  keine")
    for c in report.candidates:
        rules = "; ".join(r.text for r in c.rules)
        lines.append(
            f"  {c.rank}. {c.title} ({c.process_id}@{c.process_version}, {c.agency or '–'}): "
            f"{_count(c.excess_office_days, k)} AT über Frist – {rules}"
        )
    lines += ["", "Schritte:"]
    rows = [["Schritt", "Prozess", "Stelle", "Besuche", "Median AT", "p90 AT", "Überschr. %", "jetzt über", "AT über"]]
    for s in report.steps:
        share = None if s.overrun_share is None else s.overrun_share * 100
        rows.append(
            [
                s.title + (" (unterdrückt)" if s.suppressed else ""),
                s.process_ref,
                s.agency or "–",
                _count(s.visits, k),
                _decimal(s.median_office_days),
                _decimal(s.p90_office_days),
                _decimal(share),
                _count(s.stalled_now, k),
                _count(s.excess_office_days, k),
            ]
        )
    return lines + _columns(rows, set(range(3, 9)))


def comparison_lines(comparison: Comparison) -> list[str]:
    """The comparison as a German text table."""
    lines = [
        f"Vergleich {comparison.process_id}: A = {comparison.label_a}, B = {comparison.label_b} "
        "(Median der Verweildauer in Arbeitstagen, 95-%-Bootstrap-Intervall der Differenz B − A)",
        "",
    ]
    rows = [["Schritt", "n A", "Median A", "n B", "Median B", "B − A", "95-%-Intervall", "Ergebnis"]]
    notes = []
    for s in comparison.steps:
        interval = "–" if s.interval is None else f"{_decimal(s.interval[0])} … {_decimal(s.interval[1])}"
        rows.append(
            [
                s.title,
                _count(s.a.completed, comparison.min_cell),
                _decimal(s.a.median_office_days),
                _count(s.b.completed, comparison.min_cell),
                _decimal(s.b.median_office_days),
                _decimal(s.median_difference),
                interval,
                VERDICTS_DE.get(s.verdict or "", "–"),
            ]
        )
        notes += [f"  {s.title}: {w.text}" for w in s.warnings]
    lines += _columns(rows, {1, 2, 3, 4, 5})
    if notes:
        lines += ["", "Hinweise:", *notes]
    return lines


__all__ = ["comparison_lines", "register", "report_lines", "stall_lines"]
