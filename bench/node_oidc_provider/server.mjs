// node-oidc-provider v9 (OpenID Certified), configured to match the bench's provider, so that
// bench/load.py can measure the two side by side: one confidential client with
// client_secret_basic, the client_credentials grant, RS256 JWT access tokens (RFC 9068) of
// 10 minutes for one resource server, and the key the bench hands over. One process per core
// through node's cluster module, as the provider runs one gunicorn worker per core.
//
// What it does not do that the provider does: it keeps its client in memory (the provider
// reads it from the database on every request), writes no access or audit log, and does not
// throttle failed client authentications.
//
// Environment: PORT, BENCH_KEY_FILE (PKCS#8 PEM), BENCH_CLIENT_ID, BENCH_CLIENT_SECRET,
// BENCH_AUDIENCE, WORKERS (default: the core count).
import cluster from 'node:cluster';
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

import Provider from 'oidc-provider';

const env = (name) => {
  if (!process.env[name]) throw new Error(`${name} is required`);
  return process.env[name];
};
const port = Number(env('PORT'));
const workers = Number(process.env.WORKERS || availableParallelism());

if (cluster.isPrimary) {
  for (let i = 0; i < workers; i += 1) cluster.fork();
  cluster.on('exit', (worker, code) => {
    if (code !== 0) process.exit(code); // a worker that dies fails the bench, loudly
  });
} else {
  const signingKey = createPrivateKey(readFileSync(env('BENCH_KEY_FILE'))).export({ format: 'jwk' });
  const audience = env('BENCH_AUDIENCE');
  const scope = 'bench:read bench:write';
  const provider = new Provider(`http://127.0.0.1:${port}`, {
    clients: [{
      client_id: env('BENCH_CLIENT_ID'),
      client_secret: env('BENCH_CLIENT_SECRET'),
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope,
    }],
    jwks: { keys: [{ ...signingKey, alg: 'RS256', use: 'sig' }] },
    scopes: scope.split(' '),
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => audience,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope,
          audience,
          accessTokenTTL: 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
  });
  provider.listen(port, '127.0.0.1');
}
