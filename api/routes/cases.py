"""Cases: open, list, read, and every change (fire, pause, resume, wait, assign, consents, findings, end, anonymise).

Changes need ``If-Match`` with the case's ETag (its version) and run through
:class:`api.deps.Change`, which writes the access-log entry and the idempotent response in
the change's own transaction. Reads of a case's data are written to the access log.
Lists carry no case data (data minimisation): the worklist shows where cases are, a
case's data is read one case at a time, and each such read is logged.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query, Request, Response

from api.deps import CaseAccess, CaseWorker, ChangeDep, EngineDep, IfMatch, Operator, etag, team_filter
from api.errors import ApiProblem
from api.routes.common import problems
from api.schemas import (
    ActionPublic,
    AnonymisedPublic,
    AssignCreate,
    CancelCreate,
    CaseCreate,
    CaseDetailPublic,
    CasePublic,
    CasesPublic,
    CaseSummaryPublic,
    CloseCreate,
    ConsentCreate,
    ConsentPublic,
    ConsentRecordedPublic,
    ConsentsPublic,
    EventPublic,
    EventsPublic,
    FindingCreate,
    FindingPublic,
    FireCreate,
    PauseCreate,
    WaitCreate,
)
from engine import audit
from engine import store as st
from engine.anonymise import anonymise_case
from engine.worklist import SORT_KEYS, Position, list_page

router = APIRouter(prefix="/cases", tags=["cases"])

ActionName = Annotated[str, Path(min_length=1, max_length=64)]
ConsentId = Annotated[int, Path(ge=1, le=2**31 - 1)]
SortKey = Annotated[
    str,
    Query(
        pattern="^-?(" + "|".join(SORT_KEYS) + ")$",
        description="id, opened_at, updated_at or due_at; a leading '-' sorts descending",
    ),
]
CHANGE_RESPONSES = problems(404, 409, 412, 428)


def _case_body(conn: sa.Connection, case_id: int) -> dict[str, Any]:
    return CasePublic.from_case(st.load_case(conn, case_id)).model_dump(mode="json")


def _encode_cursor(position: Position) -> str:
    raw = json.dumps([position.sort, position.value, position.case_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> Position:
    try:
        sort, value, case_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(sort, str) or not isinstance(value, str | int) or not isinstance(case_id, int):
            raise ValueError(cursor)
        return Position(sort, value, case_id)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ApiProblem("bad-request", "Ungültiger cursor; den Wert aus next_cursor verwenden") from None


@router.post("", status_code=201, responses=problems(404), response_model=CasePublic)
def open_case(user: CaseWorker, change: ChangeDep, engine: EngineDep, body: CaseCreate) -> Response:
    """Open a case on the newest (or the given) version of a process; it belongs to the opener's team."""
    return change.run(
        payload=body,
        case_id=None,
        fields=body.data,
        operation=lambda: engine.open_case(
            body.process_id,
            actor=user.name,
            data=body.data,
            version=body.version,
            assignee=body.assignee,
            team=user.team,
        ),
        respond=_case_body,
        status=201,
    )


@router.get("", responses=problems(400))
def read_cases(
    user: CaseWorker,
    engine: EngineDep,
    process_id: Annotated[str | None, Query(max_length=64)] = None,
    step: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(pattern="^(open|completed|closed|cancelled)$")] = None,
    assignee: Annotated[str | None, Query(max_length=128)] = None,
    waiting_on: Annotated[str | None, Query(max_length=20)] = None,
    agency: Annotated[str | None, Query(max_length=20, description="Agency of the current step")] = None,
    overdue: Annotated[
        bool | None, Query(description="true: as due=overdue; false: every case that is not overdue")
    ] = None,
    due: Annotated[
        Literal["overdue", "at_risk"] | None,
        Query(
            description="overdue: open and past the current step's deadline; at_risk: past the step's warning "
            "threshold (warn_after) but not yet due. Judged as GET /stalls judges: a stopped clock moves both later"
        ),
    ] = None,
    sort: SortKey = "id",
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> CasesPublic:
    """A worklist: cases by filters, sorted, a page at a time (no case data; read one case for that)."""
    team_only, team = team_filter(user)
    after = _decode_cursor(cursor) if cursor else None
    if after is not None and after.sort != sort:
        raise ApiProblem("bad-request", "Der cursor gehört zu einer anderen Sortierung")
    page = list_page(
        engine.store,
        now=engine.clock.now(),
        process_id=process_id,
        step=step,
        status=status,
        assignee=assignee,
        waiting_on=waiting_on,
        agency=agency,
        overdue=overdue,
        due=due,
        registry=engine.registry,
        team_only=team_only,
        team=team,
        sort=sort,
        after=after,
        limit=limit,
    )
    return CasesPublic(
        data=[CaseSummaryPublic.from_case(c) for c in page.cases],
        count=len(page.cases),
        next_cursor=_encode_cursor(page.next) if page.next else None,
    )


