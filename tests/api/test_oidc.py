"""Single sign-on against a real OpenID Connect provider: panva's ``oidc-provider`` under Node.js.

The provider (``tests/api/oidc/provider.mjs``, the certified Node implementation pinned in
``tests/api/oidc/package.json``) runs on 127.0.0.1 with a Keycloak-like issuer path, real
discovery, JWKS, authorization endpoint with login pages, PKCE, token endpoint and JWT access
tokens for the kimflow API (RFC 8707/9068). Tests log in there as a browser would (httpx
following the provider's pages) and send what it issues to kimflow.

Needs ``node`` and ``npm ci`` in ``tests/api/oidc``; without them these tests are skipped,
unless ``KIMFLOW_REQUIRE_OIDC=1`` (CI), where they fail.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import shutil
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx2 as httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from api import oidc
from api.app import create_app
from api.settings import Settings
from tests.api.client import Api

PROVIDER_DIR = Path(__file__).parent / "oidc"
REQUIRE_ENV = "KIMFLOW_REQUIRE_OIDC"
PROBLEM = "https://kimflow.example/problems/"
REDIRECT = "https://kimflow.test/login/sso/callback"
# The web interface's callback (api/web/routes/sso.py; tests/web/test_pages_sso.py).
WEB_REDIRECT = "https://kimflow.test/anmelden/sso/zurueck"
CLIENT_ID = "kimflow"
CLIENT_SECRET = "nur-fuer-tests-kein-geheimnis-0123456789"
ROLE_MAP = {
    "KIM-Koordination": "coordinator",
    "KIM-Fallmanagement": "caseworker",
    "KIM-Projektgruppe": "projectgroup",
    "IT-Administration": "admin",
}
# The directory as the provider knows it: login name -> claims.
USERS: dict[str, dict[str, Any]] = {
    "amira": {"preferred_username": "amira", "groups": ["Alle", "KIM-Fallmanagement"], "team": "nord"},
    "kora": {"preferred_username": "kora", "groups": ["KIM-Fallmanagement", "KIM-Koordination"]},
    "paula": {"preferred_username": "paula", "groups": ["KIM-Projektgruppe"]},
    "ada": {"preferred_username": "ada", "groups": ["IT-Administration"]},
    "hausmeister": {"preferred_username": "hausmeister", "groups": ["Hausverwaltung"]},
    "zwei": {"preferred_username": "zwei", "groups": ["KIM-Fallmanagement"], "team": ["nord", "sued"]},
    # The same name as a local account of the API fixture (tests/api/conftest.py).
    "cw_sued": {"preferred_username": "cw_sued", "groups": ["KIM-Fallmanagement"], "team": "sued"},
}
CLIENTS = [
    {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uris": [REDIRECT, WEB_REDIRECT],
        "post_logout_redirect_uris": ["https://kimflow.test/"],
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
    },
    # Another application of the municipality: its ID tokens are not meant for kimflow.
    {
        "client_id": "fachverfahren",
        "client_secret": "fachverfahren-geheim-0123456789abcdef",
        "redirect_uris": ["https://fachverfahren.test/callback"],
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
    },
    # Tokens of this client live one second.
    {
        "client_id": "kurzlebig",
        "client_secret": "kurzlebig-geheim-0123456789abcdef",
        "redirect_uris": ["https://kurzlebig.test/callback"],
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
    },
    # A machine client: tokens for the kimflow API that name no user.
    {
        "client_id": "dienst",
        "client_secret": "dienst-geheim-0123456789abcdef",
        "redirect_uris": [],
        "grant_types": ["client_credentials"],
        "response_types": [],
    },
]
SECRETS = {c["client_id"]: c["client_secret"] for c in CLIENTS}
REDIRECTS = {c["client_id"]: (c["redirect_uris"] or [""])[0] for c in CLIENTS}


@dataclass
class Provider:
    """One running provider process and how to log in there."""

    issuer: str
    process: subprocess.Popen[bytes]
    metadata: dict[str, Any] = field(default_factory=dict)

    def browse(self, authorize_url: str, username: str) -> dict[str, str]:
        """What a browser does: open the authorize URL, sign in, and return the callback's query parameters."""
        with httpx.Client(follow_redirects=False, timeout=10) as browser:
            response = browser.get(authorize_url)
            for _ in range(10):
                location = response.headers.get("location")
                assert location, f"provider stopped at {response.status_code}: {response.text[:300]}"
                url = urllib.parse.urljoin(str(response.url), location)
                if urllib.parse.urlsplit(url).netloc != urllib.parse.urlsplit(self.issuer).netloc:
                    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
                response = browser.get(url)
                if response.status_code == 200 and 'name="prompt" value="login"' in response.text:
                    response = browser.post(url, data={"prompt": "login", "login": username, "password": "egal"})
            raise AssertionError("too many redirects at the provider")

    def tokens(self, username: str, client_id: str = CLIENT_ID) -> dict[str, Any]:
        """Log in as ``username`` with ``client_id`` (code flow with PKCE) and return the token response.

        Independent of kimflow's own client code, so the API is tested against what the provider issues.
        """
        verifier = "v" * 43 + username
        challenge = jwt.utils.base64url_encode(hashlib.sha256(verifier.encode()).digest()).decode()
        query = urllib.parse.urlencode(
            {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": REDIRECTS[client_id],
                "scope": "openid profile groups",
                "state": "s",
                "nonce": "n",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        callback = self.browse(f"{self.metadata['authorization_endpoint']}?{query}", username)
        assert "code" in callback, callback
        response = httpx.post(
            self.metadata["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": callback["code"],
                "redirect_uri": REDIRECTS[client_id],
                "code_verifier": verifier,
            },
            auth=(client_id, SECRETS[client_id]),
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def access_token(self, username: str, client_id: str = CLIENT_ID) -> str:
        return str(self.tokens(username, client_id)["access_token"])

    def client_credentials(self, client_id: str) -> str:
        response = httpx.post(
            self.metadata["token_endpoint"],
            data={"grant_type": "client_credentials", "scope": "api"},
            auth=(client_id, SECRETS[client_id]),
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])


def _provider_missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        return f"the test provider is not installed: run 'npm ci' in {PROVIDER_DIR}"
    return None


@pytest.fixture(scope="session")
def provider_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Provider]]:
    """Start providers (each its own node process on a free port); all stopped at the end of the session."""
    missing = _provider_missing()
    if missing is not None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{missing}; {REQUIRE_ENV}=1 requires the single sign-on tests to run", pytrace=False)
        pytest.skip(missing)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signing_key = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key)), "kid": "kommune-1", "use": "sig"}
    started: list[Provider] = []
    directory = tmp_path_factory.mktemp("oidc")

    def start(realm: str, *, discovery: dict[str, Any] | None = None) -> Provider:
        spec = {
            "issuer_path": f"/realms/{realm}",
            "keys": [signing_key],  # every provider here signs with the same key: only iss tells them apart
            "clients": CLIENTS,
            "users": USERS,
            "audience": CLIENT_ID,
            "short_lived_client": "kurzlebig",
            "discovery": discovery or {},
        }
        config = directory / f"{realm}.json"
        config.write_text(json.dumps(spec), encoding="utf-8")
        log = directory / f"{realm}.log"
        with log.open("wb") as stderr:
            process = subprocess.Popen(
                ["node", str(PROVIDER_DIR / "provider.mjs"), str(config)],
                cwd=PROVIDER_DIR,
                stdout=subprocess.PIPE,
                stderr=stderr,
            )
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 20)
        line = process.stdout.readline() if ready else b""
        if not line:
            process.kill()
            process.wait()
            process.stdout.close()
            pytest.fail(f"the OIDC provider did not start: {log.read_text(errors='replace')}", pytrace=False)
        provider = Provider(json.loads(line)["issuer"], process)
        started.append(provider)
        provider.metadata = httpx.get(provider.issuer + "/.well-known/openid-configuration", timeout=10).json()
        return provider

    yield start
    for provider in started:
        provider.process.terminate()
    for provider in started:
        try:
            provider.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            provider.process.kill()
            provider.process.wait()
        if provider.process.stdout is not None:
            provider.process.stdout.close()


