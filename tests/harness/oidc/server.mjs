// The OAuth 2.0 authorization server of the test harness: npm oidc-provider, configured for
// RFC 7591 dynamic client registration (with initial access tokens), RFC 7592 registration
// management (the registration access token rotates on every update), the client credentials
// grant, and resource indicators that issue JWT access tokens.
//
// Environment:
//   OIDC_PROVIDER_MODULE  the oidc-provider package entry (lib/index.js) to import
//   OIDC_PORT             the loopback port to listen on
//   OIDC_RESOURCE         the resource server (audience) of issued access tokens
//   OIDC_SCOPES           the scopes that resource server accepts (space separated)
//   OIDC_SECRET_TTL       seconds a client secret lives when registered with the
//                         "expiring" initial access token
//   OIDC_DEV_INTERACTIONS 1: oidc-provider's built-in sign-in and consent pages (any login
//                         and password sign in), for tests that walk through a user's consent
//
// When listening it prints one JSON line on stdout: {"issuer", "initial_access_token",
// "expiring_initial_access_token"}.
import crypto from 'node:crypto';
import { pathToFileURL } from 'node:url';

const { default: Provider, errors } = await import(pathToFileURL(process.env.OIDC_PROVIDER_MODULE).href);

const port = Number(process.env.OIDC_PORT);
const issuer = `http://127.0.0.1:${port}`;
const resource = process.env.OIDC_RESOURCE || 'urn:federation:test-api';
const scopes = process.env.OIDC_SCOPES || 'calls:read calls:write';
const secretTtl = Number(process.env.OIDC_SECRET_TTL || 3600);

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'harness', use: 'sig', alg: 'RS256' };

// State lives in this process only, like oidc-provider's own development adapter, which warns
// about itself at start.
const stores = new Map();
class MemoryAdapter {
  constructor(name) {
    this.name = name;
    if (!stores.has(name)) stores.set(name, new Map());
    this.store = stores.get(name);
  }

  async upsert(id, payload, expiresIn) {
    this.store.set(id, { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : undefined });
  }

  async find(id) {
    const entry = this.store.get(id);
    if (!entry) return undefined;
    if (entry.expiresAt && entry.expiresAt < Date.now()) {
      this.store.delete(id);
      return undefined;
    }
    return entry.payload;
  }

  async findByUserCode(userCode) {
    for (const [id, entry] of this.store) if (entry.payload.userCode === userCode) return this.find(id);
    return undefined;
  }

  async findByUid(uid) {
    for (const [id, entry] of this.store) if (entry.payload.uid === uid) return this.find(id);
    return undefined;
  }

  async consume(id) {
    const entry = this.store.get(id);
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    this.store.delete(id);
  }

  async revokeByGrantId(grantId) {
    for (const [id, entry] of this.store) if (entry.payload.grantId === grantId) this.store.delete(id);
  }
}

const provider = new Provider(issuer, {
  adapter: MemoryAdapter,
  jwks: { keys: [signingKey] },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  clients: [],
  // No grace after a client secret expires (the default is 15 s), so tests see expiry when it happens.
  clockTolerance: 0,
  scopes: ['openid', 'offline_access', ...scopes.split(' ')],
  pkce: { required: () => false },
  features: {
    devInteractions: { enabled: process.env.OIDC_DEV_INTERACTIONS === '1' },
    introspection: { enabled: true },
    revocation: { enabled: true },
    registration: {
      enabled: true,
      initialAccessToken: true,
      issueRegistrationAccessToken: true,
      policies: {
        // A client registered with this policy has a secret that expires.
        'expiring-secret': (ctx, properties) => {
          properties.client_secret_expires_at = Math.floor(Date.now() / 1000) + secretTtl;
        },
      },
    },
    registrationManagement: { enabled: true, rotateRegistrationAccessToken: true },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, indicator) => {
        if (indicator !== resource) throw new errors.InvalidTarget();
        return { scope: scopes, audience: resource, accessTokenTTL: 300, accessTokenFormat: 'jwt' };
      },
    },
  },
  ttl: {
    AccessToken: 300,
    AuthorizationCode: 60,
    ClientCredentials: 300,
    DeviceCode: 300,
    BackchannelAuthenticationRequest: 300,
    IdToken: 300,
    RefreshToken: 3600,
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
  },
});

const initial = await new provider.InitialAccessToken({}).save();
const expiring = await new provider.InitialAccessToken({ policies: ['expiring-secret'] }).save();

const server = provider.listen(port, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ issuer, initial_access_token: initial, expiring_initial_access_token: expiring })}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
