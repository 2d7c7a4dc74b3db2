import pino from 'pino';
import { Writable } from 'node:stream';
import { afterEach, expect, it } from 'vitest';
import { buildApp } from '../../server/app.js';
import { loadConfig } from '../../server/config/index.js';
import { call, createTestApp, describeMatrix, makeUser, matrix, signup, type TestApp } from '../harness.js';

function capturingLogger() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  return { logger: pino({ level: 'warn' }, stream), lines };
}

describeMatrix('POLICY_NO_AUTH_DEFAULT', matrix(), (b) => {
  const apps: TestApp[] = [];
  const make = async (env: Record<string, string> = {}, logger?: pino.Logger) => {
    const a = await createTestApp(b, { env, logger });
    apps.push(a);
    return a;
  };
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });

  it('deny (default): every route that needs a user answers 401 without credentials', async () => {
    const app = await make();
    expect(app.config.POLICY_NO_AUTH_DEFAULT).toBe('deny');
    await signup(app);
    for (const url of ['/api/v1/auths/', '/api/v1/users', '/api/v1/auths/sessions']) {
      const r = await call(app, 'GET', url);
      expect(r.status, url).toBe(401);
      expect(r.body.error.code).toBe('unauthenticated');
    }
  });

  it('view_only: anonymous GET on viewable routes only, as the primary admin; everything else still needs a sign-in', async () => {
    const { logger, lines } = capturingLogger();
    const app = await make({ POLICY_NO_AUTH_DEFAULT: 'view_only' }, logger);
    expect(lines.join('')).toMatch(/POLICY_NO_AUTH_DEFAULT=view_only/);
    // No admin yet (onboarding): nobody to act as.
    expect((await call(app, 'GET', '/api/v1/auths/')).status).toBe(401);
    const admin = await signup(app);
    const me = await call(app, 'GET', '/api/v1/auths/');
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({
      id: admin.user.id,
      auth_kind: 'anonymous',
      anonymous: 'view_only',
      session_id: null,
    });
    // Not declared viewable: refused even for GET (deny by default).
    for (const url of ['/api/v1/users', '/api/v1/auths/sessions', '/api/v1/admin/lockouts', '/api/v1/auths/2fa']) {
      const r = await call(app, 'GET', url);
      expect(r.status, url).toBe(401);
    }
    // Never a write.
    for (const [m, url, body] of [
      ['POST', '/api/v1/auths/update/profile', { name: 'Anon' }],
      ['POST', '/api/v1/auths/signout', undefined],
      ['PATCH', `/api/v1/users/${admin.user.id}`, { name: 'x' }],
    ] as const) {
      const r = await call(app, m, url, { body });
      expect(r.status, url).toBe(401);
    }
    // Credentials still win, and a bad one is not turned into "anonymous".
    const u = await makeUser(app);
    expect((await call(app, 'GET', '/api/v1/auths/', { token: u.token })).body.id).toBe(u.user.id);
    expect((await call(app, 'GET', '/api/v1/auths/', { token: 'not-a-token' })).status).toBe(401);
  });

  it('allow_all: anonymous acts as the admin (loud warning); cross-site writes are still refused', async () => {
    const { logger, lines } = capturingLogger();
    const app = await make({ POLICY_NO_AUTH_DEFAULT: 'allow_all' }, logger);
    expect(lines.join('')).toMatch(/NO AUTHENTICATION/);
    expect(lines.some((l) => JSON.parse(l).level >= 50)).toBe(true);
    const admin = await signup(app);
    const u = await makeUser(app);
    const list = await call(app, 'GET', '/api/v1/users');
    expect(list.status).toBe(200);
    expect(list.body.total).toBe(2);
    const patch = await call(app, 'PATCH', `/api/v1/users/${u.user.id}`, { body: { name: 'Renamed' } });
    expect(patch.status).toBe(200);
    // The browser's network position is the credential: a foreign origin cannot use it.
    const csrf = await call(app, 'PATCH', `/api/v1/users/${u.user.id}`, {
      body: { name: 'Evil' },
      headers: { origin: 'http://evil.example' },
    });
    expect(csrf.status).toBe(403);
    expect(csrf.body.error.code).toBe('csrf_origin_mismatch');
    // Audit names the admin as the actor.
    await app.ctx.audit.flush();
    const ev = await app.ctx.db
      .selectFrom('audit_events')
      .selectAll()
      .where('action', '=', 'user.updated')
      .executeTakeFirstOrThrow();
    expect(JSON.stringify(ev)).toContain(admin.user.id);
    // A user's own credential is still that user, not the admin.
    expect((await call(app, 'GET', '/api/v1/users', { token: u.token })).status).toBe(403);
  });

  it('allow_all is refused at start with ENV=prod', async () => {
    const cfg = loadConfig({
      ENV: 'prod',
      POLICY_NO_AUTH_DEFAULT: 'allow_all',
      DATA_DIR: '/tmp/hridaai-never-created',
    });
    await expect(buildApp(cfg, { logger: pino({ level: 'silent' }) })).rejects.toThrow(
      /POLICY_NO_AUTH_DEFAULT: allow_all .* refused with ENV=prod/,
    );
    // view_only and deny start in prod (not checked further here).
    const ok = loadConfig({ ENV: 'prod', POLICY_NO_AUTH_DEFAULT: 'view_only', DATA_DIR: '/tmp/x' });
    expect(ok.POLICY_NO_AUTH_DEFAULT).toBe('view_only');
  });
});