@pytest.fixture(scope="session")
def idp(provider_factory: Callable[..., Provider]) -> Provider:
    """The municipality's provider (issuer ``http://127.0.0.1:PORT/realms/kommune``)."""
    return provider_factory("kommune")


@pytest.fixture(scope="session")
def foreign_idp(provider_factory: Callable[..., Provider]) -> Provider:
    """Another provider with the same signing key, clients and users, but another issuer."""
    return provider_factory("fremd")


def oidc_settings(database_url: str, issuer: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
        "token_lifetime_minutes": 30,
        "tick_enabled": False,
        "oidc_issuer": issuer,
        "oidc_client_id": CLIENT_ID,
        "oidc_client_secret": CLIENT_SECRET,
        "oidc_role_map": ROLE_MAP,
        "oidc_team_claim": "team",
        "oidc_scopes": "openid profile groups",
        "oidc_leeway_seconds": 0,
    }
    return Settings(**{**values, **overrides})


@pytest.fixture(scope="session")
def adfs_idp(provider_factory: Callable[..., Provider], foreign_idp: Provider) -> Provider:
    """A provider that, like AD FS, names another issuer for its access tokens (here: ``foreign_idp``'s)."""
    return provider_factory("adfs", discovery={"access_token_issuer": foreign_idp.issuer})


