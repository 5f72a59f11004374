"""Closing the loop: an optimisation candidate of the stall report becomes a structural case.

The shipped process ``strukturhinweis`` runs the Strukturansatz itself (finding →
working group → project group → steering group → implemented → effect evaluated).
This module fills the opening data of such a case from a report's candidate — only
aggregated, anonymous figures, never anything about individual cases.
"""

from __future__ import annotations

from typing import Any

from engine.case import Case
from engine.cases import Engine
from engine.errors import InvalidCaseData
from engine.reports import Candidate, StallReport

STRUCTURAL_PROCESS = "strukturhinweis"


def candidate_case_data(report: StallReport, candidate: Candidate, *, cause: str | None = None) -> dict[str, Any]:
    """The opening data of a structural case for ``candidate``.

    Args:
        report: The report the candidate comes from (for the period and the step's figures).
        candidate: The candidate.
        cause: The stall-cause code; default: the step's most frequent reason code, if any.
    """
    stats = next(
        (
            s
            for s in report.steps
            if (s.process_id, s.process_version, s.step, s.agency)
            == (candidate.process_id, candidate.process_version, candidate.step, candidate.agency)
        ),
        None,
    )
    if cause is None and stats is not None:
        counted = [r for r in stats.top_reasons if r.count]
        cause = counted[0].code if counted else None
    data: dict[str, Any] = {
        "prozess_id": candidate.process_id,
        "prozess_version": candidate.process_version,
        "schritt_id": candidate.step,
        "stelle": candidate.agency,
        "ursache": cause,
        "fallzahl": stats.visits if stats is not None else None,
        "median_arbeitstage": _rounded(stats.median_office_days) if stats is not None else None,
        "p90_arbeitstage": _rounded(candidate.p90_office_days),
    }
    if report.filters.period_from is not None:
        data["zeitraum_von"] = report.filters.period_from.date().isoformat()
    if report.filters.period_to is not None:
        data["zeitraum_bis"] = report.filters.period_to.date().isoformat()
    return {k: v for k, v in data.items() if v is not None}


def open_structural_case(
    engine: Engine,
    report: StallReport,
    rank: int,
    *,
    actor: str,
    cause: str | None = None,
    team: str | None = None,
) -> Case:
    """Open a ``strukturhinweis`` case for the candidate of ``rank`` (1 = most excess office days).

    ``team`` is the team that will own the case (the opener's, so they can see it).

    Raises:
        InvalidCaseData: No candidate has that rank.
        DefinitionNotFound: The structural process is not deployed.
    """
    candidate = next((c for c in report.candidates if c.rank == rank), None)
    if candidate is None:
        raise InvalidCaseData(0, {"rank": f"the report has no candidate {rank} (it has {len(report.candidates)})"})
    return engine.open_case(
        STRUCTURAL_PROCESS, actor=actor, data=candidate_case_data(report, candidate, cause=cause), team=team
    )


__all__ = ["STRUCTURAL_PROCESS", "candidate_case_data", "open_structural_case"]


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
