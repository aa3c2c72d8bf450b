// Drives Clerk's own JavaScript backend SDK (@clerk/backend, unchanged)
// against a freshly started `keyward serve`, with the one configuration the
// README documents: createClerkClient({ secretKey, apiUrl: 'http://HOST/clerk' }).
//
// Usage: node run.mjs /path/to/keyward
// Prints one line per SDK call and a total; exits non-zero on any failure.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { createClerkClient } from '@clerk/backend';

const bin = process.argv[2] || process.env.KEYWARD_BIN;
if (!bin) {
  console.error('usage: node run.mjs /path/to/keyward');
  process.exit(2);
}

let passed = 0;
let failed = 0;

// step runs one SDK call and the checks on its result, printing one line.
async function step(name, fn) {
  try {
    const detail = await fn();
    passed++;
    console.log(`ok   ${name}${detail ? ` (${detail})` : ''}`);
  } catch (err) {
    failed++;
    const status = err?.status ? ` [${err.status}${err.errors?.[0]?.code ? ' ' + err.errors[0].code : ''}]` : '';
    console.log(`FAIL ${name}: ${err?.message ?? err}${status}`);
  }
}

// rejects expects the SDK call to fail with the given HTTP status.
async function rejects(promise, status) {
  try {
    await promise;
  } catch (err) {
    if (err?.status === status) return `${status} ${err.errors?.[0]?.code ?? ''}`.trim();
    throw new Error(`want HTTP ${status}, got ${err?.status ?? err}`);
  }
  throw new Error(`want HTTP ${status}, the call succeeded`);
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function waitHealthy(url, child) {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`keyward exited with ${child.exitCode}`);
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise(r => setTimeout(r, 100));
  }
  throw new Error('keyward did not become ready');
}

function bearerRequest(token) {
  return new Request('http://app.example/api/data', { headers: { Authorization: `Bearer ${token}` } });
}

const generated = spawnSync(bin, ['admin-key', 'generate'], { encoding: 'utf8' });
if (generated.status !== 0) {
  console.error(`keyward admin-key generate failed: ${generated.stderr}`);
  process.exit(2);
}
const secretKey = generated.stdout.trim();
const dataDir = mkdtempSync(join(tmpdir(), 'keyward-clerk-js-'));
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const server = spawn(bin, ['serve', '--addr', `127.0.0.1:${port}`, '--data-dir', dataDir, '--log-level', 'warn'], {
  env: { ...process.env, KEYWARD_BOOTSTRAP_ADMIN_KEY: secretKey },
  stdio: ['ignore', 'inherit', 'inherit'],
});

