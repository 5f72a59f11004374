"""Operations: due timers, and the data-protection access log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import Admin, EngineDep, Operator
from api.routes.common import problems
from api.schemas import AccessesPublic, AccessPublic, TickPublic
from engine import audit

router = APIRouter(tags=["operations"])


@router.post("/timers/tick", responses=problems())
def tick_timers(_: Operator, engine: EngineDep) -> TickPublic:
    """Fire every timer that is due now, once (safe to call from several workers)."""
    result = engine.tick()
    return TickPublic(fired=result.fired, skipped=result.skipped)


@router.get("/audit", responses=problems())
def read_audit(
    _: Admin,
    engine: EngineDep,
    case_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    actor: Annotated[str | None, Query(max_length=128)] = None,
    after: Annotated[int | None, Query(ge=0, le=2**62, description="Entries after this id (paging)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AccessesPublic:
    """The access log (who read or changed which case's data, when and why), oldest first."""
    found = audit.entries(engine.store, case_id=case_id, actor=actor, after_id=after, limit=limit)
    return AccessesPublic(data=[AccessPublic.from_entry(e) for e in found], count=len(found))
