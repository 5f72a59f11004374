"""Fixtures for the HTTP API: an app on each backend, one user per role, and request helpers.

The app is ``create_app(test_settings)`` on the ``database_url`` of ``tests/conftest.py``
(SQLite and PostgreSQL), migrated and with the factory process deployed by the ``engine``
fixture, driven by the same fixed ``clock``. Users are created through
:class:`engine.accounts.Accounts`; their tokens are issued directly (a login per test
would only repeat argon2's deliberate slowness).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from engine import Engine, FixedClock
from engine.accounts import Accounts
from tests.api.client import Api
from tests.factories import process_yaml

PASSWORD = "geheim-123"
# Cheap argon2id parameters: the production defaults cost ~50 ms per hash on purpose.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
# name -> (role, team)
USERS: dict[str, tuple[str, str | None]] = {
    "cw_nord": ("caseworker", "nord"),
    "cw_sued": ("caseworker", "sued"),
    "koordination": ("coordinator", None),
    "projektgruppe": ("projectgroup", None),
    "admin": ("admin", None),
}
ROLE_USERS = {"caseworker": "cw_nord", "coordinator": "koordination", "projectgroup": "projektgruppe", "admin": "admin"}


@pytest.fixture
def test_settings(database_url: str) -> Settings:
    return Settings(environment="test", database_url=database_url, token_lifetime_minutes=30, tick_enabled=False)


@pytest.fixture
def api(engine: Engine, test_settings: Settings, clock: FixedClock) -> Iterator[Api]:
    """The app on a migrated database with the ``intake`` process deployed and one user per role."""
    engine.deploy_text(process_yaml(), actor="setup", file="intake.yaml")
    accounts = Accounts(engine.store, clock, hasher=FAST_HASHER)
    for name, (role, team) in USERS.items():
        accounts.add_user(name, PASSWORD, role=role, team=team)
    app = create_app(test_settings, clock=clock)
    with TestClient(app) as client:
        api = Api(client, {}, engine, clock, accounts)
        api.login_all()
        yield api
