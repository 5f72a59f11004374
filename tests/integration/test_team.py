"""The team of a case, on SQLite and PostgreSQL: given when it is opened, inherited by child cases.

The team decides who may see a case in the HTTP API, so it must be part of the case from
its first committed moment (stored with the row at insert, not stamped afterwards), and a
child case started by its parent (by a person or by a timer) must belong to the same team.
The scope of the API's requests (``engine.scope``) still learns which cases an operation
opened, inside the operation's transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from engine import Engine, FixedClock
from engine.scope import ScopedEngine, case_team, request_scope
from engine.store import cases_t
from tests.factories import process_yaml
from tests.integration.test_engine import CHILD, PARENT, PARENT_STEPS, deployed

# The parent of test_engine.py, but the child is started by a timer a week after opening.
TIMED_STEPS = {
    **PARENT_STEPS,
    "intake": {
        **PARENT_STEPS["intake"],
        "actions": {
            "order_test": {**PARENT_STEPS["intake"]["actions"]["order_test"], "system_only": True},
        },
        "timers": [{"after": "1 Woche", "action": "order_test"}],
    },
}
TIMED_PARENT = process_yaml(id="begleitung", version=2, title="Begleitung", steps=TIMED_STEPS)


@pytest.fixture
def scoped(engine: Engine, database_url: str, clock: FixedClock) -> Iterator[ScopedEngine]:
    """An engine on a :class:`~engine.scope.ScopedStore`, as the HTTP API runs it, on the migrated database."""
    instance = ScopedEngine(database_url, clock=clock)
    yield instance
    instance.store.dispose()


def test_a_case_belongs_to_the_team_it_was_opened_for(engine: Engine) -> None:
    deployed(engine, CHILD, PARENT)

    nord = engine.open_case("begleitung", actor="amira", team="nord")
    nobody = engine.open_case("begleitung", actor="amira")

    assert (nord.team, nobody.team) == ("nord", None)
    assert engine.get_case(nord.id).team == "nord"
    assert [c.team for c in engine.list_cases(process_id="begleitung")] == ["nord", None]
    assert engine.history(nord.id)[0].detail["team"] == "nord"


def test_child_cases_inherit_the_team_of_their_parent(engine: Engine) -> None:
    deployed(engine, CHILD, PARENT)
    parent = engine.open_case("begleitung", actor="amira", data={"name": "Amal"}, team="sued")

    engine.fire(parent.id, "order_test", actor="amira")

    (child,) = engine.children(parent.id)
    assert child.team == "sued"
    assert engine.history(child.id)[0].detail["team"] == "sued"


def test_a_child_started_by_a_timer_inherits_the_team_too(engine: Engine, clock: FixedClock) -> None:
    deployed(engine, CHILD, TIMED_PARENT)
    parent = engine.open_case("begleitung", actor="amira", team="west")

    clock.set(datetime(2026, 3, 20, 8, tzinfo=UTC))
    assert engine.tick().fired == 1

    (child,) = engine.children(parent.id)
    assert (child.team, child.parent_id) == ("west", parent.id)


def test_the_scope_learns_the_opened_cases_inside_the_transaction(scoped: ScopedEngine) -> None:
    deployed(scoped, CHILD, PARENT)
    seen: list[tuple[int, str | None]] = []

    with request_scope() as opening:

        def look(conn: sa.Connection) -> None:
            # Inside the transaction: the new row is there, with its team already.
            case_id = opening.opened[0]
            seen.append((case_id, conn.execute(sa.select(cases_t.c.team).where(cases_t.c.id == case_id)).scalar()))

        opening.before_commit.append(look)
        parent = scoped.open_case("begleitung", actor="amira", team="nord")
    with request_scope() as firing:
        scoped.fire(parent.id, "order_test", actor="amira")

    (child,) = scoped.children(parent.id)
    assert opening.opened == [parent.id] and seen == [(parent.id, "nord")]
    assert firing.opened == [child.id]
    assert case_team(scoped.store, child.id) == (True, "nord")


def test_a_failing_hook_rolls_the_opening_back(scoped: ScopedEngine) -> None:
    deployed(scoped, CHILD, PARENT)

    def refuse(conn: sa.Connection) -> None:
        raise RuntimeError("the access log could not be written")

    with request_scope() as scope, pytest.raises(RuntimeError):
        scope.before_commit.append(refuse)
        scoped.open_case("begleitung", actor="amira", team="nord")

    assert len(scope.opened) == 1
    assert case_team(scoped.store, scope.opened[0]) == (False, None)
    assert scoped.list_cases() == []


def test_without_a_scope_nothing_is_collected(scoped: ScopedEngine) -> None:
    deployed(scoped, CHILD, PARENT)

    case = scoped.open_case("begleitung", actor="amira", team="nord")

    assert case_team(scoped.store, case.id) == (True, "nord")
