"""Every error as an RFC 9457 problem document (``application/problem+json``).

One table maps each :class:`engine.EngineError` subclass to an HTTP status and a stable
problem ``type``; one table lists the conditions the API itself detects (authentication,
permissions, preconditions, request validation, unknown routes). Titles are German or
English by ``Accept-Language`` (German by default), ``detail`` likewise. The structured
fields of the engine's exceptions become extension members a client can act on (allowed
actions, reasons with missing fields and agency, expected and actual version, diagnostics
with line and column), never parsed from messages. Unexpected exceptions become a 500
whose document carries a correlation id that is also in the server log with the traceback;
no traceback ever reaches a client. Routes raise :class:`ApiProblem`, never
``HTTPException``.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine import (
    ActionNotAllowed,
    ActionUnavailable,
    CaseClosed,
    CaseError,
    CaseNotFound,
    ConcurrentUpdate,
    ConsentNotFound,
    DefinitionConflict,
    DefinitionError,
    DefinitionNotFound,
    EngineError,
    EventLogError,
    FindingNotAllowed,
    InvalidCaseData,
    StoreError,
)
from engine.accounts import AccountError, InvalidAccount, InvalidCredentials, UserExists, UserNotFound

PROBLEM_BASE = "https://kimflow.example/problems/"
PROBLEM_JSON = "application/problem+json"
logger = logging.getLogger("kimflow.api")


@dataclass(frozen=True, slots=True)
class ProblemType:
    """A kind of problem: its stable slug (the end of the ``type`` URI), status and titles."""

    slug: str
    status: int
    title_de: str
    title_en: str

    @property
    def uri(self) -> str:
        return PROBLEM_BASE + self.slug


# The one mapping from engine errors to HTTP. Looked up along the exception's MRO, so a
# subclass added later falls back to its parent's entry; the meta-test insists on an own entry.
ENGINE_PROBLEMS: dict[type[EngineError], ProblemType] = {
    EngineError: ProblemType("engine-error", 400, "Anfrage abgelehnt", "Request refused"),
    DefinitionError: ProblemType("definition-invalid", 422, "Prozessdefinition ungültig", "Invalid process definition"),
    DefinitionConflict: ProblemType(
        "definition-conflict", 409, "Version bereits anders bereitgestellt", "Version already deployed differently"
    ),
    DefinitionNotFound: ProblemType("process-not-found", 404, "Prozess nicht bereitgestellt", "Process not deployed"),
    CaseError: ProblemType("case-error", 409, "Fall kann so nicht geändert werden", "Case cannot change like this"),
    CaseNotFound: ProblemType("case-not-found", 404, "Fall nicht gefunden", "Case not found"),
    CaseClosed: ProblemType("case-closed", 409, "Fall ist beendet", "Case has ended"),
    ActionNotAllowed: ProblemType("action-not-allowed", 409, "Aktion nicht möglich", "Action not allowed"),
    ActionUnavailable: ProblemType(
        "action-unavailable", 409, "Aktion derzeit nicht verfügbar", "Action currently unavailable"
    ),
    InvalidCaseData: ProblemType("invalid-case-data", 422, "Ungültige Falldaten", "Invalid case data"),
    ConsentNotFound: ProblemType("consent-not-found", 404, "Einwilligung nicht gefunden", "Consent not found"),
    FindingNotAllowed: ProblemType(
        "finding-not-allowed", 409, "Hinweis nur zu Stockungen", "Findings describe stalls only"
    ),
    ConcurrentUpdate: ProblemType(
        "concurrent-update", 409, "Fall wurde inzwischen geändert", "Case was changed meanwhile"
    ),
    EventLogError: ProblemType("event-log-invalid", 422, "Ereignisprotokoll ungültig", "Invalid event log"),
    StoreError: ProblemType("store-unavailable", 503, "Datenbank nicht verfügbar", "Database unavailable"),
    AccountError: ProblemType("account-error", 400, "Benutzerkonto-Fehler", "Account error"),
    InvalidAccount: ProblemType("invalid-account", 422, "Ungültiges Benutzerkonto", "Invalid account"),
    UserExists: ProblemType("user-exists", 409, "Benutzer existiert bereits", "User exists already"),
    UserNotFound: ProblemType("user-not-found", 404, "Benutzer nicht gefunden", "User not found"),
    InvalidCredentials: ProblemType(
        "unauthorized", 401, "Anmeldung erforderlich oder ungültig", "Authentication required or invalid"
    ),
}

# Conditions the API itself detects.
API_PROBLEMS: dict[str, ProblemType] = {
    p.slug: p
    for p in (
        ProblemType("bad-request", 400, "Ungültige Anfrage", "Bad request"),
        ProblemType("unauthorized", 401, "Anmeldung erforderlich oder ungültig", "Authentication required or invalid"),
        ProblemType("forbidden", 403, "Keine Berechtigung", "Forbidden"),
        ProblemType("not-found", 404, "Nicht gefunden", "Not found"),
        ProblemType("method-not-allowed", 405, "Methode nicht erlaubt", "Method not allowed"),
        ProblemType("not-acceptable", 406, "Format nicht lieferbar", "Not acceptable"),
        ProblemType("precondition-failed", 412, "Fall wurde inzwischen geändert", "Precondition failed"),
        ProblemType("unsupported-media-type", 415, "Format nicht unterstützt", "Unsupported media type"),
        ProblemType("request-invalid", 422, "Ungültige Anfrage", "Invalid request"),
        ProblemType(
            "idempotency-key-reused",
            422,
            "Idempotency-Key für eine andere Anfrage verwendet",
            "Idempotency key reused for a different request",
        ),
        ProblemType("precondition-required", 428, "If-Match fehlt", "If-Match required"),
        ProblemType("internal-error", 500, "Interner Fehler", "Internal error"),
        ProblemType("unhealthy", 503, "Dienst nicht bereit", "Service unavailable"),
    )
}
_BY_STATUS = {p.status: p for p in API_PROBLEMS.values() if p.slug not in ("idempotency-key-reused",)}


class ApiProblem(Exception):
    """A condition detected by the API layer, rendered as the problem ``slug`` of :data:`API_PROBLEMS`."""

    def __init__(self, slug: str, detail: str, *, headers: dict[str, str] | None = None, **extensions: Any) -> None:
        if slug not in API_PROBLEMS:
            raise ValueError(f"unknown problem type '{slug}'")
        self.problem = API_PROBLEMS[slug]
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions
        super().__init__(detail)


def problem_for(exc: EngineError) -> ProblemType:
    """The table entry of the exception's class, or of its nearest mapped ancestor."""
    for cls in type(exc).__mro__:
        if cls in ENGINE_PROBLEMS:
            return ENGINE_PROBLEMS[cls]  # type: ignore[index]
    raise AssertionError("EngineError itself is mapped")  # pragma: no cover


