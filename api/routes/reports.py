"""Current stalls (caseworkers and coordinators) and the stall report (project groups), JSON or CSV.

Wired in by :func:`api.app.create_app` when ``engine/stalls.py`` and ``engine/reports.py``
exist. The stall list names cases (a caseworker sees their team's only); the stall report
carries no personal data (small cells suppressed by the engine) and is what a project
group may read. The report's format follows ``Accept`` (``application/json`` by default,
``text/csv`` for spreadsheets).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from api.deps import CaseWorker, EngineDep, Reporter, team_filter
from api.errors import ApiProblem
from api.routes.common import problems
from engine.report_formats import TABLES, render_csv, render_json
from engine.reports import stall_report
from engine.stalls import find_stalls
from engine.store import cases_t

router = APIRouter(tags=["reports"])

_CSV = "text/csv"
_JSON = "application/json"
_REPORT_CONTENT = {
    200: {
        "description": "The stall report",
        "content": {_JSON: {"schema": {"type": "object"}}, _CSV: {"schema": {"type": "string"}}},
    }
}


def _negotiate(request: Request) -> str:
    """``application/json`` or ``text/csv`` by ``Accept`` (JSON when absent or ``*/*``; 406 otherwise)."""
    accept = request.headers.get("accept", "").lower()
    offers: list[tuple[float, int, str]] = []
    for index, part in enumerate(p for p in accept.split(",") if p.strip()):
        media, *params = (x.strip() for x in part.split(";"))
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        if q > 0 and media in (_CSV, _JSON, "text/*", "application/*", "*/*"):
            chosen = _CSV if media in (_CSV, "text/*") else _JSON
            offers.append((q, -index, chosen))
    if not accept.strip():
        return _JSON
    if not offers:
        raise ApiProblem("not-acceptable", "Bericht als application/json oder text/csv anfordern")
    return max(offers)[2]


@router.get("/stalls", responses=problems())
def read_stalls(
    user: CaseWorker,
    engine: EngineDep,
    process_id: Annotated[str | None, Query(max_length=64)] = None,
    step: Annotated[str | None, Query(max_length=64)] = None,
    agency: Annotated[str | None, Query(max_length=20)] = None,
    assignee: Annotated[str | None, Query(max_length=128)] = None,
    include_at_risk: bool = True,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> JSONResponse:
    """Open visits past their deadline (stalled) or warning (at risk), most overdue first."""
    stalls = find_stalls(
        engine,
        now=engine.clock.now(),
        process_id=process_id,
        step=step,
        agency=agency,
        assignee=assignee,
        include_at_risk=include_at_risk,
        limit=limit,
    )
    restricted, team = team_filter(user)
    if restricted and stalls:
        ids = [s.case_id for s in stalls]
        with engine.store.read() as conn:
            column = cases_t.c.team
            mine = set(
                conn.execute(
                    sa.select(cases_t.c.id).where(
                        cases_t.c.id.in_(ids), column == team if team is not None else column.is_(None)
                    )
                ).scalars()
            )
        stalls = [s for s in stalls if s.case_id in mine]
    return JSONResponse({"data": [s.as_dict() for s in stalls], "count": len(stalls)})


@router.get("/reports/stalls", responses={**problems(404, 406), **_REPORT_CONTENT}, response_model=None)
def read_stall_report(
    _: Reporter,
    engine: EngineDep,
    request: Request,
    process_id: Annotated[str | None, Query(max_length=64)] = None,
    period_from: date | None = None,
    period_to: date | None = None,
    agency: Annotated[str | None, Query(max_length=20)] = None,
    table: Annotated[str, Query(description="The table for CSV: " + ", ".join(TABLES))] = "steps",
    decimal_comma: bool = False,
) -> Response:
    """The stall report without personal data: per step and agency, handoffs, trend, findings, candidates."""
    media = _negotiate(request)
    if table not in TABLES:
        raise ApiProblem("request-invalid", f"Unbekannte Tabelle '{table}'", allowed_tables=list(TABLES))
    report = stall_report(
        engine,
        now=engine.clock.now(),
        process_id=process_id,
        period_from=period_from,
        period_to=period_to,
        agency=agency,
    )
    if media == _CSV:
        body = render_csv(report, table=table, decimal_comma=decimal_comma)
        return Response(body, media_type="text/csv; charset=utf-8")
    return Response(render_json(report), media_type=_JSON)
