"""The HTTP API: ``create_app(settings)`` builds a FastAPI application around one engine.

Nothing connects at import time: the lifespan builds the engine (and, if
``auto_upgrade``, migrates the schema) when the server starts, and disposes of it at
shutdown. Routes live under ``/api/v1``; the OpenAPI document is ``/api/openapi.json``,
the interactive docs ``/api/docs``, the health check for operations ``/api/health``.
Run it with ``kimflow serve`` (uvicorn) or ``uvicorn --factory api.app:app_from_environment``.

Unless ``tick_enabled`` is off, the lifespan also runs a background task that fires due
timers every ``tick_interval`` seconds (``Engine.tick`` in a worker thread). Every uvicorn
worker runs one; a timer still fires only once, because ``tick`` claims each timer in its
own transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, serialised writes on SQLite).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

from api import errors, web
from api.routes import auth, cases, operations, processes, users
from api.routes.common import problems
from api.schemas import HealthPublic
from api.settings import Settings
from engine import Clock, Engine
from engine.accounts import Accounts
from engine.scope import ScopedEngine

# Timers one ``Engine.tick`` call fires at most; a full batch is followed by another at once.
TICK_BATCH = 1000
# At most this many batches per interval, so a huge backlog cannot starve shutdown for long.
TICK_MAX_BATCHES = 100


async def tick_forever(engine: Engine, interval: float, stop: asyncio.Event) -> None:
    """Fire due timers every ``interval`` seconds until ``stop`` is set; a failing tick is logged, never fatal.

    The first tick runs one interval after the start. A tick runs in a worker thread (the
    engine is synchronous). Shutdown sets ``stop`` and awaits this coroutine instead of
    cancelling it: a cancelled task would abandon a running tick's thread, and the store
    would be disposed of under it. So a running batch finishes, and no further one starts.
    """
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
        if stop.is_set():
            return
        fired = skipped = 0
        try:
            for _ in range(TICK_MAX_BATCHES):
                result = await run_in_threadpool(engine.tick, limit=TICK_BATCH)
                fired, skipped = fired + result.fired, skipped + result.skipped
                if result.fired + result.skipped < TICK_BATCH or stop.is_set():
                    break
        except Exception:  # a database hiccup must not end the ticker; the next interval tries again
            errors.logger.exception("background tick failed; next attempt in %s s", interval)
            continue
        if fired or skipped:
            errors.logger.info("background tick: %d timer(s) fired, %d skipped", fired, skipped)


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
        stop = asyncio.Event()
        ticker = None
        if settings.tick_enabled:
            ticker = asyncio.create_task(tick_forever(engine, settings.tick_interval, stop), name="kimflow-ticker")
        app.state.ticker = ticker
        try:
            yield
        finally:
            stop.set()
            if ticker is not None:
                await ticker  # lets a running tick finish before the store goes away
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
    web.install(app)

    @app.get("/api/ping", tags=["operations"], response_model=None)
    async def ping() -> JSONResponse:
        """Liveness without the database: answers while the process serves requests (the benchmarks' baseline)."""
        return JSONResponse({"status": "ok"})

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


__all__ = ["app_from_environment", "create_app", "tick_forever"]