def wants_english(request: Request) -> bool:
    """Whether ``Accept-Language`` prefers English over German (German when absent or undecided)."""
    best: tuple[float, str] = (0.0, "de")
    for index, part in enumerate(request.headers.get("accept-language", "").split(",")):
        pieces = part.strip().split(";")
        tag = pieces[0].strip().lower()
        q = 1.0
        for param in pieces[1:]:
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        language = tag.split("-")[0]
        if language in ("de", "en") and (q > best[0] or (q == best[0] and index == 0)):
            best = (q, language)
    return best[1] == "en"


def engine_extensions(exc: EngineError) -> dict[str, Any]:
    """The structured fields of an engine error, as problem extension members."""
    ext: dict[str, Any] = {}
    if isinstance(exc, DefinitionError):
        ext["diagnostics"] = [d.as_dict() for d in exc.diagnostics]
    if isinstance(exc, DefinitionNotFound):
        ext.update(process_id=exc.process_id, version=exc.version)
    if isinstance(exc, CaseError) and exc.case_id:
        ext["case_id"] = exc.case_id
    if isinstance(exc, CaseClosed):
        ext["case_status"] = exc.status
    if isinstance(exc, ActionNotAllowed):
        ext.update(action=exc.action, step=exc.step, allowed_actions=list(exc.allowed))
    if isinstance(exc, ActionUnavailable):
        ext.update(action=exc.action, reasons=[r.as_dict() for r in exc.reasons])
    if isinstance(exc, InvalidCaseData | InvalidAccount):
        ext["problems"] = dict(exc.problems)
    if isinstance(exc, ConsentNotFound):
        ext["consent_id"] = exc.consent_id
    if isinstance(exc, FindingNotAllowed):
        ext["visit_id"] = exc.visit_id
    if isinstance(exc, ConcurrentUpdate):
        ext.update(expected_version=exc.expected_version, actual_version=exc.actual_version)
    if isinstance(exc, UserExists | UserNotFound):
        ext["user"] = exc.name
    return ext


