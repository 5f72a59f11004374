"""Rendering the stall report and the before/after comparison as JSON and CSV.

JSON is the reports' ``as_dict()``. CSV is written for German spreadsheets: ``;`` as
separator, a UTF-8 byte order mark (so that Excel detects the encoding), German column
headers and, on request, a decimal comma. A suppressed figure is an empty cell, and the
row says so in its "Unterdrückt" columns; nothing is left out silently. The HTML page
is :mod:`engine.report_html`.

Only the report objects are read here, never the database: what the report does not
hold (case ids, names, case data, finding texts) cannot appear in any format.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Sequence

from engine.compare import Comparison
from engine.reports import StallReport, StepStats

BOM = "\ufeff"
TABLES = ("steps", "handoffs", "trend", "findings", "candidates")


def render_json(report: StallReport | Comparison) -> str:
    """The report as indented JSON (UTF-8 text, non-ASCII kept)."""
    return json.dumps(report.as_dict(), ensure_ascii=False, indent=2) + "\n"


class _Numbers:
    def __init__(self, decimal_comma: bool) -> None:
        self.decimal_comma = decimal_comma

    def __call__(self, value: float | int | None, decimals: int = 1) -> str:
        if value is None:
            return ""
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        text = f"{value:.{decimals}f}"
        return text.replace(".", ",") if self.decimal_comma else text

    def percent(self, share: float | None) -> str:
        return "" if share is None else self(share * 100, 1)

    def days(self, seconds: float | None) -> str:
        return "" if seconds is None else self(seconds / 86_400, 2)


def _yes(flag: bool) -> str:
    return "ja" if flag else "nein"


def _write(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    writer.writerows(rows)
    return BOM + out.getvalue()


def _reasons(step: StepStats, min_cell: int) -> str:
    return ", ".join(f"{r.code} ({f'<{min_cell}' if r.count is None else r.count})" for r in step.top_reasons)


def _steps(report: StallReport, n: _Numbers) -> str:
    header = (
        "Prozess", "Version", "Schritt", "Schritt (Titel)", "Stelle", "Erwartete Dauer", "Besuche",
        "Abgeschlossen", "Offen", "Median Verweildauer (Arbeitstage)", "p90 Verweildauer (Arbeitstage)",
        "Median Verweildauer (Sekunden)", "p90 Verweildauer (Sekunden)", "Median Verweildauer (Kalendertage)",
        "p90 Verweildauer (Kalendertage)", "Überschritten", "Überschreitungsquote (%)", "Jetzt über der Frist",
        "Überschreitung gesamt (Arbeitstage)", "Häufigste Gründe", "Unterdrückt", "Unterdrückte Felder",
    )  # fmt: skip
    rows = [
        (
            s.process_id,
            str(s.process_version),
            s.step,
            s.title,
            s.agency or "",
            s.expected or "",
            n(s.visits),
            n(s.completed),
            n(s.open),
            n(s.median_office_days),
            n(s.p90_office_days),
            n(s.median_seconds, 0),
            n(s.p90_seconds, 0),
            n.days(s.median_seconds),
            n.days(s.p90_seconds),
            n(s.overran),
            n.percent(s.overrun_share),
            n(s.stalled_now),
            n(s.excess_office_days),
            _reasons(s, report.min_cell),
            _yes(s.suppressed),
            ", ".join(s.suppressed_fields),
        )
        for s in report.steps
    ]
    return _write(header, rows)


def _handoffs(report: StallReport, n: _Numbers) -> str:
    header = (
        "Von Stelle", "An Stelle", "Besuche", "Abgeschlossen", "Median Wartezeit (Arbeitstage)",
        "p90 Wartezeit (Arbeitstage)", "Median Wartezeit (Sekunden)", "p90 Wartezeit (Sekunden)",
        "Unterdrückt", "Unterdrückte Felder",
    )  # fmt: skip
    rows = [
        (
            h.from_agency,
            h.to_agency or "",
            n(h.visits),
            n(h.completed),
            n(h.median_office_days),
            n(h.p90_office_days),
            n(h.median_seconds, 0),
            n(h.p90_seconds, 0),
            _yes(h.suppressed),
            ", ".join(h.suppressed_fields),
        )
        for h in report.handoffs
    ]
    return _write(header, rows)


def _trend(report: StallReport, n: _Numbers) -> str:
    header = (
        "Monat", "Abgeschlossen", "Überschritten", "Überschreitungsquote (%)", "Überschreitung gesamt (Arbeitstage)",
        "Unterdrückt", "Unterdrückte Felder",
    )  # fmt: skip
    rows = [
        (
            m.month,
            n(m.completed),
            n(m.overran),
            n.percent(m.overrun_share),
            n(m.excess_office_days),
            _yes(m.suppressed),
            ", ".join(m.suppressed_fields),
        )
        for m in report.trend
    ]
    return _write(header, rows)


def _findings(report: StallReport, n: _Numbers) -> str:
    header = ("Prozess", "Version", "Schritt", "Stelle", "Code", "Bedeutung", "Anzahl", "Unterdrückt")
    rows = [
        (f.process_id, str(f.process_version), f.step, f.agency or "", f.code, f.label, n(f.count), _yes(f.suppressed))
        for f in report.findings
    ]
    return _write(header, rows)


def _candidates(report: StallReport, n: _Numbers) -> str:
    header = (
        "Rang", "Prozess", "Version", "Schritt", "Schritt (Titel)", "Stelle", "Überschreitung gesamt (Arbeitstage)",
        "Überschreitungsquote (%)", "p90 Verweildauer (Arbeitstage)", "Jetzt über der Frist", "Regeln",
    )  # fmt: skip
    rows = [
        (
            str(c.rank),
            c.process_id,
            str(c.process_version),
            c.step,
            c.title,
            c.agency or "",
            n(c.excess_office_days),
            n.percent(c.overrun_share),
            n(c.p90_office_days),
            n(c.stalled_now),
            " | ".join(r.text for r in c.rules),
        )
        for c in report.candidates
    ]
    return _write(header, rows)


_TABLES: dict[str, Callable[[StallReport, _Numbers], str]] = {
    "steps": _steps,
    "handoffs": _handoffs,
    "trend": _trend,
    "findings": _findings,
    "candidates": _candidates,
}


def render_csv(report: StallReport, *, table: str = "steps", decimal_comma: bool = False) -> str:
    """One table of the stall report as CSV for German spreadsheets (text starting with a BOM).

    Args:
        report: The report.
        table: ``steps``, ``handoffs``, ``trend``, ``findings`` or ``candidates``.
        decimal_comma: Write 12,5 instead of 12.5.

    Raises:
        ValueError: If ``table`` is unknown.
    """
    try:
        render = _TABLES[table]
    except KeyError:
        raise ValueError(f"unknown table {table!r}; choose one of {', '.join(TABLES)}") from None
    return render(report, _Numbers(decimal_comma))


VERDICTS_DE = {"improved": "verbessert", "worsened": "verschlechtert", "inconclusive": "keine Aussage"}


def render_comparison_csv(comparison: Comparison, *, decimal_comma: bool = False) -> str:
    """The before/after comparison as CSV for German spreadsheets."""
    n = _Numbers(decimal_comma)
    a, b = comparison.label_a, comparison.label_b
    header = (
        "Schritt", "Schritt (Titel)", "Stelle", f"Besuche A ({a})", f"Abgeschlossen A ({a})",
        f"Median Arbeitstage A ({a})", f"Überschreitungsquote A (%) ({a})", f"Besuche B ({b})",
        f"Abgeschlossen B ({b})", f"Median Arbeitstage B ({b})", f"Überschreitungsquote B (%) ({b})",
        "Differenz der Mediane (B − A, Arbeitstage)", "95-%-Intervall von", "95-%-Intervall bis", "Ergebnis",
        "Hinweise",
    )  # fmt: skip
    rows = [
        (
            s.step,
            s.title,
            s.agency or "",
            n(s.a.visits),
            n(s.a.completed),
            n(s.a.median_office_days),
            n.percent(s.a.overrun_share),
            n(s.b.visits),
            n(s.b.completed),
            n(s.b.median_office_days),
            n.percent(s.b.overrun_share),
            n(s.median_difference),
            n(s.interval[0]) if s.interval else "",
            n(s.interval[1]) if s.interval else "",
            VERDICTS_DE.get(s.verdict or "", ""),
            " | ".join(w.text for w in s.warnings),
        )
        for s in comparison.steps
    ]
    return _write(header, rows)


__all__ = ["BOM", "TABLES", "VERDICTS_DE", "render_comparison_csv", "render_csv", "render_json"]
