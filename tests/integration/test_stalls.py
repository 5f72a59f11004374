"""Stall detection (``engine.stalls.find_stalls``) on SQLite and PostgreSQL.

Cases are opened on Monday 2026-03-02 09:00 Berlin (08:00 UTC, the ``clock`` fixture). The
intake step expects 3 office days and warns after 2, so its deadline is the end of Thursday
2026-03-05 (23:00 UTC) and its warning the end of Wednesday 2026-03-04 (23:00 UTC). Early
March 2026 has no public holiday in NRW.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine import Engine, FixedClock
from engine.stalls import AT_RISK, STALLED, find_stalls, overdue
from tests.factories import STEPS, process_yaml

ACTOR = "koordination"
DUE = datetime(2026, 3, 5, 23, tzinfo=UTC)  # end of Thursday in Berlin
WARN = datetime(2026, 3, 4, 23, tzinfo=UTC)  # end of Wednesday in Berlin

TWO_AGENCIES: dict[str, Any] = copy.deepcopy(STEPS)
TWO_AGENCIES["review"]["expected"] = "1 Arbeitstag"


@pytest.fixture
def deployed(engine: Engine) -> Engine:
    engine.deploy_text(process_yaml(steps=TWO_AGENCIES), actor=ACTOR)
    engine.deploy_text(process_yaml(id="other", title="Andere", steps=TWO_AGENCIES), actor=ACTOR)
    return engine


def _open(engine: Engine, clock: FixedClock, at: datetime, *, process: str = "intake", assignee: str = "cm01") -> int:
    clock.set(at)
    return engine.open_case(process, actor=ACTOR, assignee=assignee, data={"name": "Beispiel"}).id


def test_nothing_is_stalled_before_the_warning(deployed: Engine, clock: FixedClock) -> None:
    _open(deployed, clock, clock.now())
    assert find_stalls(deployed, now=WARN) == []


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (WARN - timedelta(seconds=1), []),
        (WARN, []),
        (WARN + timedelta(seconds=1), [AT_RISK]),
        (DUE - timedelta(seconds=1), [AT_RISK]),
        (DUE, [AT_RISK]),
        (DUE + timedelta(seconds=1), [STALLED]),
    ],
    ids=["before-warning", "at-warning", "after-warning", "before-due", "at-due", "after-due"],
)
def test_thresholds_one_second_before_at_and_after(
    deployed: Engine, clock: FixedClock, now: datetime, expected: list[str]
) -> None:
    _open(deployed, clock, clock.now())
    assert [s.status for s in find_stalls(deployed, now=now)] == expected


def test_a_stall_names_the_case_step_and_overdue_office_days(deployed: Engine, clock: FixedClock) -> None:
    case_id = _open(deployed, clock, clock.now(), assignee="cm07")
    now = datetime(2026, 3, 9, 12, tzinfo=UTC)  # Monday: Friday and Monday are past the deadline
    [stall] = find_stalls(deployed, now=now)
    assert (stall.case_id, stall.process_ref, stall.step, stall.status) == (case_id, "intake@1", "intake", STALLED)
    assert (stall.step_title, stall.step_title_en) == ("Erfassung", "Intake")
    assert (stall.agency, stall.assignee) == ("KIM-CM", "cm07")
    assert stall.due_at == DUE
    assert stall.warn_at == WARN
    assert stall.overdue_office_days == 2
    assert stall.paused is False and stall.clock_stopped is False
    assert stall.as_dict()["due_at"] == "2026-03-05T23:00:00+00:00"


def test_stalls_come_most_overdue_first_then_at_risk_nearest_deadline_first(
    deployed: Engine, clock: FixedClock
) -> None:
    monday = clock.now()
    oldest = _open(deployed, clock, monday)  # due Thu 05.03.
    middle = _open(deployed, clock, monday + timedelta(days=1))  # due Fri 06.03.
    newest = _open(deployed, clock, monday + timedelta(days=2))  # due Mon 09.03.
    risky = _open(deployed, clock, monday + timedelta(days=7))  # Mon 09.03.: warns end of Wed, due end of Thu
    fresh = _open(deployed, clock, monday + timedelta(days=8))  # Tue 10.03.: warns end of Thu 12.03.
    now = datetime(2026, 3, 12, 12, tzinfo=UTC)  # Thursday noon
    stalls = find_stalls(deployed, now=now)
    assert [(s.case_id, s.status, s.overdue_office_days) for s in stalls] == [
        (oldest, STALLED, 5),  # Fri, Mon, Tue, Wed, Thu
        (middle, STALLED, 4),
        (newest, STALLED, 3),
        (risky, AT_RISK, 0),
    ]
    assert fresh not in {s.case_id for s in stalls}


def test_limit_and_without_at_risk(deployed: Engine, clock: FixedClock) -> None:
    monday = clock.now()
    ids = [_open(deployed, clock, monday + timedelta(hours=h)) for h in range(3)]
    _open(deployed, clock, monday + timedelta(days=7))
    now = datetime(2026, 3, 12, 12, tzinfo=UTC)
    assert [s.case_id for s in find_stalls(deployed, now=now, limit=2)] == ids[:2]
    assert {s.status for s in find_stalls(deployed, now=now, include_at_risk=False)} == {STALLED}
    with pytest.raises(ValueError, match="limit"):
        find_stalls(deployed, now=now, limit=0)
    with pytest.raises(ValueError, match="timezone"):
        find_stalls(deployed, now=now.replace(tzinfo=None))


def test_filters_by_process_step_agency_and_assignee(deployed: Engine, clock: FixedClock) -> None:
    monday = clock.now()
    a = _open(deployed, clock, monday, assignee="cm01")
    b = _open(deployed, clock, monday, process="other", assignee="cm02")
    c = _open(deployed, clock, monday, assignee="cm02")
    clock.set(monday + timedelta(hours=1))
    deployed.fire(c, "forward", actor=ACTOR)  # review at JC, due end of Tuesday
    now = datetime(2026, 3, 12, 12, tzinfo=UTC)
    assert {s.case_id for s in find_stalls(deployed, now=now)} == {a, b, c}
    assert {s.case_id for s in find_stalls(deployed, now=now, process_id="other")} == {b}
    assert {s.case_id for s in find_stalls(deployed, now=now, step="review")} == {c}
    assert {s.case_id for s in find_stalls(deployed, now=now, agency="JC")} == {c}
    assert {s.case_id for s in find_stalls(deployed, now=now, assignee="cm02")} == {b, c}
    assert find_stalls(deployed, now=now, process_id="other", assignee="cm01") == []


def test_closed_cases_and_left_steps_are_not_stalls(deployed: Engine, clock: FixedClock) -> None:
    case_id = _open(deployed, clock, clock.now())
    clock.set(datetime(2026, 3, 9, 8, tzinfo=UTC))  # leaves intake late; review due end of Tuesday
    deployed.fire(case_id, "forward", actor=ACTOR)
    deployed.fire(case_id, "approve", actor=ACTOR)
    assert find_stalls(deployed, now=datetime(2026, 4, 1, tzinfo=UTC)) == []


def test_a_clock_stopped_before_the_deadline_does_not_stall(deployed: Engine, clock: FixedClock) -> None:
    case_id = _open(deployed, clock, clock.now())
    clock.set(datetime(2026, 3, 3, 10, tzinfo=UTC))  # Tuesday, before the deadline
    deployed.pause(case_id, reason="W-CLIENT", actor=ACTOR)
    now = datetime(2026, 3, 20, 12, tzinfo=UTC)
    assert find_stalls(deployed, now=now) == []
    clock.set(now)
    deployed.resume(case_id, actor=ACTOR)  # the deadline moves by the 13 office days Wed 04.03. – Fri 20.03.
    assert find_stalls(deployed, now=now) == []


def test_a_clock_stopped_after_the_deadline_keeps_its_overdue_days(deployed: Engine, clock: FixedClock) -> None:
    case_id = _open(deployed, clock, clock.now())
    clock.set(datetime(2026, 3, 9, 10, tzinfo=UTC))  # Monday: Fri and Mon overdue
    deployed.pause(case_id, reason="W-DOC", actor=ACTOR)
    [stall] = find_stalls(deployed, now=datetime(2026, 3, 12, 12, tzinfo=UTC))
    assert (stall.status, stall.overdue_office_days, stall.paused, stall.clock_stopped) == (STALLED, 2, True, True)
    assert stall.reason_code == "W-DOC"
    assert stall.due_at == datetime(2026, 3, 10, 23, tzinfo=UTC)  # moved by the 3 office days Tue–Thu


def test_the_overdue_query_uses_the_partial_index_on_sqlite(tmp_path: Path) -> None:
    """Checked on SQLite only: PostgreSQL's planner rightly prefers a scan on a tiny table."""
    sqlite = Engine(f"sqlite:///{tmp_path / 'plan.db'}")
    sqlite.upgrade_schema()
    query = overdue(datetime(2026, 3, 12, tzinfo=UTC))
    with sqlite.store.read() as conn:
        sql = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
        plan = " ".join(str(row) for row in conn.execute(sa.text("EXPLAIN QUERY PLAN " + sql)))
    sqlite.store.dispose()
    assert "ix_visit_open_due" in plan
