"""Current stalls, the reports for project groups (stalls, comparison, findings) and the XES event log.

Wired in by :func:`api.app.create_app` when ``engine/stalls.py`` and ``engine/reports.py``
exist. The stall list names cases (a caseworker sees their team's only). The stall
report and the comparison carry no personal data (small cells suppressed by the engine,
with its default k) and are what a project group may read; their format follows
``Accept`` (``application/json`` by default, ``text/csv`` for German spreadsheets). The
findings list gives working and project groups what caseworkers observed (code, text,
where, the day), without case ids for project groups. The XES log names every case by
its number (actors pseudonymised, no case data), so only roles that see every team's
cases may export it.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from api import security
from api.deps import CaseWorker, EngineDep, Reporter, require, team_filter
from api.errors import ApiProblem
from api.routes.common import problems
from api.schemas import FindingEntryPublic, FindingsPublic
from engine.accounts import User
from engine.compare import compare_periods, compare_versions
from engine.definition import ProcessDefinition
from engine.report_formats import TABLES, render_comparison_csv, render_csv, render_json
from engine.reports import stall_report
from engine.stalls import find_stalls
from engine.store import cases_t
from engine.xes import iter_xes

router = APIRouter(tags=["reports"])

_CSV = "text/csv"
_JSON = "application/json"
_XML = "application/xml"
_BERLIN = ZoneInfo("Europe/Berlin")
# Period bounds the calendar can turn into instants (a day's end is the next day's start).
_FIRST_DAY, _LAST_DAY = date(1900, 1, 1), date(9998, 12, 31)


def _report_content(description: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": description,
            "content": {_JSON: {"schema": {"type": "object"}}, _CSV: {"schema": {"type": "string"}}},
        }
    }


_XES_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The event log as an XES document (IEEE 1849), streamed",
        "content": {_XML: {"schema": {"type": "string"}}},
    }
}

#: The XES log names the cases of every team, so only roles that see every team's cases may read it.
AllCases = Annotated[User, Depends(require(security.ALL_TEAMS))]


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


def _day_in_range(value: date | None, name: str) -> None:
    if value is not None and not _FIRST_DAY <= value <= _LAST_DAY:
        raise ApiProblem(
            "request-invalid",
            f"{name}: nur Tage zwischen {_FIRST_DAY.isoformat()} und {_LAST_DAY.isoformat()}",
            parameters=[name],
        )


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


@router.get(
    "/reports/stalls", responses={**problems(404, 406), **_report_content("The stall report")}, response_model=None
)
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
    _day_in_range(period_from, "period_from")
    _day_in_range(period_to, "period_to")
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


@router.get(
    "/reports/compare",
    responses={**problems(404, 406), **_report_content("The before/after comparison")},
    response_model=None,
)
def read_comparison(
    _: Reporter,
    engine: EngineDep,
    request: Request,
    process_id: Annotated[str, Query(min_length=1, max_length=64)],
    version_a: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="Version A (with version_b)")] = None,
    version_b: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="Version B (with version_a)")] = None,
    period_a_from: Annotated[date | None, Query(description="Period A: visits entered from this day")] = None,
    period_a_to: Annotated[date | None, Query(description="… to this day, included (Berlin days)")] = None,
    period_b_from: Annotated[date | None, Query(description="Period B: visits entered from this day")] = None,
    period_b_to: Annotated[date | None, Query(description="… to this day, included (Berlin days)")] = None,
    decimal_comma: bool = False,
) -> Response:
    """Before/after per step: version A against version B, or period A against period B, with a bootstrap interval.

    Exactly one pair: ``version_a`` and ``version_b``, or all four period bounds. No
    personal data; sides with fewer visits than the stall report's k are suppressed.
    """
    media = _negotiate(request)
    versions = (version_a, version_b)
    periods = (period_a_from, period_a_to, period_b_from, period_b_to)
    by_versions = any(v is not None for v in versions)
    by_periods = any(p is not None for p in periods)
    if by_versions == by_periods:
        raise ApiProblem(
            "request-invalid",
            "Genau eines angeben: version_a und version_b, oder period_a_from, period_a_to, period_b_from "
            "und period_b_to",
            parameters=["version_a", "version_b", "period_a_from", "period_a_to", "period_b_from", "period_b_to"],
        )
    if by_versions:
        missing = [n for n, v in zip(("version_a", "version_b"), versions, strict=True) if v is None]
        if missing:
            raise ApiProblem("request-invalid", f"Es fehlt: {', '.join(missing)}", parameters=missing)
        assert version_a is not None and version_b is not None
        comparison = compare_versions(engine, process_id, version_a, version_b)
    else:
        names = ("period_a_from", "period_a_to", "period_b_from", "period_b_to")
        missing = [n for n, p in zip(names, periods, strict=True) if p is None]
        if missing:
            raise ApiProblem("request-invalid", f"Es fehlt: {', '.join(missing)}", parameters=missing)
        for name, value in zip(names, periods, strict=True):
            _day_in_range(value, name)
        a_from, a_to, b_from, b_to = periods
        assert a_from is not None and a_to is not None and b_from is not None and b_to is not None
        for side, start, end in (("a", a_from, a_to), ("b", b_from, b_to)):
            if start > end:
                raise ApiProblem(
                    "request-invalid",
                    f"Zeitraum {side.upper()} endet vor seinem Beginn",
                    parameters=[f"period_{side}_from", f"period_{side}_to"],
                )
        comparison = compare_periods(engine, process_id, (a_from, a_to), (b_from, b_to))
    if media == _CSV:
        body = render_comparison_csv(comparison, decimal_comma=decimal_comma)
        return Response(body, media_type="text/csv; charset=utf-8")
    return Response(render_json(comparison), media_type=_JSON)


@router.get("/findings", responses=problems(400))
def read_findings(
    user: Reporter,
    engine: EngineDep,
    process_id: Annotated[str | None, Query(max_length=64)] = None,
    step: Annotated[str | None, Query(max_length=64)] = None,
    code: Annotated[str | None, Query(max_length=16, description="A stall-cause code, e.g. W-DOC")] = None,
    cursor: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> FindingsPublic:
    """Structural findings, newest first: code, text, process, step, agency and day; case numbers for coordinators only.

    The text is the caseworker's description of a pattern; the engine refused texts that
    quote the case's data when it was recorded. Who recorded it is never listed.
    """
    before = None
    if cursor is not None:
        if not cursor.isdigit() or not 1 <= int(cursor) <= 2**63 - 1:
            raise ApiProblem("bad-request", "Ungültiger cursor; den Wert aus next_cursor verwenden")
        before = int(cursor)
    found = engine.findings(process_id=process_id, step=step, code=code, before_id=before, limit=limit + 1)
    more = len(found) > limit
    found = found[:limit]
    with_cases = user.role in security.ALL_TEAMS
    definitions: dict[tuple[str, int], ProcessDefinition] = {}
    data = []
    for f in found:
        key = (f.process_id, f.process_version)
        if key not in definitions:
            definitions[key] = engine.process(*key)
        spec = definitions[key].steps.get(f.step)
        data.append(
            FindingEntryPublic(
                id=f.id,
                code=f.code,
                code_label=engine.taxonomy.label(f.code) if f.code in engine.taxonomy else f.code,
                text=f.text,
                process_id=f.process_id,
                process_version=f.process_version,
                step=f.step,
                step_title=spec.title if spec is not None else f.step,
                agency=f.agency,
                created_on=f.created_at.astimezone(_BERLIN).date(),
                case_id=f.case_id if with_cases else None,
            )
        )
    return FindingsPublic(data=data, count=len(data), next_cursor=str(found[-1].id) if more and found else None)


@router.get("/reports/xes", responses={**problems(404), **_XES_CONTENT}, response_class=StreamingResponse)
def read_xes(
    _: AllCases,
    engine: EngineDep,
    process_id: Annotated[str | None, Query(max_length=64, description="Only cases of this process")] = None,
) -> StreamingResponse:
    """The event log as XES (IEEE 1849) for ProM, PM4Py, Disco or Celonis, streamed a batch of cases at a time.

    One trace per case (its number), one event per step entered or action fired; actors
    are pseudonyms (``akteur-1`` …), case data is never exported. An unknown process is a
    404 before anything is sent; a failure while streaming ends the document early
    (without ``</log>``), so a client must treat a truncated document as a failed export.
    """
    chunks = iter_xes(engine, process_id=process_id)  # raises DefinitionNotFound before the response starts
    name = f"{process_id or 'kimflow'}.xes"
    return StreamingResponse(chunks, media_type=_XML, headers={"Content-Disposition": f'attachment; filename="{name}"'})
