"""Shared fixtures: a fixed clock, and a database on every backend the engine supports.

``database_url`` is parametrised over SQLite (a file in ``tmp_path``) and PostgreSQL,
so every test that uses it (directly or through ``engine``) runs on both. Each
PostgreSQL test gets a schema of its own (``kf_t_<hex>``, selected with
``search_path`` in the URL) that is dropped afterwards, so tests can run in parallel
on one server. If the server is unreachable the PostgreSQL cases are skipped, unless
``KIMFLOW_REQUIRE_POSTGRES=1`` (as in CI), where they fail instead.

Schemas are created by the Alembic migrations (``Engine.upgrade_schema``), never by
``metadata.create_all``, so the migrations themselves are under test.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine import Engine, FixedClock

POSTGRES_URL_ENV = "KIMFLOW_TEST_POSTGRES_URL"
REQUIRE_POSTGRES_ENV = "KIMFLOW_REQUIRE_POSTGRES"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://127.0.0.1:5432/test"
START = datetime(2026, 3, 2, 8, tzinfo=UTC)  # Monday 09:00 in Berlin
# How long a SQLite writer waits for the lock in tests. The store's 30 s would turn a
# lock held by the engine against itself into a half-minute hang; in tests of this size
# any wait beyond a few seconds is such a bug, and it should fail fast.
SQLITE_BUSY_TIMEOUT_MS = 3_000

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # pytest-benchmark disables itself under xdist but says so with a PytestBenchmarkWarning
    # while pytest is being configured, which filterwarnings=error turns into an INTERNALERROR
    # of the whole run. Disabling it explicitly under xdist (where it cannot measure anyway)
    # keeps it quiet; without xdist nothing changes.
    under_xdist = config.getoption("dist", "no") != "no" or "PYTEST_XDIST_WORKER" in os.environ
    if under_xdist and hasattr(config.option, "benchmark_disable"):
        config.option.benchmark_disable = True


def postgres_base_url() -> str:
    url = os.environ.get(POSTGRES_URL_ENV) or DEFAULT_POSTGRES_URL
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


@cache
def _postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used (None if it can); asked once per test process."""
    engine = sa.create_engine(postgres_base_url(), connect_args={"connect_timeout": 3}, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # any driver or network failure means "unreachable"
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    finally:
        engine.dispose()
    return None


def require_postgres() -> str:
    """The server URL, or skip (fail, if ``KIMFLOW_REQUIRE_POSTGRES=1``) when it is unreachable."""
    problem = _postgres_problem()
    if problem is not None:
        message = f"PostgreSQL at {postgres_base_url()} is unreachable ({problem}); set {POSTGRES_URL_ENV}"
        if os.environ.get(REQUIRE_POSTGRES_ENV) == "1":
            pytest.fail(f"{message}. {REQUIRE_POSTGRES_ENV}=1 requires the PostgreSQL tests to run.", pytrace=False)
        pytest.skip(message)
    return postgres_base_url()


def with_search_path(url: str, schema: str) -> str:
    """``url`` with ``options=-csearch_path=<schema>`` so every connection works inside ``schema``."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL into a fresh, empty PostgreSQL schema, dropped (CASCADE) on exit."""
    base = require_postgres()
    schema = f"kf_t_{secrets.token_hex(6)}"
    admin = sa.create_engine(base, poolclass=sa.NullPool)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        yield with_search_path(base, schema)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database on each backend: a SQLite file, or a private PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'kimflow.db'}"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
def clock() -> FixedClock:
    """The engine's clock, standing at Monday 2026-03-02 08:00 UTC until a test moves it."""
    return FixedClock(START)


def _set_busy_timeout(instance: Engine, milliseconds: int) -> None:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(milliseconds)}")
        cursor.close()

    # Registered after the store's own listener, so it overrides its 30 s timeout.
    sa.event.listen(instance.store.engine, "connect", on_connect)


@pytest.fixture
def engine_factory(database_url: str, clock: FixedClock) -> Iterator[Callable[..., Engine]]:
    """Make ``Engine`` instances (each with its own connection pool) on the database; all disposed after.

    On SQLite, ``busy_timeout_ms`` bounds how long a transaction waits for the write lock.
    """
    made: list[Engine] = []

    def make(*, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> Engine:
        instance = Engine(database_url, clock=clock)
        if instance.store.dialect == "sqlite":
            _set_busy_timeout(instance, busy_timeout_ms)
        made.append(instance)
        return instance

    yield make
    for instance in made:
        instance.store.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated once per test process, copied for each test (migrating costs ~0.2 s)."""
    path = tmp_path_factory.mktemp("template") / "kimflow.db"
    template = Engine(f"sqlite:///{path}")
    template.upgrade_schema()
    template.store.dispose()  # the last connection to close checkpoints the WAL into the file
    assert not path.with_name(path.name + "-wal").exists()
    return path


@pytest.fixture
def engine(request: pytest.FixtureRequest, database_url: str, engine_factory: Callable[..., Engine]) -> Engine:
    """An engine on a migrated database (``upgrade_schema``), driven by ``clock``.

    On SQLite the database starts as a copy of ``sqlite_template``, so the upgrade finds
    nothing left to do; on PostgreSQL each test's schema is migrated from scratch.
    """
    if database_url.startswith("sqlite:///"):
        target = Path(database_url.removeprefix("sqlite:///"))
        if not target.exists():
            shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
    instance = engine_factory()
    instance.upgrade_schema()
    return instance