def _german_detail(exc: EngineError) -> str:
    from api.cli import describe_error  # the CLI's German wording, kept in one place

    return describe_error(exc)[0]


def problem_response(
    request: Request,
    problem: ProblemType,
    *,
    detail: str | None = None,
    detail_en: str | None = None,
    status: int | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """Render a problem document in the request's language."""
    english = wants_english(request)
    body: dict[str, Any] = {
        "type": problem.uri,
        "title": problem.title_en if english else problem.title_de,
        "status": status or problem.status,
        "detail": (detail_en or detail) if english else (detail or detail_en),
        "instance": request.url.path,
    }
    body.update({k: v for k, v in extensions.items() if k not in body})
    return JSONResponse(
        body,
        status_code=status or problem.status,
        media_type=PROBLEM_JSON,
        headers={"Content-Language": "en" if english else "de", **(headers or {})},
    )


def engine_error_response(request: Request, exc: EngineError) -> JSONResponse:
    """The problem document of an engine error; a stale ``If-Match`` turns a version conflict into 412."""
    problem = problem_for(exc)
    if isinstance(exc, ConcurrentUpdate) and request.headers.get("if-match"):
        problem = API_PROBLEMS["precondition-failed"]
    if isinstance(exc, StoreError):
        correlation = uuid.uuid4().hex
        logger.error("store error [%s] on %s %s: %s", correlation, request.method, request.url.path, exc)
        return problem_response(
            request,
            problem,
            detail="Die Datenbank ist derzeit nicht erreichbar",
            detail_en="the database is unavailable right now",
            correlation_id=correlation,
        )
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, InvalidCredentials) else None
    first_line = str(exc).splitlines()[0] if str(exc) else problem.title_en
    return problem_response(
        request, problem, detail=_german_detail(exc), detail_en=first_line, headers=headers, **engine_extensions(exc)
    )


def install(app: FastAPI) -> None:
    """Register the exception handlers that turn everything into problem documents."""

    async def on_engine_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, EngineError)
        return engine_error_response(request, exc)

    async def on_api_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiProblem)
        return problem_response(request, exc.problem, detail=exc.detail, headers=exc.headers, **exc.extensions)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"location": [str(p) for p in e.get("loc", ())], "message": e.get("msg", ""), "code": e.get("type", "")}
            for e in exc.errors()
        ]
        return problem_response(
            request,
            API_PROBLEMS["request-invalid"],
            detail="Die Anfrage passt nicht zum erwarteten Format",
            detail_en="the request does not match the expected format",
            errors=errors,
        )

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        problem = _BY_STATUS.get(exc.status_code) or ProblemType(
            f"http-{exc.status_code}", exc.status_code, str(exc.detail), str(exc.detail)
        )
        headers = dict(exc.headers or {})
        return problem_response(
            request,
            problem,
            detail=problem.title_de,
            detail_en=str(exc.detail),
            status=exc.status_code,
            headers=headers,
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        correlation = uuid.uuid4().hex
        logger.exception("unhandled error [%s] on %s %s", correlation, request.method, request.url.path)
        return problem_response(
            request,
            API_PROBLEMS["internal-error"],
            detail=f"Unerwarteter Fehler; bitte mit der Kennung {correlation} melden",
            detail_en=f"unexpected error; please report it with the id {correlation}",
            correlation_id=correlation,
        )

    app.add_exception_handler(EngineError, on_engine_error)
    app.add_exception_handler(ApiProblem, on_api_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)


__all__ = [
    "API_PROBLEMS",
    "ENGINE_PROBLEMS",
    "PROBLEM_BASE",
    "PROBLEM_JSON",
    "ApiProblem",
    "ProblemType",
    "engine_error_response",
    "install",
    "problem_for",
    "problem_response",
    "wants_english",
]
