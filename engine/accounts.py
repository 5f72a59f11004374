"""Local accounts and short-lived bearer tokens, without any web framework.

A user has a name, an argon2id password hash (argon2-cffi, the only module importing it),
one role (``caseworker``, ``coordinator``, ``projectgroup`` or ``admin``), an optional team
and a disabled flag. A token is 32 random bytes handed to the client once; only its SHA-256
is stored, with an expiry, so a leaked database does not leak usable tokens. Time comes from
the caller's clock. What each role may do is decided in ``api/``; this module only knows
which roles exist.

Users whom the municipality's identity provider vouched for (single sign-on, ``api/oidc.py``)
get an account too, made or refreshed at each web login by :meth:`Accounts.sso_account`:
kimflow's session tokens belong to a row of the users table. Such an account has no password
(:data:`NO_PASSWORD` is no hash, so no password ever verifies), and disabling it locks the
name out of single sign-on as well.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from engine.clock import Clock
from engine.errors import EngineError, StoreError
from engine.store import Store, tokens_t, users_t

CASEWORKER = "caseworker"
COORDINATOR = "coordinator"
PROJECTGROUP = "projectgroup"
ADMIN = "admin"
ROLES = (CASEWORKER, COORDINATOR, PROJECTGROUP, ADMIN)

_hasher = PasswordHasher()  # argon2id with the library's (RFC 9106 low-memory) defaults
# Verified against when the user does not exist, so that a wrong name costs as long as a
# wrong password and response times do not reveal which names exist (a fixed hash of a fixed
# text with the default parameters, so importing this module computes nothing).
_DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$YWJjZGVmZ2hpamtsbW5vcA$stuciw9WuOkCjUnuh66/usbahD4M4F/2l+to+g0Pcok"
#: The stored "hash" of an account made for single sign-on: not an argon2 hash, so no password
#: matches it (argon2 hashes start with ``$argon2``).
NO_PASSWORD = "!sso"
# The column widths of the users table (engine/store.py): checked here, so PostgreSQL's
# varchar limits never surface as database errors.
_NAME_MAX = 128
_TEAM_MAX = 64


class AccountError(EngineError):
    """An operation on accounts failed."""


class InvalidAccount(AccountError):
    """A user cannot be created like this (bad name, role or password); ``problems`` says why."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = dict(problems)
        super().__init__("; ".join(f"{k}: {v}" for k, v in sorted(self.problems.items())))


class UserExists(AccountError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"user '{name}' exists already")


class UserNotFound(AccountError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"there is no user '{name}'")


class InvalidCredentials(AccountError):
    """Wrong name or password, a disabled account, or an unknown or expired token (deliberately alike)."""

    def __init__(self) -> None:
        super().__init__("invalid credentials")


