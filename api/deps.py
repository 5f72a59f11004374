"""Dependencies of the routes: the engine, the current user by role, case access, preconditions.

``Annotated`` aliases keep route signatures short (``EngineDep``, ``CaseWorker``,
``CaseAccess``, ``IfMatch``, ``ChangeDep``). :class:`Change` runs one case change
with its access-log entry and its idempotency record in the change's own transaction
(see :mod:`engine.scope`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import sqlalchemy as sa
from fastapi import Depends, Header, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api import errors, oidc, security
from api.errors import ApiProblem, engine_error_response
from api.settings import Settings
from engine import CaseNotFound, EngineError, audit
from engine.accounts import Accounts, InvalidCredentials, User
from engine.scope import ScopedEngine, case_team, request_scope
from engine.store import idempotency_t

T = TypeVar("T")


# Dependencies that do no I/O are ``async``: FastAPI runs a plain ``def`` dependency in its
# thread pool, and those hand-overs were a third of a case read's CPU time (bench_api profile).


async def get_engine(request: Request) -> ScopedEngine:
    return request.app.state.engine  # type: ignore[no-any-return]


async def get_accounts(request: Request) -> Accounts:
    return request.app.state.accounts  # type: ignore[no-any-return]


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


EngineDep = Annotated[ScopedEngine, Depends(get_engine)]
AccountsDep = Annotated[Accounts, Depends(get_accounts)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_oidc(request: Request) -> oidc.OidcClient | None:
    """The single sign-on client of the app, or None if ``KIMFLOW_OIDC_ISSUER`` is unset."""
    return oidc.client_for(request.app)


OidcDep = Annotated[oidc.OidcClient | None, Depends(get_oidc)]


def _sso_user(client: oidc.OidcClient, accounts: Accounts, token: str) -> User:
    """The user of a bearer JWT from the identity provider (401 invalid, 403 no kimflow role, 503 unreachable)."""
    try:
        return oidc.with_local_account(client.authenticate_bearer(token), accounts)
    except oidc.OidcForbidden as exc:
        raise ApiProblem(
            "forbidden",
            "Die Anmeldung über das Single Sign-on gibt keine kimflow-Rolle",
            detail_en=f"single sign-on grants no kimflow role: {exc}",
            reason=exc.reason,
        ) from None
    except oidc.OidcUnavailable as exc:
        errors.logger.warning("single sign-on: %s", exc)
        raise ApiProblem(
            "unhealthy",
            "Der Anmeldedienst (Single Sign-on) ist nicht erreichbar",
            detail_en="the single sign-on provider is unreachable",
            reason=exc.reason,
        ) from None
    except oidc.OidcError as exc:
        raise ApiProblem(
            "unauthorized",
            f"SSO-Token ungültig ({_SSO_REASONS.get(exc.reason, exc.reason)})",
            detail_en=f"invalid single sign-on token: {exc}",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            reason=exc.reason,
        ) from None


_SSO_REASONS = {
    "expired": "abgelaufen",
    "audience": "nicht für kimflow ausgestellt",
    "issuer": "von einem fremden Aussteller",
    "signature": "Signatur ungültig",
    "claims": "Angaben unvollständig",
    "no-user": "nennt keinen Benutzer",
    "disabled": "Konto in kimflow gesperrt",
}


def current_user(
    accounts: AccountsDep,
    sso: OidcDep,
    token: Annotated[str | None, Depends(security.bearer_scheme)] = None,
) -> User:
    """The user of the bearer token (401 if missing, unknown, expired or disabled).

    With single sign-on on (:mod:`api.oidc`), a token shaped like a JWT is checked as one
    from the identity provider; kimflow's own tokens never contain a dot.
    """
    if not token:
        raise ApiProblem(
            "unauthorized",
            "Anmeldung erforderlich: Authorization: Bearer <Token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if sso is not None and oidc.looks_like_jwt(token):
        return _sso_user(sso, accounts, token)
    try:
        return accounts.resolve_token(token)
    except InvalidCredentials:
        raise ApiProblem(
            "unauthorized", "Token unbekannt oder abgelaufen", headers={"WWW-Authenticate": "Bearer"}
        ) from None


CurrentUser = Annotated[User, Depends(current_user)]


def require(roles: frozenset[str]) -> Callable[[User], User]:
    """A dependency admitting only users with one of ``roles`` (403 otherwise)."""

    async def dependency(user: CurrentUser) -> User:
        if user.role not in roles:
            raise ApiProblem(
                "forbidden",
                f"Die Rolle '{user.role}' darf das nicht",
                role=user.role,
                allowed_roles=sorted(roles),
            )
        return user

    return dependency


CaseWorker = Annotated[User, Depends(require(security.CASE_ROLES))]
ProcessReader = Annotated[User, Depends(require(security.PROCESS_READERS))]
ProcessEditor = Annotated[User, Depends(require(security.PROCESS_EDITORS))]
Reporter = Annotated[User, Depends(require(security.REPORT_ROLES))]
Operator = Annotated[User, Depends(require(security.OPERATORS))]
Admin = Annotated[User, Depends(require(security.ADMINS))]


def team_filter(user: User) -> tuple[bool, str | None]:
    """Whether the user sees only one team's cases, and which (a caseworker without a team: cases without one)."""
    return (False, None) if user.role in security.ALL_TEAMS else (True, user.team)


@dataclass(frozen=True, slots=True)
class CaseRef:
    """A case the current user may see, with that user."""

    case_id: int
    user: User


