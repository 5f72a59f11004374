"""Property-based run of schemathesis against /api/openapi.json: no 5xx, responses conform to the schema.

Authenticated as a coordinator (who may call most routes), on a migrated SQLite database
with the factory process deployed and a few cases. Each operation gets a small number of
generated requests, so the whole run stays well under a minute in the normal suite.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from api.app import create_app
from api.settings import Settings
from engine import Engine, FixedClock
from engine.accounts import Accounts
from tests.api.conftest import FAST_HASHER, PASSWORD
from tests.conftest import START
from tests.factories import process_yaml

MAX_EXAMPLES = 25
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def test_schemathesis_finds_no_server_errors_and_no_schema_violations(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'kimflow.db'}"
    clock = FixedClock(START)
    engine = Engine(url, clock=clock)
    engine.upgrade_schema()
    engine.deploy_text(process_yaml(), actor="setup", file="intake.yaml")
    accounts = Accounts(engine.store, clock, hasher=FAST_HASHER)
    user = accounts.add_user("koordination", PASSWORD, role="coordinator")
    token = accounts.issue_token(user, timedelta(days=1)).token
    for _ in range(3):
        engine.open_case("intake", actor="setup", data={"name": "Amira"})
    app = create_app(Settings(environment="test", database_url=url), clock=clock)
    headers = {"Authorization": f"Bearer {token}"}
    failures: list[str] = []
    statuses: dict[int, int] = {}
    with TestClient(app):  # runs the lifespan: the app's engine exists while schemathesis calls it
        schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
        for result in schema.get_all_operations():
            operation = result.ok()

            @given(case=operation.as_strategy())
            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def run(case: schemathesis.Case) -> None:
                response = case.call(headers=headers)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                case.validate_response(response, checks=CHECKS, headers=headers)

            try:
                run()
            except Exception as exc:  # collect every operation's failure, then report them all
                failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:2000]}")
    engine.store.dispose()
    assert failures == [], "\n\n".join(failures)
    # Generated data is mostly refused (404 for unknown ids, 422 for invalid bodies); some must succeed.
    assert sum(statuses.values()) > 300 and statuses.get(200, 0) > 10, statuses


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