@pytest.fixture
def test_settings(database_url: str, idp: Provider) -> Settings:
    """The API fixture's settings (tests/api/conftest.py) with single sign-on at ``idp`` switched on."""
    return oidc_settings(database_url, idp.issuer)


@pytest.fixture
def client(idp: Provider) -> oidc.OidcClient:
    """kimflow's relying party for the web login, without an app."""
    return oidc.OidcClient(oidc_settings("sqlite://", idp.issuer))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: Any, status: int, slug: str, reason: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"] == PROBLEM + slug and body["status"] == status
    if reason is not None:
        assert body["reason"] == reason, body
    return body


# -- the web login: authorization code with PKCE ------------------------------------------------


def test_code_flow_with_pkce_gives_the_mapped_user(client: oidc.OidcClient, idp: Provider) -> None:
    pending = client.begin_login(REDIRECT)
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(pending.authorize_url).query))
    assert pending.authorize_url.startswith(idp.metadata["authorization_endpoint"] + "?")
    assert query["code_challenge_method"] == "S256" and query["state"] == pending.state
    assert query["nonce"] == pending.nonce and query["redirect_uri"] == REDIRECT
    assert pending.code_verifier not in pending.authorize_url
    saved = json.loads(json.dumps(pending.to_dict()))  # survives a round trip through a cookie

    callback = idp.browse(pending.authorize_url, "amira")
    assert callback["iss"] == idp.issuer
    result = client.finish_login(oidc.PendingLogin.from_dict(saved), callback)

    assert (result.user.name, result.user.role, result.user.team) == ("amira", "caseworker", "nord")
    assert result.claims["nonce"] == pending.nonce and result.claims["aud"] == CLIENT_ID
    assert result.access_token is not None
    logout = client.logout_url(result.id_token, "https://kimflow.test/")
    assert logout is not None and logout.startswith(idp.metadata["end_session_endpoint"] + "?")
    # A code is good for one exchange only: the provider refuses the replay.
    with pytest.raises(oidc.OidcInvalid) as replay:
        client.finish_login(pending, callback)
    assert replay.value.reason == "provider-error"


def test_the_first_mapped_group_decides_the_role(client: oidc.OidcClient, idp: Provider) -> None:
    pending = client.begin_login(REDIRECT)
    result = client.finish_login(pending, idp.browse(pending.authorize_url, "kora"))
    assert (result.user.name, result.user.role, result.user.team) == ("kora", "coordinator", None)


