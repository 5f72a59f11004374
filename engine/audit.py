"""The data-protection access log: every read and every change of a case's data.

Each entry says who (user and role), when, which case, which fields (names, never
values), what kind of access (``read``, ``change``, ``anonymise``) and why (the route or
command, as the purpose). A change's entry is written in the change's own transaction
(see :mod:`engine.scope`), so a change is never committed without its entry; a read's
entry is written right after the read. Entries are personal data themselves and are
queried by an administrator for the data-protection officer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from engine.store import Store, access_t

READ = "read"
CHANGE = "change"
ANONYMISE = "anonymise"


@dataclass(frozen=True, slots=True)
class AccessEntry:
    """One entry of the access log."""

    id: int
    at: datetime
    actor: str
    role: str | None
    case_id: int
    access: str
    fields: tuple[str, ...]
    route: str


def record(
    conn: sa.Connection,
    *,
    at: datetime,
    actor: str,
    role: str | None,
    case_id: int,
    access: str,
    fields: Iterable[str],
    route: str,
) -> None:
    """Append an entry on ``conn`` (inside the caller's transaction)."""
    conn.execute(
        sa.insert(access_t).values(
            at=at,
            actor=actor,
            role=role,
            case_id=case_id,
            access=access,
            fields=sorted(set(fields)),
            route=route[:200],
        )
    )


def record_now(store: Store, **values: object) -> None:
    """Append an entry in a transaction of its own (for reads)."""
    with store.transaction() as conn:
        record(conn, **values)  # type: ignore[arg-type]


def entries(
    store: Store,
    *,
    case_id: int | None = None,
    actor: str | None = None,
    after_id: int | None = None,
    limit: int = 100,
) -> list[AccessEntry]:
    """Entries matching the filters, oldest first, starting after ``after_id``."""
    a = access_t.c
    where = [
        clause
        for clause, given in (
            (a.case_id == case_id, case_id is not None),
            (a.actor == actor, actor is not None),
            (a.id > (after_id or 0), after_id is not None),
        )
        if given
    ]
    query = sa.select(a.id, a.at, a.actor, a.role, a.case_id, a.access, a.fields, a.route).where(*where)
    with store.read() as conn:
        rows = conn.execute(query.order_by(a.id).limit(limit)).all()
    return [AccessEntry(*row[:6], tuple(row.fields or ()), row.route) for row in rows]


__all__ = ["ANONYMISE", "CHANGE", "READ", "AccessEntry", "entries", "record", "record_now"]
