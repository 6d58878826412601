// The OpenID provider the OAuth tests start on loopback: oidc-provider (a certified
// implementation), configured for client_credentials and authorization_code + PKCE,
// issuing JWT access tokens for the resource indicator the test names (RFC 8707).
//
//   node idp.mjs <audience>
//
// prints `IDP_URL http://127.0.0.1:<port>` once it listens. Test-only routes under
// /__test/ rotate the signing keys, forge tokens the server must refuse, and count
// JWKS fetches; the sign-in step approves at once as the `login_hint` (default alice).
import http from 'node:http';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

const AUDIENCE = process.argv[2];
if (!AUDIENCE) {
  console.error('usage: node idp.mjs <audience>');
  process.exit(2);
}
const SCOPES = 'nessus:read nessus:scan nessus:scan:authenticated nessus:admin';
const CLIENT_SECRET = 'test-client-secret-0123456789';

function key(kind, kid) {
  const { privateKey, publicKey } = kind === 'rsa'
    ? crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })
    : kind === 'ec'
      ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : crypto.generateKeyPairSync('ed25519');
  const alg = { rsa: 'RS256', ec: 'ES256', ed: 'EdDSA' }[kind];
  return { kid, alg, privateKey, publicKey, jwk: { ...privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig' } };
}

// Rotation phases: [signing key, ...published keys].
const k1 = key('rsa', 'k1-rsa');
const k2 = key('ec', 'k2-ec');
const k3 = key('ed', 'k3-ed');
const PHASES = [[k1], [k2, k1], [k3, k2]];
let phase = 0;
let jwksFetches = 0;

const clients = [
  ['reader', 'nessus:read'],
  ['scanner', 'nessus:read nessus:scan'],
  ['auth-scanner', 'nessus:read nessus:scan:authenticated'],
  ['admin', SCOPES],
  ['opaque', 'nessus:read nessus:scan'],
  ['resource-server', undefined],
].map(([client_id, scope]) => ({
  client_id,
  client_secret: CLIENT_SECRET,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  ...(scope ? { scope } : {}),
  token_endpoint_auth_method: 'client_secret_basic',
}));
clients.push({
  client_id: 'app',
  application_type: 'native',
  token_endpoint_auth_method: 'none',
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  redirect_uris: ['http://127.0.0.1:9/callback', 'http://localhost:3030/callback'],
  scope: `openid offline_access ${SCOPES}`,
});

function makeProvider(issuer) {
  const [signer, ...rest] = PHASES[phase];
  const p = new Provider(issuer, {
    clients,
    jwks: { keys: [signer, ...rest].map((k) => k.jwk) },
    pkce: { required: () => true },
    scopes: ['openid', 'offline_access', ...SCOPES.split(' ')],
    findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub, email: `${sub}@example.test` }) }),
    claims: { openid: ['sub'], email: ['email'] },
    enabledJWA: { idTokenSigningAlgValues: ['RS256', 'ES256', 'EdDSA'] },
    // ID tokens are signed with a key the phase publishes (phase 3 has no RSA key).
    clientDefaults: { id_token_signed_response_alg: phase === 0 ? 'RS256' : 'ES256' },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true, allowedPolicy: async () => true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => AUDIENCE,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resource, client) => ({
          scope: SCOPES,
          audience: resource,
          accessTokenTTL: 300,
          accessTokenFormat: client.clientId === 'opaque' ? 'opaque' : 'jwt',
          jwt: { sign: { alg: PHASES[phase][0].alg } },
        }),
      },
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    ttl: { AccessToken: 300, ClientCredentials: 300, Interaction: 300, Session: 3600, Grant: 3600 },
  });
  p.on('server_error', (_ctx, err) => console.error('server_error', err));
  return p;
}

// Sign-in and consent approved at once: the test drives the grant over HTTP.
async function interaction(provider, req, res) {
  const details = await provider.interactionDetails(req, res);
  const accountId = details.params.login_hint || 'alice';
  const grant = new provider.Grant({ accountId, clientId: details.params.client_id });
  const missing = details.prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [resource, scopes] of Object.entries(missing.missingResourceScopes || {})) {
    grant.addResourceScope(resource, scopes.join(' '));
  }
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { login: { accountId }, consent: { grantId } }, { mergeWithLastSubmission: false });
}

const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
function sign(k, header, claims) {
  const input = `${b64({ typ: 'at+jwt', ...header })}.${b64(claims)}`;
  const data = Buffer.from(input);
  let sig;
  if (header.alg === 'none') sig = Buffer.alloc(0);
  else if (header.alg === 'HS256') {
    // Algorithm confusion: HMAC keyed with the provider's public key.
    sig = crypto.createHmac('sha256', k.publicKey.export({ type: 'spki', format: 'pem' })).update(data).digest();
  } else if (k.alg === 'RS256') sig = crypto.sign('sha256', data, k.privateKey);
  else if (k.alg === 'ES256') sig = crypto.sign('sha256', data, { key: k.privateKey, dsaEncoding: 'ieee-p1363' });
  else sig = crypto.sign(null, data, k.privateKey);
  return `${input}.${sig.toString('base64url')}`;
}

function forge(issuer, kind, q) {
  const now = Math.floor(Date.now() / 1000);
  const signer = PHASES[phase][0];
  const claims = {
    iss: issuer, aud: q.get('aud') || AUDIENCE, sub: q.get('sub') || 'mallory',
    scope: q.get('scope') || SCOPES, iat: now, exp: now + 300, jti: crypto.randomUUID(),
  };
  if (q.get('email')) claims.email = q.get('email');
  let k = signer;
  const header = { alg: signer.alg, kid: signer.kid };
  switch (kind) {
    case 'none': header.alg = 'none'; break;
    case 'hs256': header.alg = 'HS256'; k = k1; header.kid = k1.kid; break;
    case 'wrong-iss': claims.iss = 'http://127.0.0.1:1/evil'; break;
    case 'expired': claims.iat = now - 7200; claims.exp = now - 3600; break;
    case 'in-leeway': claims.iat = now - 300; claims.exp = now - 10; break;
    case 'not-yet': claims.nbf = now + 3600; break;
    case 'unknown-kid': k = key('ec', `stranger-${crypto.randomUUID()}`); header.alg = 'ES256'; header.kid = k.kid; break;
    case 'signed': break;
    default: throw new Error(`unknown forge kind ${kind}`);
  }
  return sign(k, header, claims);
}

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  let provider = makeProvider(issuer);
  server.on('request', async (req, res) => {
    const url = new URL(req.url, issuer);
    try {
      if (url.pathname === '/__test/rotate' && req.method === 'POST') {
        phase = Math.min(phase + 1, PHASES.length - 1);
        provider = makeProvider(issuer);
        res.end(JSON.stringify({ phase, signing_kid: PHASES[phase][0].kid }));
      } else if (url.pathname === '/__test/stats') {
        res.end(JSON.stringify({ jwks_fetches: jwksFetches, phase }));
      } else if (url.pathname.startsWith('/__test/forge/')) {
        res.end(forge(issuer, url.pathname.slice('/__test/forge/'.length), url.searchParams));
      } else if (url.pathname.startsWith('/interaction/')) {
        await interaction(provider, req, res);
      } else {
        if (url.pathname === '/jwks') jwksFetches += 1;
        provider.callback()(req, res);
      }
    } catch (err) {
      console.error(err);
      res.statusCode = 500;
      res.end(String(err));
    }
  });
  console.log(`IDP_URL ${issuer}`);
});