def test_a_login_answer_for_another_login_is_refused(client: oidc.OidcClient, idp: Provider) -> None:
    pending = client.begin_login(REDIRECT)
    callback = idp.browse(pending.authorize_url, "amira")
    other = client.begin_login(REDIRECT)
    with pytest.raises(oidc.OidcInvalid) as wrong_state:
        client.finish_login(other, callback)  # CSRF: the callback belongs to another browser's login
    assert wrong_state.value.reason == "state"
    with pytest.raises(oidc.OidcInvalid) as wrong_issuer:
        client.finish_login(pending, {**callback, "iss": "https://evil.example"})
    assert wrong_issuer.value.reason == "issuer"
    with pytest.raises(oidc.OidcInvalid) as no_issuer:
        client.finish_login(pending, {k: v for k, v in callback.items() if k != "iss"})
    assert no_issuer.value.reason == "issuer"
    # A code intercepted on its way back is useless without the verifier: the provider checks PKCE.
    with pytest.raises(oidc.OidcInvalid) as stolen_code:
        client.finish_login(replace(pending, code_verifier="x" * 64), callback)
    assert stolen_code.value.reason == "provider-error"
    with pytest.raises(oidc.OidcInvalid) as refused:
        client.finish_login(pending, {"state": pending.state, "error": "access_denied"})
    assert refused.value.reason == "provider-error"
    for broken in ({}, {**pending.to_dict(), "created_at": "gestern"}):
        with pytest.raises(oidc.OidcInvalid):
            oidc.PendingLogin.from_dict(broken)  # e.g. a cookie from an older version
    with pytest.raises(oidc.OidcInvalid) as too_late:
        client.finish_login(replace(pending, created_at=pending.created_at - oidc.LOGIN_TIMEOUT - 1), callback)
    assert too_late.value.reason == "state"


def test_a_login_without_a_kimflow_group_is_forbidden(client: oidc.OidcClient, idp: Provider) -> None:
    pending = client.begin_login(REDIRECT)
    with pytest.raises(oidc.OidcForbidden) as refused:
        client.finish_login(pending, idp.browse(pending.authorize_url, "hausmeister"))
    assert refused.value.reason == "no-role" and refused.value.status == 403


def test_discovery_must_name_the_configured_issuer(idp: Provider) -> None:
    # Configured with a trailing slash the issuer is another string than the provider's: refused.
    client = oidc.OidcClient(oidc_settings("sqlite://", idp.issuer + "/"))
    with pytest.raises(oidc.OidcUnavailable):
        client.metadata()


# -- the API: bearer tokens from the provider --------------------------------------------------


def test_tokens_from_the_provider_act_with_the_mapped_roles(api: Api, idp: Provider) -> None:
    amira = bearer(idp.access_token("amira"))
    opened = api.client.post("/api/v1/cases", headers=amira, json={"process_id": "intake", "data": {}})
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["id"]
    assert api.client.get(f"/api/v1/cases/{case_id}", headers=amira).status_code == 200
    # Her team comes from the provider: a local caseworker of team nord sees the case, one of sued does not.
    assert api.request("GET", f"/api/v1/cases/{case_id}", "cw_nord").status_code == 200
    assert api.request("GET", f"/api/v1/cases/{case_id}", "cw_sued").status_code == 404

    kora = bearer(idp.access_token("kora"))
    assert api.client.get(f"/api/v1/cases/{case_id}", headers=kora).status_code == 200
    assert api.client.post("/api/v1/timers/tick", headers=kora).status_code == 200

    ada = bearer(idp.access_token("ada"))
    assert api.client.get("/api/v1/users", headers=ada).status_code == 200
    assert_problem(api.client.get("/api/v1/cases", headers=ada), 403, "forbidden")
    # The access log names the SSO user and her role.
    entries = api.client.get("/api/v1/audit", headers=ada, params={"case_id": case_id}).json()["data"]
    assert {(e["actor"], e["role"]) for e in entries} >= {("amira", "caseworker"), ("kora", "coordinator")}


def test_a_projectgroup_user_from_the_provider_gets_403_on_case_routes(api: Api, idp: Provider) -> None:
    case = api.open_case()
    paula = bearer(idp.access_token("paula"))
    assert api.client.get("/api/v1/reports/stalls", headers=paula).status_code == 200
    for method, path in [
        ("GET", "/api/v1/stalls"),
        ("GET", "/api/v1/cases"),
        ("POST", "/api/v1/cases"),
        ("GET", f"/api/v1/cases/{case['id']}"),
        ("GET", f"/api/v1/cases/{case['id']}/history"),
        ("POST", f"/api/v1/cases/{case['id']}/pause"),
    ]:
        response = api.client.request(method, path, headers=paula, json={})
        body = assert_problem(response, 403, "forbidden")
        assert body["role"] == "projectgroup", (method, path)


