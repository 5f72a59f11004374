"""Request and response schemas of the HTTP API (``*Create`` / ``*Public`` / ``*sPublic``).

These are pydantic models only; they are never database rows (``engine/store.py``) nor
engine objects (``engine/case.py``). The ``from_*`` helpers convert engine objects.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine import ActionOption, Case, CaseEvent, Consent, Deployment, Diagnostic, Reason
from engine.accounts import ROLES, User
from engine.audit import AccessEntry

Role = Literal["caseworker", "coordinator", "projectgroup", "admin"]
assert set(ROLES) == {"caseworker", "coordinator", "projectgroup", "admin"}

# Case data: field name -> value as the process declares it (text, number, boolean, ISO date).
CaseData = dict[str, str | int | float | bool | None]


class Problem(BaseModel):
    """An RFC 9457 problem document; extension members vary by ``type``."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


# --------------------------------------------------------------------------- auth and users


class TokenCreate(BaseModel):
    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)


class TokenPublic(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: datetime
    role: Role


class UserCreate(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=8, max_length=1024)
    role: Role
    team: str | None = Field(default=None, max_length=64)


class UserPublic(BaseModel):
    name: str
    role: str
    team: str | None
    disabled: bool
    created_at: datetime

    @classmethod
    def from_user(cls, user: User) -> UserPublic:
        return cls(name=user.name, role=user.role, team=user.team, disabled=user.disabled, created_at=user.created_at)


class UsersPublic(BaseModel):
    data: list[UserPublic]
    count: int


# --------------------------------------------------------------------------- processes


class DiagnosticPublic(BaseModel):
    file: str
    line: int
    column: int
    severity: str
    code: str
    message: str
    path: str
    hint: str | None = None

    @classmethod
    def from_diagnostic(cls, d: Diagnostic) -> DiagnosticPublic:
        return cls(**d.as_dict())


class ValidationPublic(BaseModel):
    valid: bool
    definition: str | None = Field(default=None, description="id@version of the valid definition")
    diagnostics: list[DiagnosticPublic]


class ProcessVersionPublic(BaseModel):
    process_id: str
    version: int
    ref: str
    title: str
    checksum: str
    deployed_at: datetime
    deployed_by: str

    @classmethod
    def from_deployment(cls, d: Deployment) -> ProcessVersionPublic:
        return cls(
            process_id=d.process_id,
            version=d.version,
            ref=d.ref,
            title=d.title,
            checksum=d.checksum,
            deployed_at=d.deployed_at,
            deployed_by=d.deployed_by,
        )


class ProcessVersionsPublic(BaseModel):
    data: list[ProcessVersionPublic]
    count: int


class ProcessPublic(BaseModel):
    id: str
    title: str
    latest: int
    versions: list[int]


class ProcessesPublic(BaseModel):
    data: list[ProcessPublic]
    count: int


class DeploymentPublic(ProcessVersionPublic):
    created: bool


# --------------------------------------------------------------------------- cases


class CaseCreate(BaseModel):
    process_id: str = Field(min_length=1, max_length=64)
    version: int | None = Field(default=None, ge=1, le=2**31 - 1)
    data: CaseData = Field(default_factory=dict)
    assignee: str | None = Field(default=None, max_length=128)


class CaseSummaryPublic(BaseModel):
    """A case in a worklist: where it is, without its data."""

    id: int
    process_id: str
    process_version: int
    step: str
    status: str
    version: int
    assignee: str | None
    waiting_on: str | None
    paused: bool
    pause_reason: str | None
    outcome: str | None
    opened_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    due_at: datetime | None
    parent_id: int | None
    team: str | None = Field(description="The team the case belongs to (its opener's; a child case its parent's)")

    @classmethod
    def from_case(cls, case: Case) -> CaseSummaryPublic:
        return cls(
            id=case.id,
            process_id=case.process_id,
            process_version=case.process_version,
            step=case.step,
            status=case.status,
            version=case.version,
            assignee=case.assignee,
            waiting_on=case.waiting_on,
            paused=case.paused,
            pause_reason=case.pause_reason,
            outcome=case.outcome,
            opened_at=case.opened_at,
            updated_at=case.updated_at,
            closed_at=case.closed_at,
            due_at=case.due_at,
            parent_id=case.parent_id,
            team=case.team,
        )


class CasePublic(CaseSummaryPublic):
    """A case with its data."""

    data: CaseData

    @classmethod
    def from_case(cls, case: Case) -> CasePublic:
        return cls(**CaseSummaryPublic.from_case(case).model_dump(), data=dict(case.data))


class ReasonPublic(BaseModel):
    code: str
    message: str
    message_en: str
    fields: list[str]
    agency: str | None

    @classmethod
    def from_reason(cls, r: Reason) -> ReasonPublic:
        return cls(**r.as_dict())


class ActionPublic(BaseModel):
    name: str
    title: str
    title_en: str | None
    next_step: str | None
    available: bool
    reasons: list[ReasonPublic]
    asks_for: list[str]

    @classmethod
    def from_option(cls, o: ActionOption) -> ActionPublic:
        return cls(
            name=o.name,
            title=o.title,
            title_en=o.title_en,
            next_step=o.next_step,
            available=o.available,
            reasons=[ReasonPublic.from_reason(r) for r in o.reasons],
            asks_for=list(o.asks_for),
        )


class EventPublic(BaseModel):
    seq: int
    at: datetime
    actor: str
    kind: str
    action: str | None
    from_step: str | None
    to_step: str | None
    changes: dict[str, Any]
    detail: dict[str, Any]

    @classmethod
    def from_event(cls, e: CaseEvent) -> EventPublic:
        return cls(
            seq=e.seq,
            at=e.at,
            actor=e.actor,
            kind=e.kind,
            action=e.action,
            from_step=e.from_step,
            to_step=e.to_step,
            changes=dict(e.changes),
            detail=dict(e.detail),
        )


class EventsPublic(BaseModel):
    data: list[EventPublic]
    count: int


class CaseDetailPublic(CasePublic):
    step_title: str
    actions: list[ActionPublic]
    history: list[EventPublic]


class CasesPublic(BaseModel):
    data: list[CaseSummaryPublic]
    count: int
    next_cursor: str | None = Field(default=None, description="Pass as ?cursor= for the next page; null on the last")


class FireCreate(BaseModel):
    data: CaseData = Field(default_factory=dict)


class PauseCreate(BaseModel):
    reason: str = Field(min_length=1, max_length=64, description="A stall-cause code, e.g. W-CLIENT")
    note: str | None = Field(default=None, max_length=1000)


class WaitCreate(BaseModel):
    party: str = Field(min_length=1, max_length=20, description="An agency code of the process, or KLIENT")
    reason: str = Field(min_length=1, max_length=64)
    note: str | None = Field(default=None, max_length=1000)


class AssignCreate(BaseModel):
    assignee: str | None = Field(default=None, max_length=128)


class CloseCreate(BaseModel):
    outcome: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=1000)


