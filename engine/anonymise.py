"""Anonymising an ended case: its personal data goes, its step statistics stay.

In one transaction: the case's data is emptied; every event keeps its kind, time, actor,
action and steps (so the history still replays, to a case without data) but loses its data
diff (``changes``) and free-text notes and reasons; consents keep recipient, categories and
dates but lose their purpose; stored idempotent responses (which repeat case data) are
deleted; and an ``anonymise`` entry goes into the access log. Step visits, timers and
findings carry no personal data and stay untouched, so stall reports do not change.
The case version is not increased: the events are the history of versions, and
anonymising writes no event (``engine.history`` knows no such kind).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from engine import audit
from engine.case import OPEN
from engine.cases import Engine
from engine.errors import ActionUnavailable, ConcurrentUpdate, Reason
from engine.store import cases_t, consents_t, events_t, idempotency_t, load_case, lock_case

#: Keys of event details that may hold free text about the client.
_FREE_TEXT = ("note", "purpose", "reason")
_KEEP_REASON = ("paused", "waiting")  # there ``reason`` is a code of the stall-cause taxonomy
ANONYMISED = "[anonymisiert]"


def anonymise_case(
    engine: Engine,
    case_id: int,
    *,
    actor: str,
    role: str | None = None,
    route: str = "",
    expected_version: int | None = None,
) -> list[str]:
    """Remove the personal data of an ended case, keeping its visits and its events without data.

    Returns:
        The names of the data fields that were removed.

    Raises:
        CaseNotFound: No such case.
        ActionUnavailable: The case is still open (reason ``case-open``).
        ConcurrentUpdate: ``expected_version`` is stale.
    """
    with engine.store.transaction() as conn:
        lock_case(conn, case_id)
        case = load_case(conn, case_id)
        if expected_version is not None and expected_version != case.version:
            raise ConcurrentUpdate(case_id, expected_version, case.version)
        if case.status == OPEN:
            raise ActionUnavailable(
                case_id,
                "anonymise",
                (
                    Reason(
                        "case-open",
                        "Nur beendete Fälle können anonymisiert werden",
                        "only ended cases can be anonymised",
                    ),
                ),
            )
        fields = sorted(case.data)
        conn.execute(sa.update(cases_t).where(cases_t.c.id == case_id).values(data={}))
        events = conn.execute(
            sa.select(events_t.c.id, events_t.c.kind, events_t.c.detail).where(events_t.c.case_id == case_id)
        ).all()
        for event in events:
            detail: dict[str, Any] = dict(event.detail or {})
            for key in _FREE_TEXT:
                if key == "reason" and event.kind in _KEEP_REASON:
                    continue
                if detail.get(key) is not None:
                    detail[key] = ANONYMISED
            conn.execute(sa.update(events_t).where(events_t.c.id == event.id).values(changes={}, detail=detail))
        conn.execute(sa.update(consents_t).where(consents_t.c.case_id == case_id).values(purpose=ANONYMISED))
        conn.execute(sa.delete(idempotency_t).where(idempotency_t.c.case_id == case_id))
        audit.record(
            conn,
            at=engine.clock.now(),
            actor=actor,
            role=role,
            case_id=case_id,
            access=audit.ANONYMISE,
            fields=fields,
            route=route or "anonymise",
        )
    return fields


__all__ = ["ANONYMISED", "anonymise_case"]
