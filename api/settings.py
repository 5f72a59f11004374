"""Settings of the HTTP API, from ``KIMFLOW_*`` environment variables (or an ``.env`` file).

Never instantiated at import time: :func:`api.app.create_app` builds one (or takes one
from a test). Outside ``dev`` and ``test`` a real secret key is required.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET = "change-me"


class Settings(BaseSettings):
    """Configuration of one API process.

    Attributes:
        environment: ``dev``, ``test`` or ``production``; production refuses the default secret.
        database_url: SQLAlchemy URL of the engine's database.
        processes_dir: Where process definitions live (for operators; the API deploys from request bodies).
        token_lifetime_minutes: How long a bearer token is valid.
        secret_key: Server secret (at least 32 characters outside dev/test).
        auto_upgrade: Run the migrations when the app starts (dev and tests; production runs ``kimflow db upgrade``).
        tick_enabled: Fire due timers in the background (``KIMFLOW_TICK_ENABLED=false`` switches it off,
            e.g. in tests or when an external scheduler calls ``POST /api/v1/timers/tick``).
        tick_interval: Seconds between two background ticks (``KIMFLOW_TICK_INTERVAL``); the first
            tick runs one interval after start. Every worker ticks; a timer still fires only once.
    """

    model_config = SettingsConfigDict(env_prefix="KIMFLOW_", env_file=".env", extra="ignore")

    environment: Literal["dev", "test", "production"] = "production"
    database_url: str = "sqlite:///kimflow.db"
    processes_dir: Path = Path("processes")
    token_lifetime_minutes: int = Field(default=60, ge=1, le=24 * 60)
    secret_key: str = DEFAULT_SECRET
    auto_upgrade: bool = False
    tick_enabled: bool = True
    tick_interval: float = Field(default=60.0, gt=0, le=24 * 60 * 60)

    @model_validator(mode="after")
    def _require_secret(self) -> Settings:
        if self.environment not in ("dev", "test") and (self.secret_key == DEFAULT_SECRET or len(self.secret_key) < 32):
            raise ValueError(
                "KIMFLOW_SECRET_KEY must be set to a random value of at least 32 characters outside dev/test "
                "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return self


__all__ = ["DEFAULT_SECRET", "Settings"]