@router.get("/{case_id}", responses=problems(404))
def read_case(ref: CaseAccess, engine: EngineDep, request: Request, response: Response) -> CaseDetailPublic:
    """One case: data, current step, deadline, actions (with why each unavailable one is), history."""
    case = engine.get_case(ref.case_id)
    definition = engine.process(case.process_id, case.process_version)
    actions = [ActionPublic.from_option(o) for o in engine.available_actions(ref.case_id)] if case.is_open else []
    history = [EventPublic.from_event(e) for e in engine.history(ref.case_id)]
    _log_read(engine, ref, request, case.data)
    response.headers["ETag"] = etag(case.version)
    return CaseDetailPublic(
        **CasePublic.from_case(case).model_dump(),
        step_title=definition.steps[case.step].title,
        actions=actions,
        history=history,
    )


@router.get("/{case_id}/history", responses=problems(404))
def read_case_history(ref: CaseAccess, engine: EngineDep, request: Request) -> EventsPublic:
    """The case's events, oldest first, with the data each changed."""
    events = engine.history(ref.case_id)
    _log_read(engine, ref, request, {name for e in events for name in e.changes})
    return EventsPublic(data=[EventPublic.from_event(e) for e in events], count=len(events))


@router.get("/{case_id}/consents", responses=problems(404))
def read_case_consents(ref: CaseAccess, engine: EngineDep, request: Request) -> ConsentsPublic:
    """Every consent recorded for the case, revoked ones included."""
    consents = engine.consents(ref.case_id)
    _log_read(engine, ref, request, ["consents"])
    return ConsentsPublic(data=[ConsentPublic.from_consent(c) for c in consents], count=len(consents))


def _log_read(engine: EngineDep, ref: Any, request: Request, fields: Any) -> None:
    audit.record_now(
        engine.store,
        at=engine.clock.now(),
        actor=ref.user.name,
        role=ref.user.role,
        case_id=ref.case_id,
        access=audit.READ,
        fields=list(fields),
        route=f"{request.method} {request.url.path}",
    )


@router.post("/{case_id}/actions/{action}", responses=CHANGE_RESPONSES, response_model=CasePublic)
def fire_action(
    ref: CaseAccess, change: ChangeDep, engine: EngineDep, expected: IfMatch, action: ActionName, body: FireCreate
) -> Response:
    """Fire an action of the current step with the data it records."""
    return change.run(
        payload=body,
        case_id=ref.case_id,
        fields=body.data,
        operation=lambda: engine.fire(
            ref.case_id, action, actor=ref.user.name, data=body.data, expected_version=expected
        ),
        respond=_case_body,
    )


@router.post("/{case_id}/pause", responses=CHANGE_RESPONSES, response_model=CasePublic)
def pause_case(ref: CaseAccess, change: ChangeDep, engine: EngineDep, expected: IfMatch, body: PauseCreate) -> Response:
    """Pause the case with a reason code; its deadline clock stops."""
    return change.run(
        payload=body,
        case_id=ref.case_id,
        fields=["pause"],
        operation=lambda: engine.pause(
            ref.case_id, reason=body.reason, note=body.note, actor=ref.user.name, expected_version=expected
        ),
        respond=_case_body,
    )


@router.post("/{case_id}/resume", responses=CHANGE_RESPONSES, response_model=CasePublic)
def resume_case(ref: CaseAccess, change: ChangeDep, engine: EngineDep, expected: IfMatch) -> Response:
    """Resume a paused case; the deadline moves later by the time it stood still."""
    return change.run(
        payload=None,
        case_id=ref.case_id,
        fields=["pause"],
        operation=lambda: engine.resume(ref.case_id, actor=ref.user.name, expected_version=expected),
        respond=_case_body,
    )


@router.post("/{case_id}/wait", responses=CHANGE_RESPONSES, response_model=CasePublic)
def wait_on(ref: CaseAccess, change: ChangeDep, engine: EngineDep, expected: IfMatch, body: WaitCreate) -> Response:
    """Record whom the case waits on now (an agency code or KLIENT) and why (a reason code)."""
    return change.run(
        payload=body,
        case_id=ref.case_id,
        fields=["waiting_on"],
        operation=lambda: engine.wait_on(
            ref.case_id,
            body.party,
            reason=body.reason,
            note=body.note,
            actor=ref.user.name,
            expected_version=expected,
        ),
        respond=_case_body,
    )


@router.post("/{case_id}/assign", responses=CHANGE_RESPONSES, response_model=CasePublic)
def assign_case(
    ref: CaseAccess, change: ChangeDep, engine: EngineDep, expected: IfMatch, body: AssignCreate
) -> Response:
    """Make someone responsible for the case (null: unassigned)."""
    return change.run(
        payload=body,
        case_id=ref.case_id,
        fields=["assignee"],
        operation=lambda: engine.assign(ref.case_id, body.assignee, actor=ref.user.name, expected_version=expected),
        respond=_case_body,
    )


