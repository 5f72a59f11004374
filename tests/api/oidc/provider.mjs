// A real OpenID Connect provider for the SSO tests: panva's oidc-provider (OpenID Certified),
// configured like the municipality's IdP would be for kimflow. Nothing of kimflow in here.
//
//   node provider.mjs CONFIG.json
//
// CONFIG (written by the pytest fixture in tests/api/test_oidc.py):
//   issuer_path  path after http://127.0.0.1:PORT that forms the issuer ("" for none)
//   keys         the signing keys as private JWKs (two providers may share them)
//   clients      client metadata (client_id, client_secret, redirect_uris, ...)
//   users        login name -> claims (preferred_username, groups, team, ...)
//   audience     the "aud" of access tokens for the kimflow API (RFC 8707 resource server)
//   short_lived_client  a client whose tokens live one second (expiry tests)
//   discovery    extra discovery members (e.g. ADFS's access_token_issuer)
// It listens on 127.0.0.1 on a free port and prints {"issuer": ...} as its first line of output.
// Logins use the library's development interaction pages (any password; unknown names fail).

import http from 'node:http';
import { readFileSync } from 'node:fs';

import Provider from 'oidc-provider';

const spec = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const RESOURCE = 'urn:kimflow:api';
const OIDC_SCOPE = 'openid profile groups';

function ttl(seconds) {
  return (_ctx, _token, client) => (client?.clientId === spec.short_lived_client ? 1 : seconds);
}

function configuration() {
  return {
    clients: spec.clients,
    jwks: { keys: spec.keys },
    cookies: { keys: ['only-for-tests-not-a-secret'] },
    discovery: spec.discovery ?? {},
    async findAccount(_ctx, id) {
      const claims = spec.users[id];
      if (!claims) return undefined;
      return { accountId: id, claims: async () => ({ sub: id, ...claims }) };
    },
    // As a Keycloak group mapper or an ADFS issuance rule would: the claims in the ID token too.
    claims: { openid: ['sub'], profile: ['preferred_username', 'name'], groups: ['groups', 'team'] },
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    ttl: {
      AccessToken: ttl(600),
      IdToken: ttl(600),
      AuthorizationCode: 60,
      Interaction: 600,
      Session: 600,
      Grant: 600,
    },
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, indicator, client) => {
          if (indicator !== RESOURCE) throw new Error(`unknown resource ${indicator}`);
          return {
            scope: 'api',
            audience: spec.audience,
            accessTokenTTL: client.clientId === spec.short_lived_client ? 1 : 600,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    // JWT access tokens carry who the user is and their groups (Keycloak: mapper "add to access token").
    async extraTokenClaims(_ctx, token) {
      if (token.kind !== 'AccessToken' || !token.accountId) return undefined;
      return spec.users[token.accountId];
    },
    // First-party application: no consent page (the recipe "skip consent" of the library).
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope(OIDC_SCOPE);
      grant.addResourceScope(RESOURCE, 'api');
      await grant.save();
      return grant;
    },
  };
}

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}${spec.issuer_path ?? ''}`;
  const provider = new Provider(issuer, configuration());
  const callback = provider.callback();
  const prefix = spec.issuer_path ?? '';
  server.on('request', (req, res) => {
    // The provider is mounted under the issuer's path, as Keycloak's realms are.
    if (prefix && req.url.startsWith(prefix)) {
      req.originalUrl = req.url; // as Express does when mounting; the library builds its URLs from it
      req.url = req.url.slice(prefix.length) || '/';
      return callback(req, res);
    }
    if (prefix) {
      res.statusCode = 404;
      return res.end();
    }
    return callback(req, res);
  });
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
