"""A change made through a page, with its access-log entry in the change's own transaction.

The pages' counterpart of :class:`api.deps.Change` (which also stores idempotent responses,
something forms do not need: a form carries the case version, and a repeated post is refused
as stale). The entry is written by a before-commit hook of :func:`engine.scope.request_scope`,
so the change and its entry commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

import sqlalchemy as sa
from fastapi import Request

from engine import audit
from engine.accounts import User
from engine.scope import ScopedEngine, request_scope

T = TypeVar("T")


def logged_change(
    request: Request,
    user: User,
    engine: ScopedEngine,
    case_id: int | None,
    fields: Iterable[str],
    operation: Callable[[], T],
) -> T:
    """Run one engine operation with its access-log entry in the operation's own transaction.

    ``case_id`` None: the operation opens a case, whose number the hook takes from the scope.
    Engine errors propagate (nothing was committed, no entry written).
    """
    route = f"{request.method} {request.url.path}"
    logged = sorted(set(fields))
    with request_scope() as scope:

        def log_change(conn: sa.Connection) -> None:
            audit.record(
                conn,
                at=engine.clock.now(),
                actor=user.name,
                role=user.role,
                case_id=case_id if case_id is not None else scope.opened[0],
                access=audit.CHANGE,
                fields=logged,
                route=route,
            )

        scope.before_commit.append(log_change)
        return operation()


__all__ = ["logged_change"]
