"""Settings of the HTTP API, from ``KIMFLOW_*`` environment variables (or an ``.env`` file).

Never instantiated at import time: :func:`api.app.create_app` builds one (or takes one
from a test). Outside ``dev`` and ``test`` a real secret key is required.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from engine.accounts import ROLES

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
        oidc_issuer: Single sign-on via OpenID Connect (see ``docs/oidc.md``): the issuer URL of the
            identity provider, e.g. ``https://sso.kommune.de/realms/kommune`` (Keycloak) or
            ``https://adfs.kommune.de/adfs`` (AD FS). Unset: SSO is off. ``https`` outside dev/test.
        oidc_client_id: kimflow's client id at the provider (required with an issuer).
        oidc_client_secret: Its client secret (for the web login's code exchange).
        oidc_audience: The ``aud`` that bearer tokens for the API must carry; default the client id.
        oidc_role_claim: The claim naming the user's groups or roles (``groups``; a dotted path such
            as ``realm_access.roles`` reaches into nested claims).
        oidc_role_map: Provider group or role name → kimflow role, as JSON
            (``{"KIM-Koordination": "coordinator", "KIM-Fallmanagement": "caseworker"}``);
            the first entry the user has decides. Required with an issuer.
        oidc_team_claim: The claim holding the user's team (unset: SSO users have no team).
        oidc_username_claim: The claim that becomes the kimflow user name (``preferred_username``);
            it must be unique and not changeable by the user at the provider.
        oidc_scopes: The scopes the web login asks for.
        oidc_leeway_seconds: Allowed clock difference to the provider when checking ``exp``/``iat``.
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
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_audience: str | None = None
    oidc_role_claim: str = "groups"
    oidc_role_map: dict[str, str] = Field(default_factory=dict)
    oidc_team_claim: str | None = None
    oidc_username_claim: str = "preferred_username"
    oidc_scopes: str = "openid profile"
    oidc_leeway_seconds: int = Field(default=30, ge=0, le=300)

    @model_validator(mode="after")
    def _require_secret(self) -> Settings:
        if self.environment not in ("dev", "test") and (self.secret_key == DEFAULT_SECRET or len(self.secret_key) < 32):
            raise ValueError(
                "KIMFLOW_SECRET_KEY must be set to a random value of at least 32 characters outside dev/test "
                "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return self

    @model_validator(mode="after")
    def _check_oidc(self) -> Settings:
        if not self.oidc_issuer:
            self.oidc_issuer = None
            return self
        url = urlsplit(self.oidc_issuer)
        if url.scheme not in ("https", "http") or not url.netloc or url.query or url.fragment:
            raise ValueError("KIMFLOW_OIDC_ISSUER must be the provider's issuer URL, e.g. https://sso.example/realms/x")
        if url.scheme != "https" and self.environment not in ("dev", "test"):
            raise ValueError("KIMFLOW_OIDC_ISSUER must use https outside dev/test")
        if not self.oidc_client_id:
            raise ValueError("KIMFLOW_OIDC_CLIENT_ID is required when KIMFLOW_OIDC_ISSUER is set")
        if not self.oidc_role_map:
            raise ValueError(
                "KIMFLOW_OIDC_ROLE_MAP is required when KIMFLOW_OIDC_ISSUER is set, "
                'e.g. {"KIM-Fallmanagement": "caseworker", "KIM-Koordination": "coordinator"}'
            )
        unknown = sorted({role for role in self.oidc_role_map.values() if role not in ROLES})
        if unknown:
            raise ValueError(f"KIMFLOW_OIDC_ROLE_MAP names unknown roles {unknown}; use {', '.join(ROLES)}")
        return self


__all__ = ["DEFAULT_SECRET", "Settings"]