def case_access(case_id: Annotated[int, Path(ge=1, le=2**31 - 1)], user: CaseWorker, engine: EngineDep) -> CaseRef:
    """Load-or-404: the case exists and the user may see it (another team's case is 'not found')."""
    exists, team = case_team(engine.store, case_id)
    restricted, own_team = team_filter(user)
    if not exists or (restricted and team != own_team):
        raise CaseNotFound(case_id)
    return CaseRef(case_id, user)


CaseAccess = Annotated[CaseRef, Depends(case_access)]


async def if_match(
    value: Annotated[
        str | None,
        Header(
            alias="If-Match",
            description='The case version from its ETag, e.g. "3"; required for changes',
        ),
    ] = None,
) -> int | None:
    """The expected case version from ``If-Match`` (428 if missing; ``*`` means any version)."""
    if value is None or not value.strip():
        raise ApiProblem(
            "precondition-required",
            'Änderungen brauchen If-Match mit der Version aus dem ETag des Falls, z. B. If-Match: "3"',
        )
    tag = value.strip()
    if tag == "*":
        return None
    tag = tag.removeprefix("W/").strip('"')
    if not tag.isdigit():
        raise ApiProblem("precondition-failed", f"If-Match '{value}' ist keine Fallversion")
    return int(tag)


IfMatch = Annotated[int | None, Depends(if_match)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="Repeating a request with the same key returns the first response and changes nothing",
    ),
]


def etag(version: int) -> str:
    return f'"{version}"'


class Change:
    """Runs one change of a case: the engine call, its access-log entry and the idempotent response, atomically.

    The response body is built inside the engine's transaction (so it is exactly what was
    committed) and, with an ``Idempotency-Key``, stored in that same transaction: either
    the change and its stored response commit together, or neither does. A retry with the
    same key (same user and route) returns the stored response; a concurrent duplicate loses
    on the unique key (or on the case version) and then also returns the stored response.
    """

    def __init__(self, request: Request, user: User, engine: ScopedEngine, key: str | None) -> None:
        self.request = request
        self.user = user
        self.engine = engine
        self.key = key
        self.route = f"{request.method} {request.url.path}"

    def _stored(self, request_hash: str) -> JSONResponse | None:
        t = idempotency_t.c
        with self.engine.store.read() as conn:
            row = conn.execute(
                sa.select(t.status, t.body, t.request_hash).where(
                    t.actor == self.user.name, t.route == self.route, t.key == self.key
                )
            ).first()
        if row is None:
            return None
        if row.request_hash != request_hash:
            raise ApiProblem(
                "idempotency-key-reused",
                "Dieser Idempotency-Key wurde schon für eine andere Anfrage verwendet",
            )
        return self._respond(row.status, row.body, replayed=True)

    @staticmethod
    def _respond(status: int, body: dict[str, Any], *, replayed: bool = False) -> JSONResponse:
        headers = {}
        if isinstance(body.get("version"), int):
            headers["ETag"] = etag(body["version"])
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        return JSONResponse(body, status_code=status, headers=headers)

    def run(
        self,
        *,
        payload: BaseModel | None,
        case_id: int | None,
        fields: Iterable[str],
        operation: Callable[[], object],
        respond: Callable[[sa.Connection, int], dict[str, Any]],
        status: int = 200,
    ) -> JSONResponse:
        """Run ``operation`` (one engine call) with ``respond(conn, case_id)`` building the body in its transaction.

        Args:
            payload: The request body (part of what makes a retry "the same request").
            case_id: The case changed; None for an operation that opens a case.
            fields: Data fields the change touches (for the access log).
        """
        raw = f"{self.route}\n{payload.model_dump_json() if payload is not None else ''}"
        request_hash = hashlib.sha256(raw.encode("utf-8")).hexdigest()
        if self.key is not None:
            stored = self._stored(request_hash)
            if stored is not None:
                return stored
        result: dict[str, Any] = {}
        with request_scope() as scope:

            def before_commit(conn: sa.Connection) -> None:
                target = case_id if case_id is not None else scope.opened[0]
                body = respond(conn, target)
                now = self.engine.clock.now()
                audit.record(
                    conn,
                    at=now,
                    actor=self.user.name,
                    role=self.user.role,
                    case_id=target,
                    access=audit.CHANGE,
                    fields=fields,
                    route=self.route,
                )
                if self.key is not None:
                    conn.execute(
                        sa.insert(idempotency_t).values(
                            actor=self.user.name,
                            route=self.route,
                            key=self.key,
                            request_hash=request_hash,
                            case_id=target,
                            status=status,
                            body=body,
                            created_at=now,
                        )
                    )
                result["body"] = body

            scope.before_commit.append(before_commit)
            try:
                operation()
            except EngineError as exc:
                # A concurrent duplicate of an idempotent request loses the race (on the unique
                # key, or on the case version): answer it with the winner's response.
                if self.key is not None:
                    stored = self._stored(request_hash)
                    if stored is not None:
                        return stored
                return engine_error_response(self.request, exc)
        return self._respond(status, result["body"])


async def change(request: Request, user: CaseWorker, engine: EngineDep, key: IdempotencyKey = None) -> Change:
    return Change(request, user, engine, key)


ChangeDep = Annotated[Change, Depends(change)]

__all__ = [
    "AccountsDep",
    "Admin",
    "CaseAccess",
    "CaseRef",
    "CaseWorker",
    "Change",
    "ChangeDep",
    "CurrentUser",
    "EngineDep",
    "IdempotencyKey",
    "IfMatch",
    "Operator",
    "ProcessEditor",
    "ProcessReader",
    "Reporter",
    "SettingsDep",
    "etag",
    "require",
    "team_filter",
]
