"""Statements that ride in the engine's own transaction.

An HTTP request changes a case through one :class:`engine.Engine` operation, which is one
database transaction. Some writes of the API layer must commit or roll back *with* that
change, never apart from it: the access-log row of the change and the stored first
response of an idempotent request. :func:`request_scope` opens a scope (a context
variable, so it is private to the request's thread or task); while it is active,
:class:`ScopedStore` runs the scope's ``before_commit`` hooks on the operation's own
connection just before it commits, and records in ``Scope.opened`` the ids of the cases
the operation opened (the engine inserts every case through :meth:`Store.insert_case`),
so that a hook can name a case that has no id yet when the request starts.

The team of a case is not the scope's business: it is a parameter of
:meth:`engine.Engine.open_case`, stored with the case row (child cases inherit it).

Nothing here knows HTTP, and the engine knows nothing of scopes: they hook into the store.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from engine.cases import Engine
from engine.store import Store, cases_t

Hook = Callable[[sa.Connection], None]


@dataclass
class Scope:
    """What one request adds to the engine's transaction.

    Attributes:
        before_commit: Run in order on the operation's connection, inside its transaction.
        opened: Ids of the cases opened in the scope's transaction (parents before children).
    """

    before_commit: list[Hook] = field(default_factory=list)
    opened: list[int] = field(default_factory=list)
    _active: bool = False


_current: ContextVar[Scope | None] = ContextVar("kimflow_scope", default=None)


@contextlib.contextmanager
def request_scope() -> Iterator[Scope]:
    """Open a scope for the engine operations run inside the ``with`` block."""
    scope = Scope()
    token = _current.set(scope)
    try:
        yield scope
    finally:
        _current.reset(token)


class ScopedStore(Store):
    """A :class:`Store` whose write transactions also run the current scope's hooks before commit."""

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        scope = _current.get()
        if scope is None or scope._active:
            with super().transaction() as conn:
                yield conn
            return
        with super().transaction() as conn:
            scope._active = True
            try:
                yield conn
                for hook in scope.before_commit:
                    hook(conn)
            finally:
                scope._active = False

    def insert_case(self, conn: sa.Connection, values: dict[str, Any]) -> int:
        case_id = super().insert_case(conn, values)
        scope = _current.get()
        if scope is not None and scope._active:
            scope.opened.append(case_id)
        return case_id


class ScopedEngine(Engine):
    """The engine on a :class:`ScopedStore`.

    Args:
        database_url: SQLAlchemy URL.
        store: An existing store instead of a URL (a :class:`ScopedStore`, for the hooks to run).
        **kwargs: As for :class:`engine.Engine` (``clock``, ``taxonomy``, ``durable``).
    """

    def __init__(self, database_url: str | None = None, *, store: Store | None = None, **kwargs: Any) -> None:
        store = store or ScopedStore(database_url, durable=kwargs.get("durable", True))
        super().__init__(database_url, store=store, **kwargs)


def case_team(store: Store, case_id: int) -> tuple[bool, str | None]:
    """Whether the case exists, and its team (one indexed column, cheaper than loading the case)."""
    with store.read() as conn:
        row = conn.execute(sa.select(cases_t.c.team).where(cases_t.c.id == case_id)).first()
    return (row is not None, row.team if row is not None else None)


__all__ = ["Scope", "ScopedEngine", "ScopedStore", "case_team", "request_scope"]