@dataclass(frozen=True, slots=True)
class User:
    """An account as the rest of the program sees it (never with its hash)."""

    id: int
    name: str
    role: str
    team: str | None
    disabled: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token as handed to the client: the only time the plain token exists."""

    token: str
    user: User
    expires_at: datetime


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


_USER_COLUMNS = (users_t.c.id, users_t.c.name, users_t.c.role, users_t.c.team, users_t.c.disabled, users_t.c.created_at)


class Accounts:
    """Users and tokens in the store.

    Args:
        store: Where accounts live (the engine's store).
        clock: Source of "now" for creation times and token expiry.
        hasher: The argon2id parameters (tests pass cheap ones; hashes record their own parameters,
            so verifying works whatever the hasher's settings).
    """

    def __init__(self, store: Store, clock: Clock, *, hasher: PasswordHasher | None = None) -> None:
        self.store = store
        self.clock = clock
        self.hasher = hasher or _hasher

    def add_user(self, name: str, password: str, *, role: str, team: str | None = None) -> User:
        """Create a user.

        Raises:
            InvalidAccount: Empty or overlong name, unknown role, password shorter than 8 characters.
            UserExists: The name is taken.
        """
        problems = {}
        name = name.strip()
        if not name or len(name) > 128 or any(c.isspace() for c in name):
            problems["name"] = "a user name has 1 to 128 characters and no spaces"
        if role not in ROLES:
            problems["role"] = f"unknown role '{role}'; use one of {', '.join(ROLES)}"
        if len(password) < 8:
            problems["password"] = "a password has at least 8 characters"
        if team is not None and not team.strip():
            team = None
        if problems:
            raise InvalidAccount(problems)
        now = self.clock.now()
        with self.store.transaction() as conn:
            if conn.execute(sa.select(users_t.c.id).where(users_t.c.name == name)).first() is not None:
                raise UserExists(name)
            user_id = conn.execute(
                sa.insert(users_t).values(
                    name=name,
                    password_hash=self.hasher.hash(password),
                    role=role,
                    team=team,
                    disabled=False,
                    created_at=now,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        return User(int(user_id), name, role, team, False, now)

    def list_users(self) -> list[User]:
        """Every account, by name."""
        with self.store.read() as conn:
            return [User(*row) for row in conn.execute(sa.select(*_USER_COLUMNS).order_by(users_t.c.name))]

    def get_user(self, name: str) -> User:
        """One account.

        Raises:
            UserNotFound: No such user.
        """
        with self.store.read() as conn:
            row = conn.execute(sa.select(*_USER_COLUMNS).where(users_t.c.name == name)).first()
        if row is None:
            raise UserNotFound(name)
        return User(*row)

    def disable_user(self, name: str) -> User:
        """Disable an account and revoke its tokens.

        Raises:
            UserNotFound: No such user.
        """
        with self.store.transaction() as conn:
            row = conn.execute(sa.select(*_USER_COLUMNS).where(users_t.c.name == name)).first()
            if row is None:
                raise UserNotFound(name)
            conn.execute(sa.update(users_t).where(users_t.c.id == row.id).values(disabled=True))
            conn.execute(sa.delete(tokens_t).where(tokens_t.c.user_id == row.id))
        return User(row.id, row.name, row.role, row.team, True, row.created_at)

    def sso_account(self, name: str, *, role: str, team: str | None = None) -> User:
        """The local account of a user the identity provider vouched for, made or brought up to date.

        A new account gets no password (:data:`NO_PASSWORD`); an existing one keeps its
        password (a local account of the same name is the same person, see ``docs/oidc.md``)
        and takes the provider's role and team, which count at every login. The result can be
        handed to :meth:`issue_token`.

        Raises:
            InvalidAccount: A name :meth:`add_user` would refuse, an unknown role, an overlong team.
            InvalidCredentials: The account is disabled (disabling locks the name out of single
                sign-on too).
        """
        problems = {}
        if not name or len(name) > _NAME_MAX or any(c.isspace() for c in name):
            problems["name"] = "a user name has 1 to 128 characters and no spaces"
        if role not in ROLES:
            problems["role"] = f"unknown role '{role}'; use one of {', '.join(ROLES)}"
        team = team.strip() if team is not None and team.strip() else None
        if team is not None and len(team) > _TEAM_MAX:
            problems["team"] = f"a team name has at most {_TEAM_MAX} characters"
        if problems:
            raise InvalidAccount(problems)
        try:
            return self._upsert_sso_account(name, role, team)
        except StoreError as exc:
            if not isinstance(exc.__cause__, sa.exc.IntegrityError):
                raise
            # Two first logins of the same person at once: the other one has just made the account.
            return self._upsert_sso_account(name, role, team)

    def _upsert_sso_account(self, name: str, role: str, team: str | None) -> User:
        now = self.clock.now()
        with self.store.transaction() as conn:
            row = conn.execute(sa.select(*_USER_COLUMNS).where(users_t.c.name == name)).first()
            if row is None:
                user_id = conn.execute(
                    sa.insert(users_t).values(
                        name=name, password_hash=NO_PASSWORD, role=role, team=team, disabled=False, created_at=now
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
                return User(int(user_id), name, role, team, False, now)
            if row.disabled:
                raise InvalidCredentials()
            if (row.role, row.team) != (role, team):
                conn.execute(sa.update(users_t).where(users_t.c.id == row.id).values(role=role, team=team))
            return User(row.id, name, role, team, False, row.created_at)

    def authenticate(self, name: str, password: str) -> User:
        """The user with this name and password, if enabled.

        Raises:
            InvalidCredentials: Otherwise (the same error whatever was wrong).
        """
        with self.store.read() as conn:
            row = conn.execute(sa.select(*_USER_COLUMNS, users_t.c.password_hash).where(users_t.c.name == name)).first()
        # Without a usable hash (no such user, or an account for single sign-on) a dummy hash is
        # verified all the same, so the answer takes as long and says nothing about the name.
        stored = row.password_hash if row is not None else NO_PASSWORD
        try:
            self.hasher.verify(stored if stored != NO_PASSWORD else _DUMMY_HASH, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            raise InvalidCredentials() from None
        if row is None or stored == NO_PASSWORD or row.disabled:
            raise InvalidCredentials()
        return User(*row[:6])

    def issue_token(self, user: User, lifetime: timedelta) -> IssuedToken:
        """A new bearer token for ``user``, valid for ``lifetime``; expired tokens are purged on the way."""
        token = secrets.token_urlsafe(32)
        now = self.clock.now()
        expires_at = now + lifetime
        with self.store.transaction() as conn:
            conn.execute(sa.delete(tokens_t).where(tokens_t.c.expires_at < now))
            conn.execute(
                sa.insert(tokens_t).values(
                    token_hash=_hash_token(token), user_id=user.id, issued_at=now, expires_at=expires_at
                )
            )
        return IssuedToken(token, user, expires_at)

    def revoke_token(self, token: str) -> None:
        """End a token now (logging out); an unknown token is no error, the outcome is the same."""
        with self.store.transaction() as conn:
            conn.execute(sa.delete(tokens_t).where(tokens_t.c.token_hash == _hash_token(token)))

    def resolve_token(self, token: str) -> User:
        """The enabled user a valid, unexpired token belongs to.

        Raises:
            InvalidCredentials: Unknown, expired, or the user is disabled.
        """
        now = self.clock.now()
        with self.store.read() as conn:
            row = conn.execute(
                sa.select(*_USER_COLUMNS)
                .join(tokens_t, tokens_t.c.user_id == users_t.c.id)
                .where(tokens_t.c.token_hash == _hash_token(token), tokens_t.c.expires_at > now)
            ).first()
        if row is None or row.disabled:
            raise InvalidCredentials()
        return User(*row)


__all__ = [
    "ADMIN",
    "CASEWORKER",
    "COORDINATOR",
    "NO_PASSWORD",
    "PROJECTGROUP",
    "ROLES",
    "AccountError",
    "Accounts",
    "InvalidAccount",
    "InvalidCredentials",
    "IssuedToken",
    "User",
    "UserExists",
    "UserNotFound",
]
