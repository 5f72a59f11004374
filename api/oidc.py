"""Single sign-on with OpenID Connect: the municipality's identity provider behind kimflow's roles.

Off unless ``KIMFLOW_OIDC_ISSUER`` is set (see :class:`api.settings.Settings` and ``docs/oidc.md``).
The provider is found by discovery (``<issuer>/.well-known/openid-configuration``, cached for an
hour, the cached copy kept while the provider is unreachable); its signing keys come from its
``jwks_uri`` through PyJWT's :class:`jwt.PyJWKClient` (cached for five minutes, fetched again at
most every 30 s for an unknown ``kid``, so a key rotation is picked up). All JWT checks are
PyJWT's: signature with an asymmetric algorithm only, ``iss``, ``aud``, ``exp``/``iat``/``nbf``
with ``KIMFLOW_OIDC_LEEWAY_SECONDS``. This module knows no web framework beyond
:func:`client_for`, which keeps one :class:`OidcClient` per application.

**Who the user is.** :meth:`OidcClient.user_from_claims` maps verified claims to an
:class:`engine.accounts.User`: the name from ``KIMFLOW_OIDC_USERNAME_CLAIM``
(``preferred_username``), the role from the first entry of ``KIMFLOW_OIDC_ROLE_MAP`` whose
group or role name is in ``KIMFLOW_OIDC_ROLE_CLAIM`` (``groups``; ``realm_access.roles``
reaches into Keycloak's nested claim), the team from ``KIMFLOW_OIDC_TEAM_CLAIM``. SSO users
are not stored; :func:`with_local_account` lets a disabled local account of the same name
lock that name out of SSO too (``kimflow user disable NAME`` takes effect at once).

**The API** (:func:`api.deps.current_user`) accepts, besides kimflow's own opaque tokens, a
bearer token that is a JWT signed by the provider, issued by it (or, for AD FS, by its
``access_token_issuer``) for the audience ``KIMFLOW_OIDC_AUDIENCE`` (default: the client id):
:meth:`OidcClient.authenticate_bearer`.

**The web login** (authorization-code flow with PKCE; blocking calls, so run them in a
thread from async code)::

    from api import oidc

    client = oidc.client_for(request.app)            # None when SSO is off
    # 1. GET /anmelden/sso: send the browser to the provider.
    pending = client.begin_login("https://kimflow.kommune.de/anmelden/sso/zurueck")
    #    keep pending.to_dict() until the callback, bound to this browser (e.g. in a
    #    signed, HttpOnly, short-lived cookie), then redirect to pending.authorize_url.
    # 2. GET /anmelden/sso/zurueck?code=…&state=…&iss=…: the provider sent the browser back.
    result = client.finish_login(oidc.PendingLogin.from_dict(saved), dict(request.query_params))
    result.user                                       # the mapped User: start the session with it
    # 3. Logging out of kimflow may also end the provider's session:
    client.logout_url(result.id_token, "https://kimflow.kommune.de/")   # None if unsupported

:meth:`~OidcClient.begin_login` makes a fresh ``state`` (against CSRF), ``nonce`` (binds the
ID token to this login) and PKCE ``code_verifier`` (S256). :meth:`~OidcClient.finish_login`
checks the ``state`` (constant time), the login's age (at most 10 minutes), a provider
``error``, the ``iss`` response parameter (RFC 9207, mix-up defence), exchanges the code at
the token endpoint (client secret by HTTP Basic; a public client without a secret sends its
id), and validates the ID token (signature, ``iss``, ``aud`` = client id, ``azp``, ``exp``,
``nonce``) before mapping it to a user. The redirect URI must be registered at the provider
exactly as passed. Pass ``result.user`` through :func:`with_local_account` as the API does.
A user known only to the provider has ``id`` :data:`SSO_USER_ID` (0) for API requests; the
web login (:mod:`api.web.routes.sso`) gives them a password-less local account
(``Accounts.sso_account``) so that a stored session token can refer to it.

**Errors.** :class:`OidcInvalid` (401: bad, expired or foreign token, failed login),
:class:`OidcForbidden` (403: a valid identity without a kimflow role),
:class:`OidcUnavailable` (503: provider or its keys unreachable). All derive from
:class:`OidcError`; ``reason`` is a short code (``expired``, ``audience``, ``issuer``,
``signature``, ``claims``, ``state``, ``nonce``, ``provider-error``, ``no-role``, ``team``,
``no-user``, ``unreachable``, ``disabled``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import jwt

from api.settings import Settings
from engine.accounts import Accounts, User, UserNotFound

#: Signature algorithms accepted from the provider: asymmetric only (never ``none`` or HMAC).
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
DISCOVERY_PATH = "/.well-known/openid-configuration"
DISCOVERY_TTL = 3600.0
#: After a failed discovery, seconds until the next attempt (requests meanwhile fail fast or use the old copy).
DISCOVERY_RETRY = 15.0
JWKS_TTL = 300.0
HTTP_TIMEOUT = 5.0
#: Seconds a started web login may take until its callback.
LOGIN_TIMEOUT = 600.0
#: ``id`` of a User that exists only at the provider (no local account of that name).
SSO_USER_ID = 0


class OidcError(Exception):
    """Single sign-on failed; ``reason`` is a short code, the message says more (English)."""

    status = 401

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class OidcInvalid(OidcError):
    """The token or the login response is not acceptable (HTTP 401)."""


class OidcForbidden(OidcError):
    """A valid identity that kimflow gives no access (HTTP 403)."""

    status = 403


class OidcUnavailable(OidcError):
    """The provider (discovery, keys, token endpoint) cannot be reached (HTTP 503)."""

    status = 503


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """A started web login: what :meth:`OidcClient.finish_login` needs from :meth:`OidcClient.begin_login`.

    Secret until the callback (``code_verifier`` above all): keep it server-side or in a
    signed, ``HttpOnly`` cookie of this browser, and use it once.
    """

    authorize_url: str
    redirect_uri: str
    state: str
    nonce: str
    code_verifier: str
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PendingLogin:
        """The login saved with :meth:`to_dict` (:class:`OidcInvalid` ``state`` if it is not one)."""
        try:
            values = {name: data[name] for name in cls.__dataclass_fields__}
        except (KeyError, TypeError):
            raise OidcInvalid("state", "no login in progress") from None
        if not all(isinstance(values[k], str) for k in values if k != "created_at") or not isinstance(
            values["created_at"], int | float
        ):
            raise OidcInvalid("state", "no login in progress")
        return cls(**values)


@dataclass(frozen=True, slots=True)
class LoginResult:
    """A finished web login: the kimflow user, the verified ID token claims and the raw tokens."""

    user: User
    claims: dict[str, Any]
    id_token: str
    access_token: str | None


def looks_like_jwt(token: str) -> bool:
    """Whether a bearer token has the shape of a JWT (kimflow's own tokens contain no dots)."""
    return token.count(".") == 2


def _claim(claims: Mapping[str, Any], name: str) -> Any:
    """A claim by name; a dotted name not present as such is followed into nested objects."""
    if name in claims:
        return claims[name]
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [item for item in value if isinstance(item, str)]
    return []


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode("ascii")


class OidcClient:
    """kimflow as a relying party of one OpenID Connect provider (thread-safe; one per application)."""

    def __init__(self, settings: Settings, *, timeout: float = HTTP_TIMEOUT) -> None:
        if not settings.oidc_issuer or not settings.oidc_client_id:
            raise ValueError("OIDC needs KIMFLOW_OIDC_ISSUER and KIMFLOW_OIDC_CLIENT_ID")
        self.issuer = settings.oidc_issuer
        self.client_id = settings.oidc_client_id
        secret = settings.oidc_client_secret
        self.client_secret = secret.get_secret_value() if secret is not None else None
        self.audience = settings.oidc_audience or settings.oidc_client_id
        self.role_claim = settings.oidc_role_claim
        self.role_map = dict(settings.oidc_role_map)
        self.team_claim = settings.oidc_team_claim
        self.username_claim = settings.oidc_username_claim
        self.scopes = settings.oidc_scopes
        self.leeway = settings.oidc_leeway_seconds
        self.timeout = timeout
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._failed_at: float | None = None
        self._jwks: jwt.PyJWKClient | None = None

    # -- the provider --------------------------------------------------------------------

    def _fetch_json(self, request: urllib.request.Request) -> Any:
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.load(response)
        except urllib.error.HTTPError:
            raise
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise OidcUnavailable("unreachable", f"{request.full_url}: {exc}") from exc
        except ValueError as exc:
            raise OidcUnavailable("unreachable", f"{request.full_url} did not answer with JSON") from exc

    def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (cached; a stale copy is kept while the provider is down)."""
        with self._lock:
            now = time.monotonic()
            if self._metadata is not None and now - self._metadata_at < DISCOVERY_TTL:
                return self._metadata
            if self._failed_at is not None and now - self._failed_at < DISCOVERY_RETRY:
                if self._metadata is not None:
                    return self._metadata
                raise OidcUnavailable("unreachable", "OIDC discovery failed a moment ago")
            try:
                document = self._discover()
            except OidcUnavailable:
                self._failed_at = now
                if self._metadata is not None:
                    return self._metadata
                raise
            if self._jwks is None or self._jwks.uri != document["jwks_uri"]:
                self._jwks = jwt.PyJWKClient(document["jwks_uri"], lifespan=JWKS_TTL, timeout=self.timeout)
            self._metadata, self._metadata_at, self._failed_at = document, now, None
            return document

    def _discover(self) -> dict[str, Any]:
        url = self.issuer.rstrip("/") + DISCOVERY_PATH
        try:
            document = self._fetch_json(urllib.request.Request(url, headers={"Accept": "application/json"}))
        except urllib.error.HTTPError as exc:
            exc.close()
            raise OidcUnavailable("unreachable", f"OIDC discovery at {url} answered HTTP {exc.code}") from exc
        if not isinstance(document, dict) or document.get("issuer") != self.issuer:
            found = document.get("issuer") if isinstance(document, dict) else None
            raise OidcUnavailable("unreachable", f"discovery names issuer {found!r}, expected {self.issuer!r}")
        missing = [k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri") if not document.get(k)]
        if missing:
            raise OidcUnavailable("unreachable", f"discovery document lacks {', '.join(missing)}")
        return document

    def _signing_key(self, token: str) -> jwt.PyJWK:
        self.metadata()
        assert self._jwks is not None
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise OidcInvalid("signature", f"not a JWT: {exc}") from exc
        if header.get("alg") not in ALGORITHMS:
            raise OidcInvalid("signature", f"algorithm {header.get('alg')!r} is not accepted")
        try:
            if header.get("kid") is not None:
                return self._jwks.get_signing_key(header["kid"])
            keys = self._jwks.get_signing_keys()
        except (jwt.PyJWKClientConnectionError, jwt.PyJWKSetError) as exc:
            raise OidcUnavailable("unreachable", f"the provider's keys are unavailable: {exc}") from exc
        except jwt.PyJWTError as exc:
            raise OidcInvalid("signature", str(exc)) from exc
        if len(keys) != 1:
            raise OidcInvalid("signature", "the token names no key (kid) and the provider has several")
        return keys[0]

    def _decode(self, token: str, *, audience: str, issuers: list[str], require: list[str]) -> dict[str, Any]:
        key = self._signing_key(token)
        try:
            return jwt.decode(  # type: ignore[no-any-return]
                token,
                key,
                algorithms=ALGORITHMS,
                audience=audience,
                issuer=issuers,
                leeway=self.leeway,
                options={"require": require},
            )
        except jwt.ExpiredSignatureError as exc:
            raise OidcInvalid("expired", "the token has expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise OidcInvalid("audience", f"the token is not meant for {audience!r}") from exc
        except jwt.InvalidIssuerError as exc:
            raise OidcInvalid("issuer", "the token comes from another issuer") from exc
        except (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError, jwt.InvalidKeyError) as exc:
            raise OidcInvalid("signature", f"bad signature: {exc}") from exc
        except jwt.PyJWTError as exc:
            raise OidcInvalid("claims", f"invalid token: {exc}") from exc

    # -- who the user is -----------------------------------------------------------------

    def user_from_claims(self, claims: Mapping[str, Any]) -> User:
        """The kimflow user that verified ``claims`` describe.

        Raises:
            OidcInvalid: No usable user name (``no-user``).
            OidcForbidden: None of the user's groups maps to a kimflow role (``no-role``), or
                several teams (``team``).
        """
        name = _claim(claims, self.username_claim)
        if not isinstance(name, str) or not name.strip() or len(name) > 128 or any(c.isspace() for c in name):
            raise OidcInvalid("no-user", f"the token names no user in claim {self.username_claim!r}")
        groups = set(_strings(_claim(claims, self.role_claim)))
        role = next((role for group, role in self.role_map.items() if group in groups), None)
        if role is None:
            raise OidcForbidden("no-role", f"none of the user's {self.role_claim!r} maps to a kimflow role")
        team = None
        if self.team_claim:
            teams = sorted({t.strip() for t in _strings(_claim(claims, self.team_claim)) if t.strip()})
            if len(teams) > 1:
                raise OidcForbidden("team", f"the user belongs to several teams ({', '.join(teams)})")
            team = teams[0] if teams else None
        issued = claims.get("iat")
        created = datetime.fromtimestamp(issued, UTC) if isinstance(issued, int | float) else datetime.now(UTC)
        return User(SSO_USER_ID, name, role, team, False, created)

    # -- the API: bearer tokens ----------------------------------------------------------

    def verify_bearer(self, token: str) -> dict[str, Any]:
        """The verified claims of a bearer JWT for the API (audience ``KIMFLOW_OIDC_AUDIENCE``)."""
        metadata = self.metadata()
        issuers = [self.issuer]
        # AD FS signs access tokens as its federation service ("…/adfs/services/trust"), not as
        # the OIDC issuer, and says so in discovery.
        if isinstance(metadata.get("access_token_issuer"), str):
            issuers.append(metadata["access_token_issuer"])
        return self._decode(token, audience=self.audience, issuers=issuers, require=["exp", "iat", "iss", "aud"])

    def authenticate_bearer(self, token: str) -> User:
        """The user of a bearer JWT: :meth:`verify_bearer`, then :meth:`user_from_claims`."""
        return self.user_from_claims(self.verify_bearer(token))

    # -- the web login: authorization code with PKCE ------------------------------------

    def begin_login(self, redirect_uri: str, **extra: str) -> PendingLogin:
        """Start a login: the provider's authorize URL with fresh ``state``, ``nonce`` and PKCE challenge.

        ``extra`` adds authorization parameters, e.g. ``prompt="login"`` or ``login_hint=…``.
        """
        metadata = self.metadata()
        state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(64)
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": self.scopes,
            "state": state,
            "nonce": nonce,
            "code_challenge": _s256(verifier),
            "code_challenge_method": "S256",
            **extra,
        }
        endpoint = metadata["authorization_endpoint"]
        url = f"{endpoint}{'&' if '?' in endpoint else '?'}{urllib.parse.urlencode(params)}"
        return PendingLogin(url, redirect_uri, state, nonce, verifier, time.time())

    def finish_login(self, pending: PendingLogin, callback: Mapping[str, str]) -> LoginResult:
        """Finish a login with the query parameters of the callback request.

        Raises:
            OidcInvalid: Wrong ``state``, older than :data:`LOGIN_TIMEOUT`, an ``error`` from the provider,
                a foreign ``iss``, a refused code exchange, an invalid ID token.
            OidcForbidden: The user has no kimflow role.
            OidcUnavailable: The provider cannot be reached.
        """
        state = callback.get("state") or ""
        if not hmac.compare_digest(state.encode(), pending.state.encode()):
            raise OidcInvalid("state", "the login answer does not belong to this login (state)")
        if time.time() - pending.created_at > LOGIN_TIMEOUT:
            raise OidcInvalid("state", "the login took too long; start again")
        if callback.get("error"):
            description = callback.get("error_description") or ""
            raise OidcInvalid("provider-error", f"the provider refused: {callback['error']} {description}".strip())
        metadata = self.metadata()
        iss = callback.get("iss")
        if iss is not None and iss != self.issuer:
            raise OidcInvalid("issuer", "the login answer comes from another issuer (iss)")
        if iss is None and metadata.get("authorization_response_iss_parameter_supported"):
            raise OidcInvalid("issuer", "the login answer lacks the issuer (iss) the provider promises")
        code = callback.get("code")
        if not code:
            raise OidcInvalid("provider-error", "the login answer carries no code")
        tokens = self._exchange(metadata["token_endpoint"], pending, code)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise OidcInvalid("provider-error", "the token response carries no ID token")
        claims = self._decode(
            id_token, audience=self.client_id, issuers=[self.issuer], require=["exp", "iat", "iss", "aud", "sub"]
        )
        nonce = claims.get("nonce")
        if not isinstance(nonce, str) or not hmac.compare_digest(nonce.encode(), pending.nonce.encode()):
            raise OidcInvalid("nonce", "the ID token belongs to another login (nonce)")
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if (len(audiences) > 1 or "azp" in claims) and claims.get("azp") != self.client_id:
            raise OidcInvalid("audience", "the ID token was issued to another client (azp)")
        access_token = tokens.get("access_token")
        return LoginResult(
            self.user_from_claims(claims),
            claims,
            id_token,
            access_token if isinstance(access_token, str) else None,
        )

    def _exchange(self, endpoint: str, pending: PendingLogin, code: str) -> dict[str, Any]:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": pending.redirect_uri,
            "code_verifier": pending.code_verifier,
        }
        headers = {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"}
        if self.client_secret is not None:
            # RFC 6749 §2.3.1: both parts form-encoded before Base64.
            pair = f"{urllib.parse.quote_plus(self.client_id)}:{urllib.parse.quote_plus(self.client_secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        else:
            form["client_id"] = self.client_id
        request = urllib.request.Request(
            endpoint, data=urllib.parse.urlencode(form).encode("ascii"), headers=headers, method="POST"
        )
        try:
            body = self._fetch_json(request)
        except urllib.error.HTTPError as exc:
            try:
                error = json.load(exc)
            except ValueError:
                error = {}
            exc.close()
            detail = error.get("error", f"HTTP {exc.code}") if isinstance(error, dict) else f"HTTP {exc.code}"
            if exc.code >= 500:
                raise OidcUnavailable("unreachable", f"the token endpoint failed: {detail}") from exc
            raise OidcInvalid("provider-error", f"the provider refused the code: {detail}") from exc
        if not isinstance(body, dict):
            raise OidcInvalid("provider-error", "the token endpoint answered no JSON object")
        return body

    def logout_url(self, id_token: str | None, post_logout_redirect_uri: str | None = None) -> str | None:
        """Where to send the browser to end the provider's session too (None if it has no end-session endpoint)."""
        endpoint = self.metadata().get("end_session_endpoint")
        if not isinstance(endpoint, str):
            return None
        params = {"client_id": self.client_id}
        if id_token:
            params["id_token_hint"] = id_token
        if post_logout_redirect_uri:
            params["post_logout_redirect_uri"] = post_logout_redirect_uri
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{urllib.parse.urlencode(params)}"


def with_local_account(user: User, accounts: Accounts) -> User:
    """``user`` as seen against the local accounts: a disabled account of that name locks it out.

    An enabled local account of the same name lends its id and creation time (so the user's
    tokens and audit entries belong together); role and team stay the provider's.

    Raises:
        OidcInvalid: A local account of that name is disabled (``disabled``).
    """
    try:
        local = accounts.get_user(user.name)
    except UserNotFound:
        return user
    if local.disabled:
        raise OidcInvalid("disabled", f"the account '{user.name}' is disabled in kimflow")
    return User(local.id, user.name, user.role, user.team, False, local.created_at)


_CLIENTS_LOCK = threading.Lock()


def client_for(app: Any) -> OidcClient | None:
    """The application's :class:`OidcClient` (made on first use from ``app.state.settings``), or None if SSO is off.

    Tests may put their own on ``app.state.oidc_client``.
    """
    state = app.state
    client = getattr(state, "oidc_client", None)
    if client is not None:
        return client  # type: ignore[no-any-return]
    settings: Settings | None = getattr(state, "settings", None)
    if settings is None or not settings.oidc_issuer:
        return None
    with _CLIENTS_LOCK:
        client = getattr(state, "oidc_client", None)
        if client is None:
            client = OidcClient(settings)
            state.oidc_client = client
    return client  # type: ignore[no-any-return]


__all__ = [
    "ALGORITHMS",
    "LOGIN_TIMEOUT",
    "SSO_USER_ID",
    "LoginResult",
    "OidcClient",
    "OidcError",
    "OidcForbidden",
    "OidcInvalid",
    "OidcUnavailable",
    "PendingLogin",
    "client_for",
    "looks_like_jwt",
    "with_local_account",
]