@router.post("/{case_id}/close", responses=CHANGE_RESPONSES, response_model=CasePublic)
def close_case(ref: CaseAccess, change: ChangeDep, engine: EngineDep, expected: IfMatch, body: CloseCreate) -> Response:
    """End the case early with an outcome (e.g. the client moved away)."""
    return change.run(
        payload=body,
        case_id=ref.case_id,
        fields=["status"],
        operation=lambda: engine.close(
            ref.case_id, outcome=body.outcome, reason=body.reason, actor=ref.user.name, expected_version=expected
        ),
        respond=_case_body,
    )


@router.post("/{case_id}/cancel", responses=CHANGE_RESPONSES, response_model=CasePublic)
def cancel_case(
    ref: CaseAccess, change: ChangeDep, engine: EngineDep, expected: IfMatch, body: CancelCreate
) -> Response:
    """Cancel a case opened in error."""
    return change.run(
        payload=body,
        case_id=ref.case_id,
        fields=["status"],
        operation=lambda: engine.cancel(
            ref.case_id, reason=body.reason, actor=ref.user.name, expected_version=expected
        ),
        respond=_case_body,
    )


@router.post("/{case_id}/consents", status_code=201, responses=CHANGE_RESPONSES, response_model=ConsentRecordedPublic)
def record_consent(
    ref: CaseAccess, change: ChangeDep, engine: EngineDep, expected: IfMatch, body: ConsentCreate
) -> Response:
    """Record the client's consent to share data of some categories with an agency.

    Recording a consent is a change of the case (its version goes up), so the response
    carries the new version as ``ETag`` (and as ``case_version``) for the next change.
    """

    def respond(conn: sa.Connection, case_id: int) -> dict[str, Any]:
        newest = st.load_consents(conn, case_id)[-1]
        version = st.load_case(conn, case_id).version  # as committed with the consent
        return ConsentRecordedPublic(
            **ConsentPublic.from_consent(newest).model_dump(), case_version=version
        ).model_dump(mode="json")

    response = change.run(
        payload=body,
        case_id=ref.case_id,
        fields=["consents"],
        operation=lambda: engine.record_consent(
            ref.case_id,
            recipient=body.recipient,
            purpose=body.purpose,
            categories=body.categories,
            valid_until=body.valid_until,
            actor=ref.user.name,
            expected_version=expected,
        ),
        respond=respond,
        status=201,
    )
    if response.status_code == 201:  # first response or its replay; problems carry no ETag
        response.headers["ETag"] = etag(json.loads(bytes(response.body))["case_version"])
    return response


@router.post("/{case_id}/consents/{consent_id}/revoke", responses=CHANGE_RESPONSES, response_model=CasePublic)
def revoke_consent(
    ref: CaseAccess, change: ChangeDep, engine: EngineDep, expected: IfMatch, consent_id: ConsentId
) -> Response:
    """Revoke a consent; handoffs it covered are unavailable from now on."""
    return change.run(
        payload=None,
        case_id=ref.case_id,
        fields=["consents"],
        operation=lambda: engine.revoke_consent(
            ref.case_id, consent_id, actor=ref.user.name, expected_version=expected
        ),
        respond=_case_body,
    )


@router.post("/{case_id}/findings", status_code=201, responses=problems(404, 409), response_model=FindingPublic)
def add_finding(ref: CaseAccess, change: ChangeDep, engine: EngineDep, body: FindingCreate) -> Response:
    """Attach a structural finding (reason code and a text without personal data) to a stalled visit.

    A finding does not change the case (its version stays), so no If-Match is needed.
    """

    def respond(conn: sa.Connection, case_id: int) -> dict[str, Any]:
        # The finding just inserted in this transaction: the newest of this case by this user.
        f = st.findings_t.c
        newest = conn.execute(
            sa.select(sa.func.max(f.id)).where(f.case_id == case_id, f.created_by == ref.user.name)
        ).scalar()
        return FindingPublic(id=int(newest), case_id=case_id).model_dump(mode="json")

    return change.run(
        payload=body,
        case_id=ref.case_id,
        fields=[],
        operation=lambda: engine.add_finding(
            ref.case_id, code=body.code, text=body.text, visit_id=body.visit_id, actor=ref.user.name
        ),
        respond=respond,
        status=201,
    )


@router.post("/{case_id}/anonymise", responses=problems(404, 409, 412, 428))
def anonymise(ref: CaseAccess, _: Operator, engine: EngineDep, expected: IfMatch, request: Request) -> AnonymisedPublic:
    """Remove the personal data of an ended case; step visits and events without data stay for the reports."""
    removed = anonymise_case(
        engine,
        ref.case_id,
        actor=ref.user.name,
        role=ref.user.role,
        route=f"{request.method} {request.url.path}",
        expected_version=expected,
    )
    return AnonymisedPublic(case_id=ref.case_id, removed_fields=removed)
