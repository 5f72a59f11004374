"""``kimflow serve`` for the API benchmark, plus a trivial JSON endpoint if the app has none.

Issue #4 §9 compares every scenario with "a trivial JSON endpoint of the same app".
``/api/health`` is not trivial (it asks the database for its schema revision and reads the
Alembic migration scripts from disk on every call), so ``bench_api.py`` compares against
``GET /api/ping``. When ``api.app.create_app`` does not define that route, the benchmark
starts the server through this module instead of ``kimflow serve``: the same factory
(``api.app:app_from_environment``), the same ``uvicorn.run`` call as ``kimflow serve``
(default loop, HTTP parser, access log and log level), and one more route::

    @app.get("/api/ping", tags=["operations"], response_model=None)
    async def ping() -> JSONResponse:
        return JSONResponse({"status": "ok"})

Run: ``python bench/api_server.py --host 127.0.0.1 --port 8000 [--workers N]``
(``KIMFLOW_DATABASE_URL`` and the other settings from the environment, as for ``kimflow serve``).

Experiments (``KIMFLOW_BENCH_EXPERIMENTS=a,b``; only to measure a proposed fix before it is
made in ``engine/`` or ``api/`` — the benchmark prints them in its header, and its figures
are then not those of the shipped code):

``writelock``   SQLite: write transactions of this process queue on one ``threading.RLock``
                before ``BEGIN IMMEDIATE``, instead of all waiting in SQLite's busy handler
                (which polls with sleeps of up to 100 ms);
``pool``        a connection pool as large as the thread pool (40 + 10), so that concurrent
                requests do not open and close overflow connections (SQLAlchemy's default
                is 5 + 10);
``nosync``      SQLite ``synchronous=NORMAL`` (the engine's ``durable=False``): no fsync per commit;
                WAL stays consistent, but a power cut may lose the last commits;
``noaccesslog`` uvicorn without its access log (one log line per request);
``headcache``   ``Store.head_revision`` computed once (``/api/health`` reads the Alembic
                scripts from disk on every call);
``timerindex``  (applied by ``bench_api.py`` to its copy of the database, not here) an index
                ``kf_timer (visit_id) WHERE fired_at IS NULL AND cancelled_at IS NULL``, so that
                leaving a step with timers (``store.cancel_timers``) does not scan every
                pending timer.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastapi import FastAPI  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402

PING = "/api/ping"
EXPERIMENTS = ("writelock", "pool", "nosync", "noaccesslog", "headcache", "timerindex")


def experiments() -> list[str]:
    chosen = [x for x in os.environ.get("KIMFLOW_BENCH_EXPERIMENTS", "").split(",") if x]
    unknown = set(chosen) - set(EXPERIMENTS)
    if unknown:
        raise SystemExit(f"unknown experiment(s) {sorted(unknown)}; known: {', '.join(EXPERIMENTS)}")
    return chosen


def _apply_experiments() -> None:
    import contextlib
    import functools
    import threading

    import sqlalchemy as sa

    from engine import store as st

    chosen = experiments()
    if "writelock" in chosen:
        lock = threading.RLock()
        original = st.Store.transaction

        @contextlib.contextmanager
        def transaction(self: st.Store):  # type: ignore[no-untyped-def]
            if self.dialect != "sqlite":
                with original(self) as conn:
                    yield conn
                return
            with lock, original(self) as conn:
                yield conn

        st.Store.transaction = transaction  # type: ignore[method-assign]
    if "pool" in chosen or "nosync" in chosen:

        def create_db_engine(url: str, *, durable: bool = True) -> sa.Engine:
            if not url.startswith("sqlite"):
                return original_create(url, durable=durable)
            pool = {"pool_size": 40, "max_overflow": 10} if "pool" in chosen else {}
            engine = sa.create_engine(url, connect_args={"timeout": 30}, **pool)
            fast = not durable or "nosync" in chosen
            on_connect = st._sqlite_on_connect_fast if fast else st._sqlite_on_connect
            sa.event.listen(engine, "connect", on_connect)
            sa.event.listen(engine, "begin", st._sqlite_on_begin)
            return engine

        original_create = st.create_db_engine
        st.create_db_engine = create_db_engine
    if "headcache" in chosen:
        st.Store.head_revision = functools.lru_cache(maxsize=None)(st.Store.head_revision)  # type: ignore[method-assign]


def has_ping(app: FastAPI) -> bool:
    return any(getattr(route, "path", None) == PING for route in app.routes)


def app_with_ping() -> FastAPI:
    """``api.app.app_from_environment()`` with ``GET /api/ping`` added if it is missing."""
    _apply_experiments()
    from api.app import app_from_environment

    app = app_from_environment()
    if not has_ping(app):

        @app.get(PING, tags=["operations"], response_model=None)
        async def ping() -> JSONResponse:
            """Liveness without the database: the trivial endpoint the API benchmark compares against."""
            return JSONResponse({"status": "ok"})

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    # As api/cli.py's serve_command, with this module's factory.
    uvicorn.run(
        "api_server:app_with_ping",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        **({"access_log": False} if "noaccesslog" in experiments() else {}),
    )


if __name__ == "__main__":
    main()
