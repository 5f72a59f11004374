"""Who may call which route: the role sets, in one place, and the bearer-token scheme.

Each route declares one of the dependencies of :mod:`api.deps` built from these sets;
the permission-matrix test walks every route and every role against them.

* **caseworker**: processes (read), cases of their own team (a case of another team
  answers 404, so its existence is not revealed), findings.
* **coordinator**: everything about processes (validate, deploy) and all cases,
  anonymisation, timers, reports.
* **projectgroup**: reports and findings only; any case route answers 403.
* **admin**: accounts and the access log; no case data (403).
"""

from __future__ import annotations

from fastapi.security import OAuth2PasswordBearer

from engine.accounts import ADMIN, CASEWORKER, COORDINATOR, PROJECTGROUP

CASE_ROLES = frozenset({CASEWORKER, COORDINATOR})
PROCESS_READERS = frozenset({CASEWORKER, COORDINATOR})
PROCESS_EDITORS = frozenset({COORDINATOR})
REPORT_ROLES = frozenset({COORDINATOR, PROJECTGROUP})
OPERATORS = frozenset({COORDINATOR})
ADMINS = frozenset({ADMIN})

#: Roles that see every team's cases; the others see only their own team's.
ALL_TEAMS = frozenset({COORDINATOR})

# auto_error=False: a missing token is reported by our own problem document (401), and the
# scheme still appears in the OpenAPI document so /api/docs can log in.
bearer_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def parse_bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if that is what it is."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


__all__ = [
    "ADMINS",
    "ALL_TEAMS",
    "CASE_ROLES",
    "OPERATORS",
    "PROCESS_EDITORS",
    "PROCESS_READERS",
    "REPORT_ROLES",
    "bearer_scheme",
    "parse_bearer",
]
