"""Process definitions: list, versions, source, diagram; validate and deploy YAML."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse

from api.deps import EngineDep, ProcessEditor, ProcessReader
from api.errors import ApiProblem
from api.routes.common import problems
from api.schemas import (
    DeploymentPublic,
    DiagnosticPublic,
    ProcessesPublic,
    ProcessPublic,
    ProcessVersionPublic,
    ProcessVersionsPublic,
    ValidationPublic,
)
from engine import DefinitionNotFound, check_definition

router = APIRouter(prefix="/processes", tags=["processes"])

ProcessId = Annotated[str, Path(min_length=1, max_length=64)]
Version = Annotated[int, Path(ge=1, le=2**31 - 1)]
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/plain")
_YAML_BODY = {
    "requestBody": {
        "required": True,
        "description": "A process definition as YAML text",
        "content": {"application/yaml": {"schema": {"type": "string"}}},
    }
}
MAX_DEFINITION_BYTES = 1_000_000


async def _yaml_text(request: Request) -> tuple[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in YAML_TYPES:
        raise ApiProblem("unsupported-media-type", "Prozessdefinitionen als application/yaml senden")
    body = await request.body()
    if len(body) > MAX_DEFINITION_BYTES:
        raise ApiProblem("request-invalid", "Prozessdefinition ist zu groß (höchstens 1 MB)")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiProblem("request-invalid", "Prozessdefinition ist kein UTF-8-Text") from None
    name = request.headers.get("x-file-name", "definition.yaml")[:200]
    return text, name


@router.get("", responses=problems())
def read_processes(_: ProcessReader, engine: EngineDep) -> ProcessesPublic:
    """Deployed processes with their versions."""
    by_id: dict[str, list[object]] = {}
    for d in engine.registry.list():
        by_id.setdefault(d.process_id, []).append(d)
    items = [
        ProcessPublic(id=pid, title=ds[-1].title, latest=ds[-1].version, versions=[d.version for d in ds])  # type: ignore[attr-defined]
        for pid, ds in by_id.items()
    ]
    return ProcessesPublic(data=items, count=len(items))


@router.get("/{process_id}/versions", responses=problems(404))
def read_process_versions(_: ProcessReader, engine: EngineDep, process_id: ProcessId) -> ProcessVersionsPublic:
    """Every deployed version of one process."""
    versions = [ProcessVersionPublic.from_deployment(d) for d in engine.registry.list() if d.process_id == process_id]
    if not versions:
        raise DefinitionNotFound(process_id)
    return ProcessVersionsPublic(data=versions, count=len(versions))


@router.get(
    "/{process_id}/versions/{version}/source",
    response_class=PlainTextResponse,
    responses={**problems(404), 200: {"content": {"application/yaml": {"schema": {"type": "string"}}}}},
)
def read_process_source(
    _: ProcessReader, engine: EngineDep, process_id: ProcessId, version: Version
) -> PlainTextResponse:
    """The YAML source of one deployed version, exactly as deployed."""
    source = engine.registry.source(process_id, version)
    return PlainTextResponse(source, media_type="application/yaml")


@router.get(
    "/{process_id}/diagram",
    response_class=PlainTextResponse,
    responses={**problems(404), 200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def read_process_diagram(
    _: ProcessReader,
    engine: EngineDep,
    process_id: ProcessId,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> PlainTextResponse:
    """The process as a Mermaid state diagram (the newest version unless ``version`` is given)."""
    registry = engine.registry
    compiled = registry.latest(process_id) if version is None else registry.get(process_id, version)
    return PlainTextResponse(compiled.diagram())


@router.post("/validate", responses=problems(415), openapi_extra=_YAML_BODY)
async def validate_process(_: ProcessEditor, request: Request) -> ValidationPublic:
    """Check a definition without deploying it; the diagnostics are the CLI's, with line and column."""
    text, name = await _yaml_text(request)
    definition, diagnostics = await run_in_threadpool(check_definition, text, name)
    return ValidationPublic(
        valid=definition is not None and not any(d.severity == "error" for d in diagnostics),
        definition=definition.ref if definition is not None else None,
        diagnostics=[DiagnosticPublic.from_diagnostic(d) for d in diagnostics],
    )


@router.post("", status_code=201, responses=problems(409, 415), openapi_extra=_YAML_BODY)
async def deploy_process(user: ProcessEditor, engine: EngineDep, request: Request) -> DeploymentPublic:
    """Validate and deploy a definition version (deployed versions never change: same content is a no-op)."""
    text, name = await _yaml_text(request)
    deployment = await run_in_threadpool(engine.deploy_text, text, actor=user.name, file=name)
    return DeploymentPublic(**ProcessVersionPublic.from_deployment(deployment).model_dump(), created=deployment.created)