def test_a_user_without_a_kimflow_group_gets_403(api: Api, idp: Provider) -> None:
    response = api.client.get("/api/v1/processes", headers=bearer(idp.access_token("hausmeister")))
    assert_problem(response, 403, "forbidden", "no-role")
    several = api.client.get("/api/v1/processes", headers=bearer(idp.access_token("zwei")))
    assert_problem(several, 403, "forbidden", "team")


def test_a_token_for_another_audience_is_refused(api: Api, idp: Provider) -> None:
    # The ID token the provider gave another application: right issuer and key, wrong audience.
    foreign = idp.tokens("amira", client_id="fachverfahren")["id_token"]
    assert jwt.decode(foreign, options={"verify_signature": False})["aud"] == "fachverfahren"
    body = assert_problem(api.client.get("/api/v1/cases", headers=bearer(foreign)), 401, "unauthorized", "audience")
    assert "ungültig" in body["detail"]


def test_an_api_expecting_another_audience_refuses_the_token(api: Api, idp: Provider) -> None:
    api.client.app.state.oidc_client = oidc.OidcClient(  # type: ignore[attr-defined]
        oidc_settings("sqlite://", idp.issuer, oidc_audience="api://kimflow")
    )
    response = api.client.get("/api/v1/cases", headers=bearer(idp.access_token("amira")))
    assert_problem(response, 401, "unauthorized", "audience")


def test_an_expired_token_is_refused(api: Api, idp: Provider) -> None:
    token = idp.access_token("amira", client_id="kurzlebig")  # lives one second
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 1 and claims["aud"] == CLIENT_ID
    time.sleep(max(0.0, claims["exp"] - time.time()) + 1.1)
    response = api.client.get("/api/v1/cases", headers=bearer(token))
    body = assert_problem(response, 401, "unauthorized", "expired")
    assert response.headers["www-authenticate"].startswith("Bearer")
    english = api.client.get("/api/v1/cases", headers={**bearer(token), "Accept-Language": "en"}).json()
    assert "expired" in english["detail"] and english["detail"] != body["detail"]


def test_a_token_from_another_issuer_is_refused(api: Api, foreign_idp: Provider) -> None:
    # Same signing key, client and user: only the issuer differs.
    token = foreign_idp.access_token("amira")
    response = api.client.get("/api/v1/cases", headers=bearer(token))
    assert_problem(response, 401, "unauthorized", "issuer")


def test_a_forged_token_is_refused(api: Api, idp: Provider) -> None:
    header, payload, signature = idp.access_token("amira").split(".")
    claims = json.loads(jwt.utils.base64url_decode(payload))
    claims["groups"] = ["KIM-Koordination"]  # amira promotes herself
    forged = ".".join([header, jwt.utils.base64url_encode(json.dumps(claims).encode()).decode(), signature])
    assert_problem(api.client.get("/api/v1/cases", headers=bearer(forged)), 401, "unauthorized", "signature")
    unsigned = jwt.encode(claims, key=None, algorithm="none")
    assert_problem(api.client.get("/api/v1/cases", headers=bearer(unsigned)), 401, "unauthorized", "signature")
    hmac_signed = jwt.encode(claims, key="x" * 32, algorithm="HS256", headers={"kid": "kommune-1"})
    assert_problem(api.client.get("/api/v1/cases", headers=bearer(hmac_signed)), 401, "unauthorized", "signature")


def test_a_machine_token_without_a_user_is_refused(api: Api, idp: Provider) -> None:
    token = idp.client_credentials("dienst")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["aud"] == CLIENT_ID and "preferred_username" not in claims
    assert_problem(api.client.get("/api/v1/cases", headers=bearer(token)), 401, "unauthorized", "no-user")


def test_disabling_the_local_account_of_the_same_name_locks_out_sso(api: Api, idp: Provider) -> None:
    token = bearer(idp.access_token("cw_sued"))
    assert api.client.get("/api/v1/cases", headers=token).status_code == 200
    assert api.request("POST", "/api/v1/users/cw_sued/disable", "admin").status_code == 200
    assert_problem(api.client.get("/api/v1/cases", headers=token), 401, "unauthorized", "disabled")


