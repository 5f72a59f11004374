"""The HTTP API: ``create_app(settings)`` builds a FastAPI application around one engine.

Nothing connects at import time: the lifespan builds the engine (and, if
``auto_upgrade``, migrates the schema) when the server starts, and disposes of it at
shutdown. Routes live under ``/api/v1``; the OpenAPI document is ``/api/openapi.json``,
the interactive docs ``/api/docs``, the health check for operations ``/api/health``.
Run it with ``kimflow serve`` (uvicorn) or ``uvicorn --factory api.app:app_from_environment``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

from api import errors
from api.routes import auth, cases, operations, processes, users
from api.routes.common import problems
from api.schemas import HealthPublic
from api.settings import Settings
from engine import Clock
from engine.accounts import Accounts
from engine.scope import ScopedEngine


def _operation_id(route: APIRoute) -> str:
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


def create_app(settings: Settings, *, clock: Clock | None = None) -> FastAPI:
    """The application for ``settings``; ``clock`` is injected by tests and simulations."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = ScopedEngine(settings.database_url, clock=clock)
        if settings.auto_upgrade:
            await run_in_threadpool(engine.upgrade_schema)
        app.state.engine = engine
        app.state.accounts = Accounts(engine.store, engine.clock)
        try:
            yield
        finally:
            engine.store.dispose()

    app = FastAPI(
        title="kimflow",
        summary="Workflow engine for municipal integration management (KIM NRW)",
        version="1",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
    )
    app.state.settings = settings
    errors.install(app)

    v1 = APIRouter(prefix="/api/v1")
    for module in (auth, processes, cases, operations, users):
        v1.include_router(module.router)
    _include_reports(v1)
    app.include_router(v1)

    @app.get("/api/health", tags=["operations"], response_model=HealthPublic, responses=problems(503))
    def health(request: Request) -> Response:
        """Ready when the database answers and its schema is at the newest migration (503 otherwise)."""
        engine: ScopedEngine = request.app.state.engine
        try:
            current, head = engine.store.current_revision(), engine.store.head_revision()
        except Exception:  # any driver failure means "not reachable"; the detail stays in the log
            errors.logger.exception("health check: database unreachable")
            return errors.problem_response(
                request,
                errors.API_PROBLEMS["unhealthy"],
                detail="Datenbank nicht erreichbar",
                detail_en="database unreachable",
            )
        if current != head:
            return errors.problem_response(
                request,
                errors.API_PROBLEMS["unhealthy"],
                detail=f"Datenbankschema veraltet (Stand {current or 'leer'}, benötigt {head})",
                detail_en=f"database schema is at {current or 'nothing'}, expected {head}",
                schema_revision=current,
                expected_revision=head,
            )
        body = HealthPublic(status="ok", database="reachable", schema_revision=current)
        return JSONResponse(body.model_dump(mode="json"))

    return app


def _include_reports(router: APIRouter) -> None:
    """Stall and report routes, when the engine has them (engine/stalls.py, engine/reports.py)."""
    try:
        from api.routes import reports
    except ImportError:
        return
    router.include_router(reports.router)


def app_from_environment() -> FastAPI:
    """``create_app`` with settings from ``KIMFLOW_*`` variables (the uvicorn factory)."""
    return create_app(Settings())


__all__ = ["app_from_environment", "create_app"]
