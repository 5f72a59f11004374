"""A demo installation for ``kimflow serve --demo``: a fresh SQLite database, a simulated year, one account per role.

Everything lives in a new temporary directory, so a demo never touches a real database.
The passwords are random and printed once on the console (a demo server listens on
localhost by default, but a fixed password would be one for anyone who reads the README).
"""

from __future__ import annotations

import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine import Engine, FixedClock
from engine.accounts import ADMIN, CASEWORKER, COORDINATOR, PROJECTGROUP, Accounts
from engine.simulation import SimulationSummary, simulate

#: The demo accounts: name -> role. The caseworker has no team, like the simulated cases.
DEMO_ACCOUNTS = {
    "fallmanagement": CASEWORKER,
    "koordination": COORDINATOR,
    "projektgruppe": PROJECTGROUP,
    "admin": ADMIN,
}


@dataclass(frozen=True, slots=True)
class Demo:
    database_url: str
    directory: Path
    passwords: dict[str, str]
    summary: SimulationSummary


def build_demo(processes: Path, *, cases: int, months: int = 12, seed: int = 1, directory: Path | None = None) -> Demo:
    """Create the demo database: schema, the processes, ``cases`` simulated cases ending today, the accounts."""
    directory = directory or Path(tempfile.mkdtemp(prefix="kimflow-demo-"))
    database_url = f"sqlite:///{directory / 'demo.db'}"
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0) - timedelta(days=30.4 * months))
    engine = Engine(database_url, clock=clock, durable=False)  # synthetic data: no fsync per commit
    try:
        engine.upgrade_schema()
        deployments = engine.deploy([processes], actor="demo")
        summary = simulate(
            engine, clock, cases=cases, months=months, seed=seed, process_ids=[d.process_id for d in deployments]
        )
        accounts = Accounts(engine.store, clock)
        passwords = {}
        for name, role in DEMO_ACCOUNTS.items():
            passwords[name] = secrets.token_urlsafe(9)
            accounts.add_user(name, passwords[name], role=role)
    finally:
        engine.store.dispose()
    return Demo(database_url, directory, passwords, summary)


__all__ = ["DEMO_ACCOUNTS", "Demo", "build_demo"]