class CancelCreate(BaseModel):
    reason: str = Field(min_length=1, max_length=1000)


class ConsentCreate(BaseModel):
    recipient: str = Field(min_length=1, max_length=20)
    purpose: str = Field(min_length=1, max_length=2000)
    categories: list[str] = Field(min_length=1, max_length=20)
    valid_until: str | None = Field(default=None, description="YYYY-MM-DD")


class ConsentPublic(BaseModel):
    id: int
    case_id: int
    recipient: str
    purpose: str
    categories: list[str]
    recorded_at: datetime
    recorded_by: str
    valid_until: str | None
    revoked_at: datetime | None
    revoked_by: str | None

    @classmethod
    def from_consent(cls, c: Consent) -> ConsentPublic:
        return cls(
            id=c.id,
            case_id=c.case_id,
            recipient=c.recipient,
            purpose=c.purpose,
            categories=list(c.categories),
            recorded_at=c.recorded_at,
            recorded_by=c.recorded_by,
            valid_until=c.valid_until,
            revoked_at=c.revoked_at,
            revoked_by=c.revoked_by,
        )


class ConsentsPublic(BaseModel):
    data: list[ConsentPublic]
    count: int


class FindingCreate(BaseModel):
    code: str = Field(min_length=1, max_length=16)
    text: str = Field(min_length=1, max_length=2000)
    visit_id: int | None = Field(default=None, ge=1, le=2**31 - 1)


class FindingPublic(BaseModel):
    id: int
    case_id: int


class FindingEntryPublic(BaseModel):
    """A structural finding as working and project groups read it: where, which code, what was observed."""

    id: int
    code: str
    code_label: str = Field(description="The stall-cause code's German label")
    text: str = Field(description="The caseworker's description of the pattern (no personal data)")
    process_id: str
    process_version: int
    step: str
    step_title: str
    agency: str | None
    created_on: date = Field(description="The day the finding was recorded (Berlin time)")
    case_id: int | None = Field(description="The case it was found on; coordinators only, null for project groups")


class FindingsPublic(BaseModel):
    data: list[FindingEntryPublic]
    count: int
    next_cursor: str | None = Field(default=None, description="Pass as ?cursor= for the next page; null on the last")


class ConsentRecordedPublic(ConsentPublic):
    """A recorded consent, with the case version it produced (also the response's ``ETag``)."""

    case_version: int


class AnonymisedPublic(BaseModel):
    case_id: int
    removed_fields: list[str]


# --------------------------------------------------------------------------- operations


class TickPublic(BaseModel):
    fired: int
    skipped: int


class HealthPublic(BaseModel):
    status: Literal["ok"]
    database: Literal["reachable"]
    schema_revision: str | None


class AccessPublic(BaseModel):
    id: int
    at: datetime
    actor: str
    role: str | None
    case_id: int
    access: str
    fields: list[str]
    route: str

    @classmethod
    def from_entry(cls, e: AccessEntry) -> AccessPublic:
        return cls(
            id=e.id,
            at=e.at,
            actor=e.actor,
            role=e.role,
            case_id=e.case_id,
            access=e.access,
            fields=list(e.fields),
            route=e.route,
        )


class AccessesPublic(BaseModel):
    data: list[AccessPublic]
    count: int