try {
  await waitHealthy(base, server);
  console.log(`keyward at ${base}; @clerk/backend with apiUrl ${base}/clerk`);

  // The one documented configuration.
  const apiUrl = `${base}/clerk`;
  const clerk = createClerkClient({ secretKey, apiUrl });

  // Machines.
  let target, minter, spare;
  await step('machines.create', async () => {
    target = await clerk.machines.create({ name: 'target-api', defaultTokenTtl: 600 });
    minter = await clerk.machines.create({ name: 'minter-worker', scopedMachines: [target.id] });
    spare = await clerk.machines.create({ name: 'spare' });
    check(target.id.startsWith('mch_') && target.secretKey?.startsWith('ak_'), 'id and secret key');
    check(minter.scopedMachines.length === 1 && minter.scopedMachines[0].id === target.id, 'scoped machines');
    check(target.defaultTokenTtl === 600 && spare.defaultTokenTtl === 3600, 'default_token_ttl');
    return minter.id;
  });
  await step('machines.list', async () => {
    const page = await clerk.machines.list({ orderBy: '+name', limit: 2 });
    check(page.totalCount === 3, `totalCount ${page.totalCount}`);
    check(page.data.map(m => m.name).join() === 'minter-worker,spare', page.data.map(m => m.name).join());
    const found = await clerk.machines.list({ query: 'worker' });
    check(found.totalCount === 1 && found.data[0].id === minter.id, 'query');
    return `${page.totalCount} machines`;
  });
  await step('machines.get', async () => {
    const m = await clerk.machines.get(minter.id);
    check(m.name === 'minter-worker' && m.secretKey === undefined, 'no secret on get');
    check(m.scopedMachines[0].id === target.id, 'scoped machines');
  });
  await step('machines.update', async () => {
    const m = await clerk.machines.update({ machineId: spare.id, name: 'spare-renamed', defaultTokenTtl: 120 });
    check(m.name === 'spare-renamed' && m.defaultTokenTtl === 120, 'updated fields');
  });
  await step('machines.getSecretKey', async () => {
    const sk = await clerk.machines.getSecretKey(target.id);
    check(sk.secret === target.secretKey, 'the create response key');
  });
  await step('machines.rotateSecretKey', async () => {
    const sk = await clerk.machines.rotateSecretKey({ machineId: spare.id, previousTokenTtl: 0 });
    check(sk.secret.startsWith('ak_') && sk.secret !== spare.secretKey, 'a new key');
    spare = { ...spare, secretKey: sk.secret };
  });
  await step('machines.createScope', async () => {
    const s = await clerk.machines.createScope(spare.id, target.id);
    check(s.fromMachineId === spare.id && s.toMachineId === target.id, 'scope');
  });
  await step('machines.createScope (duplicate)', () => rejects(clerk.machines.createScope(spare.id, target.id), 409));
  await step('machines.deleteScope', async () => {
    const s = await clerk.machines.deleteScope(spare.id, target.id);
    check(s.deleted === true, 'deleted');
  });

  // M2M tokens: minted with the machine's own secret key.
  const minterClient = createClerkClient({ machineSecretKey: minter.secretKey, apiUrl });
  let opaque, jwt;
  await step('m2m.createToken (opaque)', async () => {
    opaque = await minterClient.m2m.createToken({ claims: { job: 'nightly' }, secondsUntilExpiration: 300 });
    check(opaque.token.startsWith('mt_') && opaque.id.startsWith('mt_'), 'mt_ token');
    check(opaque.subject === minter.id && opaque.scopes.join() === target.id, 'subject and scopes');
    check(opaque.claims?.job === 'nightly' && opaque.expiration - opaque.createdAt === 300_000, 'claims and expiry');
  });
  await step('m2m.createToken (jwt)', async () => {
    jwt = await minterClient.m2m.createToken({ tokenFormat: 'jwt', claims: { job: 'jwt' } });
    check(jwt.token.split('.').length === 3, 'a JWT');
  });
  await step('jwks.getJwks (the key that signed the JWT)', async () => {
    const set = await clerk.jwks.getJwks();
    check(set.keys.some(k => k.kid === JSON.parse(Buffer.from(jwt.token.split('.')[0], 'base64url')).kid), 'the JWT kid is published');
    return `${set.keys.length} key(s)`;
  });
  await step('m2m.createToken (minRemainingTtlSeconds reuses)', async () => {
    const a = await minterClient.m2m.createToken({ minRemainingTtlSeconds: 60 });
    const b = await minterClient.m2m.createToken({ minRemainingTtlSeconds: 60 });
    check(a.id === b.id && a.token === b.token, 'the same token back');
  });
  await step('m2m.list (machine key)', async () => {
    const page = await minterClient.m2m.list({ subject: minter.id, limit: 10 });
    check(page.totalCount === 2 && page.data.every(t => t.token === undefined), `totalCount ${page.totalCount}, no tokens`);
  });
  await step('m2m.list (instance secret key)', async () => {
    const page = await clerk.m2m.list({ subject: minter.id });
    check(page.totalCount === 2, `totalCount ${page.totalCount}`);
  });
  await step('m2m.verify (opaque, target machine key)', async () => {
    const v = await clerk.m2m.verify({ token: opaque.token, machineSecretKey: target.secretKey });
    check(v.id === opaque.id && v.subject === minter.id && v.revoked === false, 'the token');
  });
  await step('m2m.verify (opaque, unscoped machine is refused)', () =>
    rejects(clerk.m2m.verify({ token: opaque.token, machineSecretKey: spare.secretKey }), 404));
  await step('m2m.verify (jwt, local via JWKS)', async () => {
    const v = await clerk.m2m.verify({ token: jwt.token });
    check(v.subject === minter.id && v.claims?.job === 'jwt' && v.id === jwt.id, `subject ${v.subject}, claims ${JSON.stringify(v.claims)}`);
  });
  await step('authenticateRequest m2m_token (opaque)', async () => {
    const state = await clerk.authenticateRequest(bearerRequest(opaque.token), { acceptsToken: 'm2m_token', secretKey });
    check(state.isAuthenticated, `not authenticated: ${state.reason ?? ''} ${state.message ?? ''}`);
    const auth = state.toAuth();
    check(auth.tokenType === 'm2m_token' && auth.subject === minter.id, `auth ${auth.tokenType} ${auth.subject}`);
  });
  await step('authenticateRequest m2m_token (jwt)', async () => {
    const state = await clerk.authenticateRequest(bearerRequest(jwt.token), { acceptsToken: 'm2m_token', secretKey });
    check(state.isAuthenticated, `not authenticated: ${state.reason ?? ''} ${state.message ?? ''}`);
    check(state.toAuth().subject === minter.id, 'subject');
  });
  await step('m2m.revokeToken', async () => {
    const t = await minterClient.m2m.revokeToken({ m2mTokenId: opaque.id, revocationReason: 'rotated' });
    check(t.revoked === true && t.revocationReason === 'rotated', 'revoked with reason');
  });
  await step('m2m.verify (revoked token)', () => rejects(clerk.m2m.verify({ token: opaque.token }), 404));
  await step('authenticateRequest m2m_token (revoked token is refused)', async () => {
    const state = await clerk.authenticateRequest(bearerRequest(opaque.token), { acceptsToken: 'm2m_token', secretKey });
    check(!state.isAuthenticated, 'a revoked token authenticated');
  });

  // API keys.
  const user = 'user_2xhFjEI5X2qWRvtV13BzSj8H6Dk';
  const org = 'org_2zNc4QkLm8vR7sT1wY6cF3hJ5dA';
  let key;
  await step('apiKeys.create', async () => {
    key = await clerk.apiKeys.create({
      name: 'reporting key', subject: user, description: 'read-only reports',
      claims: { plan: 'pro' }, scopes: ['reports:read'], createdBy: user, secondsUntilExpiration: 86400,
    });
    check(key.id.startsWith('ak_') && key.secret?.startsWith('ak_'), 'id and secret');
    check(key.subject === user && key.createdBy === user && key.type === 'api_key', 'subject, created_by, type');
    check(key.expiration - key.createdAt === 86400_000 && key.revoked === false, 'expiration');
  });
  await step('apiKeys.list', async () => {
    await clerk.apiKeys.create({ name: 'second key', subject: user });
    const page = await clerk.apiKeys.list({ subject: user, limit: 1 });
    check(page.totalCount === 2 && page.data.length === 1 && page.data[0].secret === undefined, `totalCount ${page.totalCount}`);
    const rest = await clerk.apiKeys.list({ subject: user, limit: 1, offset: 1 });
    check(rest.data[0].id === key.id, 'second page is the older key');
  });
  await step('apiKeys.get', async () => {
    const k = await clerk.apiKeys.get(key.id);
    check(k.name === 'reporting key' && k.secret === undefined && k.claims?.plan === 'pro', 'the key without its secret');
  });
  await step('apiKeys.update', async () => {
    const k = await clerk.apiKeys.update({ apiKeyId: key.id, subject: org, scopes: ['reports:read', 'reports:write'], description: null });
    check(k.subject === org && k.scopes.length === 2 && k.description === null, 'updated');
  });
  await step('apiKeys.getSecret', async () => {
    const { secret } = await clerk.apiKeys.getSecret(key.id);
    check(secret === key.secret, 'the create response secret');
  });
  await step('apiKeys.verify', async () => {
    const k = await clerk.apiKeys.verify(key.secret);
    check(k.id === key.id && k.subject === org, 'the key');
  });
  await step('authenticateRequest api_key', async () => {
    const state = await clerk.authenticateRequest(bearerRequest(key.secret), { acceptsToken: 'api_key' });
    check(state.isAuthenticated, `not authenticated: ${state.reason ?? ''} ${state.message ?? ''}`);
    const auth = state.toAuth();
    check(auth.tokenType === 'api_key' && auth.subject === org && auth.scopes.includes('reports:write'), `auth ${JSON.stringify(auth)}`);
  });
  await step('authenticateRequest api_key (a machine key is not an API key)', async () => {
    const state = await clerk.authenticateRequest(bearerRequest(spare.secretKey), { acceptsToken: 'api_key' });
    check(!state.isAuthenticated, 'a machine secret key authenticated as an API key');
  });
  await step('apiKeys.revoke', async () => {
    const k = await clerk.apiKeys.revoke({ apiKeyId: key.id, revocationReason: 'compromised' });
    check(k.revoked === true && k.revocationReason === 'compromised', 'revoked with reason');
  });
  await step('apiKeys.verify (revoked key)', () => rejects(clerk.apiKeys.verify(key.secret), 404));
  await step('authenticateRequest api_key (revoked key is refused)', async () => {
    const state = await clerk.authenticateRequest(bearerRequest(key.secret), { acceptsToken: 'api_key' });
    check(!state.isAuthenticated, 'a revoked key authenticated');
  });
  await step('apiKeys.list (includeInvalid)', async () => {
    const valid = await clerk.apiKeys.list({ subject: org });
    const all = await clerk.apiKeys.list({ subject: org, includeInvalid: true });
    check(valid.totalCount === 0 && all.totalCount === 1 && all.data[0].revoked, `valid ${valid.totalCount}, all ${all.totalCount}`);
  });
  await step('apiKeys.delete', async () => {
    const d = await clerk.apiKeys.delete(key.id);
    check(d.id === key.id && d.deleted === true, 'deleted');
  });
  await step('apiKeys.get (deleted key)', () => rejects(clerk.apiKeys.get(key.id), 404));

  // Actor tokens.
  let actor;
  await step('actorTokens.create', async () => {
    actor = await clerk.actorTokens.create({ userId: user, actor: { sub: 'user_2yQmP0aLk3vR7sT1wY6cF3hJ5dL' }, expiresInSeconds: 600 });
    check(actor.id.startsWith('act_') && actor.status === 'pending' && actor.token && actor.url, 'pending with token and url');
  });
  await step('actorTokens.revoke', async () => {
    const a = await clerk.actorTokens.revoke(actor.id);
    check(a.status === 'revoked', `status ${a.status}`);
  });

  // Finally the machine delete (its tokens stop verifying).
  await step('machines.delete', async () => {
    const d = await clerk.machines.delete(spare.id);
    check(d.id === spare.id, 'deleted');
  });
  await step('machines.get (deleted machine)', () => rejects(clerk.machines.get(spare.id), 404));
} catch (err) {
  failed++;
  console.log(`FAIL setup: ${err?.message ?? err}`);
} finally {
  server.kill('SIGTERM');
  await new Promise(r => (server.exitCode !== null ? r() : server.once('exit', r)));
  rmSync(dataDir, { recursive: true, force: true });
}

console.log(`@clerk/backend: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