def test_kimflow_tokens_keep_working_beside_sso(api: Api) -> None:
    assert api.request("GET", "/api/v1/cases", "cw_nord").status_code == 200
    assert_problem(api.client.get("/api/v1/cases", headers=bearer("a.b.c")), 401, "unauthorized", "signature")


def test_adfs_access_token_issuer_is_accepted_for_bearer_tokens(
    api: Api, adfs_idp: Provider, foreign_idp: Provider
) -> None:
    # AD FS signs access tokens as ".../adfs/services/trust" and names that issuer in discovery.
    adfs = adfs_idp
    api.client.app.state.oidc_client = oidc.OidcClient(oidc_settings("sqlite://", adfs.issuer))  # type: ignore[attr-defined]
    assert api.client.get("/api/v1/cases", headers=bearer(foreign_idp.access_token("amira"))).status_code == 200
    assert api.client.get("/api/v1/cases", headers=bearer(adfs.access_token("amira"))).status_code == 200


def test_an_unreachable_provider_is_503(api: Api, idp: Provider) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    api.client.app.state.oidc_client = oidc.OidcClient(  # type: ignore[attr-defined]
        oidc_settings("sqlite://", f"http://127.0.0.1:{closed_port}/realms/kommune"), timeout=2
    )
    response = api.client.get("/api/v1/cases", headers=bearer(idp.access_token("amira")))
    assert_problem(response, 503, "unhealthy", "unreachable")


def test_a_provider_outage_does_not_log_everyone_out(provider_factory: Callable[..., Provider]) -> None:
    outage = provider_factory("ausfall")
    token = outage.access_token("amira")
    client = oidc.OidcClient(oidc_settings("sqlite://", outage.issuer), timeout=2)
    assert client.authenticate_bearer(token).name == "amira"
    outage.process.terminate()
    outage.process.wait(timeout=10)
    # Discovery and keys are cached: tokens already issued keep working while the provider is down.
    assert client.authenticate_bearer(token).role == "caseworker"
    with pytest.raises(oidc.OidcUnavailable):
        oidc.OidcClient(oidc_settings("sqlite://", outage.issuer), timeout=2).authenticate_bearer(token)


# -- settings -------------------------------------------------------------------------------


def test_sso_is_off_without_an_issuer() -> None:
    settings = Settings(environment="test", database_url="sqlite://")
    assert settings.oidc_issuer is None
    assert oidc.client_for(create_app(settings)) is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"oidc_client_id": None}, "KIMFLOW_OIDC_CLIENT_ID"),
        ({"oidc_role_map": {}}, "KIMFLOW_OIDC_ROLE_MAP is required"),
        ({"oidc_role_map": {"Chefs": "boss"}}, "unknown roles ['boss']"),
        ({"oidc_issuer": "sso.kommune.de"}, "issuer URL"),
        ({"environment": "production", "secret_key": "s" * 40}, "https"),
    ],
)
def test_sso_settings_are_checked(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        oidc_settings("sqlite://", "http://127.0.0.1:1/realms/kommune", **overrides)


def test_sso_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIMFLOW_OIDC_ISSUER", "https://sso.kommune.de/realms/kommune")
    monkeypatch.setenv("KIMFLOW_OIDC_CLIENT_ID", "kimflow")
    monkeypatch.setenv("KIMFLOW_OIDC_CLIENT_SECRET", "geheim")
    monkeypatch.setenv("KIMFLOW_OIDC_ROLE_CLAIM", "realm_access.roles")
    monkeypatch.setenv("KIMFLOW_OIDC_ROLE_MAP", '{"kim-koordination": "coordinator", "kim-cm": "caseworker"}')
    settings = Settings(environment="test")
    assert list(settings.oidc_role_map) == ["kim-koordination", "kim-cm"]  # the order decides
    assert settings.oidc_client_secret is not None and "geheim" not in repr(settings)
    mapped = oidc.OidcClient(settings).user_from_claims(
        {"preferred_username": "kai", "realm_access": {"roles": ["offline_access", "kim-cm"]}, "iat": 1}
    )
    assert (mapped.name, mapped.role, mapped.team) == ("kai", "caseworker", None)
