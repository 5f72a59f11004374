"""Accounts for single sign-on users, on SQLite and PostgreSQL: ``Accounts.sso_account``.

kimflow's browser sessions are tokens that belong to a row of the users table, so a user the
identity provider vouched for needs one: made at the first web login without a password,
brought up to date with the provider's role and team at every later one, and still locked
out by disabling it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import partial

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from engine import Engine, FixedClock
from engine.accounts import NO_PASSWORD, Accounts, InvalidAccount, InvalidCredentials, UserNotFound
from engine.store import users_t
from tests.integration.test_concurrency import ROUNDS, race

FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
DAY = timedelta(hours=9)


@pytest.fixture
def accounts(engine: Engine, clock: FixedClock) -> Accounts:
    return Accounts(engine.store, clock, hasher=FAST_HASHER)


def stored_hash(engine: Engine, name: str) -> str:
    with engine.store.read() as conn:
        return str(conn.execute(sa.select(users_t.c.password_hash).where(users_t.c.name == name)).scalar_one())


def test_the_first_login_makes_an_account_that_can_hold_a_session(accounts: Accounts, engine: Engine) -> None:
    with pytest.raises(UserNotFound):
        accounts.get_user("amira")
    user = accounts.sso_account("amira", role="caseworker", team="nord")
    assert (user.name, user.role, user.team, user.disabled) == ("amira", "caseworker", "nord", False)
    assert user.id > 0 and accounts.get_user("amira") == user
    issued = accounts.issue_token(user, DAY)
    assert accounts.resolve_token(issued.token) == user
    assert stored_hash(engine, "amira") == NO_PASSWORD


def test_no_password_ever_opens_an_sso_account(accounts: Accounts) -> None:
    accounts.sso_account("amira", role="caseworker")
    for guess in ("", NO_PASSWORD, "!sso", "amira", "irgendein-passwort"):
        with pytest.raises(InvalidCredentials):
            accounts.authenticate("amira", guess)


def test_role_and_team_follow_the_provider_at_every_login(accounts: Accounts, clock: FixedClock) -> None:
    first = accounts.sso_account("amira", role="caseworker", team="nord")
    session = accounts.issue_token(first, DAY).token
    clock.advance(timedelta(hours=1))
    again = accounts.sso_account("amira", role="coordinator", team=None)
    assert (again.id, again.created_at) == (first.id, first.created_at)
    assert (again.role, again.team) == ("coordinator", None)
    assert accounts.get_user("amira") == again
    # The running session is the same account: it acts with the new role from now on.
    assert accounts.resolve_token(session).role == "coordinator"
    assert accounts.sso_account("amira", role="coordinator", team="  ") == again  # a blank team is none
    assert len([u for u in accounts.list_users() if u.name == "amira"]) == 1


def test_a_local_account_of_the_same_name_is_the_same_person(accounts: Accounts, engine: Engine) -> None:
    local = accounts.add_user("cw_sued", "geheim-123", role="caseworker", team="sued")
    before = stored_hash(engine, "cw_sued")
    user = accounts.sso_account("cw_sued", role="coordinator", team=None)
    assert (user.id, user.role, user.team) == (local.id, "coordinator", None)
    # Its password is left alone (e.g. an administrator's way in while the provider is down).
    assert stored_hash(engine, "cw_sued") == before
    assert accounts.authenticate("cw_sued", "geheim-123").role == "coordinator"


def test_a_disabled_account_stays_disabled(accounts: Accounts) -> None:
    accounts.sso_account("amira", role="caseworker", team="nord")
    accounts.disable_user("amira")
    with pytest.raises(InvalidCredentials):
        accounts.sso_account("amira", role="admin")
    stored = accounts.get_user("amira")
    assert stored.disabled and (stored.role, stored.team) == ("caseworker", "nord")
    # A local account disabled to lock the name out before its first single sign-on, likewise.
    accounts.add_user("gesperrt", "geheim-123", role="caseworker")
    accounts.disable_user("gesperrt")
    with pytest.raises(InvalidCredentials):
        accounts.sso_account("gesperrt", role="caseworker")


@pytest.mark.parametrize(
    ("name", "role", "team", "problem"),
    [
        ("", "caseworker", None, "name"),
        ("zwei worte", "caseworker", None, "name"),
        ("x" * 129, "caseworker", None, "name"),
        ("amira", "chef", None, "role"),
        ("amira", "caseworker", "t" * 65, "team"),
    ],
)
def test_what_the_users_table_cannot_hold_is_refused(
    accounts: Accounts, name: str, role: str, team: str | None, problem: str
) -> None:
    with pytest.raises(InvalidAccount) as refused:
        accounts.sso_account(name, role=role, team=team)
    assert set(refused.value.problems) == {problem}
    assert accounts.list_users() == []


def test_two_first_logins_at_once_make_one_account(
    engine: Engine, engine_factory: Callable[..., Engine], clock: FixedClock
) -> None:
    # Two server processes, each with its own connection pool, see the same new user at once
    # (a double click, two tabs). On PostgreSQL both may find no row and insert; the unique
    # name lets one insert fail, and that login finds the other's account instead.
    racers = [Accounts(engine_factory().store, clock, hasher=FAST_HASHER) for _ in range(2)]
    for round_ in range(ROUNDS):
        name = f"neu{round_}"
        results = race(*(partial(r.sso_account, name, role="caseworker", team="nord") for r in racers))
        for result in results:
            if isinstance(result, BaseException):
                raise result
        assert results[0] == results[1]
    assert len(Accounts(engine.store, clock).list_users()) == ROUNDS
