import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, expect, it } from 'vitest';
import {
  call,
  createTestApp,
  describeMatrix,
  makeUser,
  matrix,
  signup,
  SQLITE,
  uniqueEmail,
  type TestApp,
} from '../harness.js';

const apps: TestApp[] = [];
const make = async (env: Record<string, string> = {}, b = SQLITE, logger?: pino.Logger) => {
  const a = await createTestApp(b, { env, logger });
  apps.push(a);
  return a;
};
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

describeMatrix('security headers', [SQLITE], () => {
  const HEADERS = {
    HSTS: ['strict-transport-security', 'max-age=31536000;includeSubDomains', 'max-age=31536000; includeSubDomains'],
    XFRAME_OPTIONS: ['x-frame-options', 'DENY', 'DENY'],
    XCONTENT_TYPE: ['x-content-type-options', 'nosniff', 'nosniff'],
    REFERRER_POLICY: ['referrer-policy', 'strict-origin-when-cross-origin', 'strict-origin-when-cross-origin'],
    PERMISSIONS_POLICY: [
      'permissions-policy',
      'camera=(),microphone=(),geolocation=()',
      'camera=(),microphone=(),geolocation=()',
    ],
    CONTENT_SECURITY_POLICY: [
      'content-security-policy',
      "default-src 'self'; script-src 'self'",
      "default-src 'self'; script-src 'self'",
    ],
    CONTENT_SECURITY_POLICY_REPORT_ONLY: [
      'content-security-policy-report-only',
      "default-src 'self'; report-uri /csp-report",
      "default-src 'self'; report-uri /csp-report",
    ],
    CROSS_ORIGIN_EMBEDDER_POLICY: ['cross-origin-embedder-policy', 'require-corp', 'require-corp'],
    CROSS_ORIGIN_OPENER_POLICY: ['cross-origin-opener-policy', 'same-origin', 'same-origin'],
    CROSS_ORIGIN_RESOURCE_POLICY: ['cross-origin-resource-policy', 'same-origin', 'same-origin'],
    REPORTING_ENDPOINTS: [
      'reporting-endpoints',
      'default="https://collector.example/reports"',
      'default="https://collector.example/reports"',
    ],
  } as const;

  it('sends none by default', async () => {
    const app = await make();
    const r = await call(app, 'GET', '/health');
    for (const [, [header]] of Object.entries(HEADERS)) expect(r.headers[header], header).toBeUndefined();
  });

  for (const [name, [header, value, expected]] of Object.entries(HEADERS)) {
    it(`${name} sets ${header} on responses, errors and unknown routes`, async () => {
      const app = await make({ [name]: value });
      for (const url of ['/health', '/api/v1/auths/', '/no/such/route']) {
        const r = await call(app, 'GET', url);
        expect(r.headers[header], url).toBe(expected);
      }
    });
  }
});

describeMatrix('CORS', [SQLITE], () => {
  it('default "*" answers any origin without credentials', async () => {
    const app = await make();
    const r = await call(app, 'GET', '/health', { headers: { origin: 'https://anything.example' } });
    expect(r.headers['access-control-allow-origin']).toBe('*');
    expect(r.headers['access-control-allow-credentials']).toBeUndefined();
  });

  it('a listed origin gets credentialed CORS; evil and null origins get nothing', async () => {
    const app = await make({ CORS_ALLOW_ORIGIN: 'https://chat.example.com;https://internal.example.com' });
    const ok = await call(app, 'GET', '/health', { headers: { origin: 'https://internal.example.com' } });
    expect(ok.headers['access-control-allow-origin']).toBe('https://internal.example.com');
    expect(ok.headers['access-control-allow-credentials']).toBe('true');
    expect(String(ok.headers.vary)).toMatch(/Origin/i);
    for (const origin of [
      'https://evil.example',
      'null',
      'https://chat.example.com.evil.example',
      'http://chat.example.com',
    ]) {
      const r = await call(app, 'GET', '/health', { headers: { origin } });
      expect(r.headers['access-control-allow-origin'], origin).toBeUndefined();
      expect(r.headers['access-control-allow-credentials'], origin).toBeUndefined();
    }
    const pre = await call(app, 'OPTIONS', '/api/v1/auths/signin', {
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    expect(pre.headers['access-control-allow-origin']).toBeUndefined();
    const preOk = await call(app, 'OPTIONS', '/api/v1/auths/signin', {
      headers: { origin: 'https://chat.example.com', 'access-control-request-method': 'POST' },
    });
    expect(preOk.headers['access-control-allow-origin']).toBe('https://chat.example.com');
  });
});

describeMatrix('CSRF: cookie-authenticated unsafe requests from a foreign origin', matrix(), (b) => {
  it('are refused; same-origin, allowed origins and bearer tokens pass', async () => {
    const app = await make({ CORS_ALLOW_ORIGIN: 'https://ui.example.com' }, b);
    const { token } = await signup(app);
    const profile = (headers: Record<string, string>, auth: 'cookie' | 'bearer' = 'cookie') =>
      call(app, 'POST', '/api/v1/auths/update/profile', {
        body: { name: 'New name' },
        headers: { host: 'hrida.example', ...headers },
        ...(auth === 'cookie' ? { cookie: token } : { token }),
      });
    for (const origin of ['https://evil.example', 'null', 'http://hrida.example.evil.example']) {
      const r = await profile({ origin });
      expect(r.status, origin).toBe(403);
      expect(r.body.error.code, origin).toBe('csrf_origin_mismatch');
    }
    expect((await profile({ 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect((await profile({ origin: 'http://hrida.example' })).status).toBe(200);
    expect((await profile({ origin: 'https://ui.example.com' })).status).toBe(200);
    expect((await profile({})).status).toBe(200);
    expect((await profile({ origin: 'https://evil.example' }, 'bearer')).status).toBe(200);
    // GET is not state-changing.
    expect(
      (await call(app, 'GET', '/api/v1/auths/', { cookie: token, headers: { origin: 'https://evil.example' } })).status,
    ).toBe(200);
  });

  it('sign-in and sign-up from a foreign origin are refused (login CSRF)', async () => {
    const app = await make({ ENABLE_SIGNUP: 'true' }, b);
    const { user, password } = await signup(app);
    const r = await call(app, 'POST', '/api/v1/auths/signin', {
      body: { email: user.email, password },
      headers: { origin: 'https://evil.example', host: 'hrida.example' },
    });
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('csrf_origin_mismatch');
    const up = await call(app, 'POST', '/api/v1/auths/signup', {
      body: { name: 'x', email: uniqueEmail(), password: 'whatever pw' },
      headers: { origin: 'https://evil.example', host: 'hrida.example' },
    });
    expect(up.status).toBe(403);
  });
});

describeMatrix('trusted proxies (FORWARDED_ALLOW_IPS)', matrix(), (b) => {
  async function sessionIp(app: TestApp, remoteAddress: string, xff?: string, proto?: string) {
    const email = uniqueEmail();
    await makeUser(app, { email, password: 'proxy password' });
    const headers: Record<string, string> = {};
    if (xff) headers['x-forwarded-for'] = xff;
    if (proto) headers['x-forwarded-proto'] = proto;
    const r = await call(app, 'POST', '/api/v1/auths/signin', {
      body: { email, password: 'proxy password' },
      remoteAddress,
      headers,
    });
    expect(r.status).toBe(200);
    const list = await call(app, 'GET', '/api/v1/auths/sessions', { token: r.body.token });
    return list.body.items.find((s: { current: boolean }) => s.current).ip as string;
  }

  it('X-Forwarded-For from an untrusted peer is ignored', async () => {
    const app = await make({ FORWARDED_ALLOW_IPS: '10.0.0.1' }, b);
    await signup(app);
    expect(await sessionIp(app, '192.0.2.7', '203.0.113.9')).toBe('192.0.2.7');
  });

  it('X-Forwarded-For from a trusted proxy (IP or CIDR) gives the client IP', async () => {
    const app = await make({ FORWARDED_ALLOW_IPS: '10.0.0.1,172.16.0.0/12' }, b);
    await signup(app);
    expect(await sessionIp(app, '10.0.0.1', '203.0.113.9')).toBe('203.0.113.9');
    expect(await sessionIp(app, '172.20.1.2', '203.0.113.10')).toBe('203.0.113.10');
    // A client that prepends its own X-Forwarded-For cannot choose its IP: the proxy appended the real one.
    expect(await sessionIp(app, '10.0.0.1', '1.2.3.4, 203.0.113.11')).toBe('203.0.113.11');
  });

  it('X-Forwarded-Proto is believed only from a trusted proxy (CSRF origin check)', async () => {
    const app = await make({ FORWARDED_ALLOW_IPS: '10.0.0.1' }, b);
    const { token } = await signup(app);
    const post = (remoteAddress: string) =>
      call(app, 'POST', '/api/v1/auths/update/profile', {
        cookie: token,
        body: { name: 'n' },
        remoteAddress,
        headers: { host: 'hrida.example', origin: 'https://hrida.example', 'x-forwarded-proto': 'https' },
      });
    expect((await post('10.0.0.1')).status).toBe(200);
    expect((await post('192.0.2.1')).status).toBe(403);
  });
});

describeMatrix('errors and bad input', matrix(), (b) => {
  it('malformed JSON, wrong content type, oversized body, unknown fields and routes get clear 4xx', async () => {
    const app = await make({}, b);
    const { token } = await signup(app);
    const bad = await call(app, 'POST', '/api/v1/auths/signin', {
      rawBody: '{"email": "a@b.c", "password": ',
      headers: { 'content-type': 'application/json' },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_json');
    const proto = await call(app, 'POST', '/api/v1/auths/signin', {
      rawBody: '{"__proto__": {"x": 1}, "email": "a@b.c", "password": "x"}',
      headers: { 'content-type': 'application/json' },
    });
    expect(proto.status).toBe(400);
    const form = await call(app, 'POST', '/api/v1/auths/signin', {
      rawBody: 'email=a&password=b',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(form.status).toBe(415);
    expect(form.body.error.code).toBe('unsupported_media_type');
    const big = await call(app, 'POST', '/api/v1/auths/signin', {
      body: { email: 'a@b.c', password: 'x'.repeat(20_000) },
    });
    expect(big.status).toBe(413);
    expect(big.body.error.code).toBe('body_too_large');
    const extra = await call(app, 'PATCH', '/api/v1/users/x', { token, body: { role: 'user', password_hash: 'x' } });
    expect(extra.status).toBe(400);
    expect(extra.body.error.code).toBe('validation_failed');
    const wrongType = await call(app, 'POST', '/api/v1/auths/signin', { body: { email: 42, password: [] } });
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.error.code).toBe('validation_failed');
    const nf = await call(app, 'GET', '/api/v1/nothing-here');
    expect(nf.status).toBe(404);
    expect(nf.body.error.code).toBe('not_found');
    const empty = await call(app, 'POST', '/api/v1/auths/signin', {
      rawBody: '',
      headers: { 'content-type': 'application/json' },
    });
    expect(empty.status).toBe(400);
    for (const r of [bad, proto, form, big, extra, wrongType, nf, empty]) {
      expect(r.text).not.toMatch(/at .*\.ts:\d+|stack|SELECT|sqlite|postgres/i);
      expect(r.headers['x-request-id']).toBeDefined();
    }
  });
});

describeMatrix('OpenAPI document and docs UI', [SQLITE], () => {
  it('are served in dev and hidden with ENV=prod', async () => {
    const dev = await make({ ENV: 'dev' });
    expect((await call(dev, 'GET', '/openapi.json')).status).toBe(200);
    expect((await call(dev, 'GET', '/docs')).status).toBeLessThan(400);
    expect((await call(dev, 'GET', '/openapi.json')).text).toContain('"openapi"');
    const prod = await make({ ENV: 'prod' });
    // In prod these paths are not the API document (the UI's fallback page may answer them).
    for (const url of ['/openapi.json', '/docs', '/docs/json', '/docs/static/index.html']) {
      const r = await call(prod, 'GET', url);
      expect(r.text, url).not.toMatch(/"openapi"|swagger/i);
      expect(r.text, url).not.toMatch(/"paths"\s*:/);
    }
  });
});

describeMatrix('logs never contain passwords, tokens or cookies', [SQLITE], () => {
  it('scans every log line written during sign-up, sign-in, password change and failures', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const logger = pino({ level: 'debug', redact: { paths: ['*.password'], censor: '[REDACTED]' } }, sink);
    // Use the production logger factory so its redaction rules are what is tested.
    const { createLogger } = await import('../../server/platform/log/logger.js');
    const real = createLogger({ LOG_FORMAT: 'json', GLOBAL_LOG_LEVEL: 'DEBUG' }, sink);
    void logger;
    const app = await make({ GLOBAL_LOG_LEVEL: 'DEBUG' }, SQLITE, real);
    const pw = 'Sup3r-Secret-Passw0rd!';
    const { token, user } = await signup(app, uniqueEmail(), pw);
    await call(app, 'POST', '/api/v1/auths/signin', { body: { email: user.email, password: pw } });
    await call(app, 'POST', '/api/v1/auths/signin', { body: { email: user.email, password: pw + 'x' } });
    await call(app, 'POST', '/api/v1/auths/update/password', {
      token,
      body: { password: pw, new_password: 'An0ther-Secret!' },
    });
    await call(app, 'GET', `/api/v1/auths/?token=${token}`, { cookie: token });
    await call(app, 'GET', '/api/v1/auths/', { token: token + 'tampered' });
    await call(app, 'POST', '/api/v1/auths/signin', {
      rawBody: `{"password":"${pw}"`,
      headers: { 'content-type': 'application/json' },
    });
    const all = lines.join('');
    expect(lines.length).toBeGreaterThan(5);
    expect(all).not.toContain(pw);
    expect(all).not.toContain('An0ther-Secret!');
    expect(all).not.toContain(token);
    expect(all).not.toContain(token.split('.')[2]);
    expect(all).not.toContain(app.shared.secret);
  });
});

describeMatrix('admin user management', matrix(), (b) => {
  it('lists with search and paging, reads, updates and deletes users', async () => {
    const app = await make({}, b);
    const admin = await signup(app);
    for (let i = 0; i < 5; i++) await makeUser(app, { email: `person${i}@corp.example` });
    await makeUser(app, { email: 'odd_one%@corp.example' });
    const page1 = await call(app, 'GET', '/api/v1/users?limit=2&page=1', { token: admin.token });
    expect(page1.body.total).toBe(7);
    expect(page1.body.items).toHaveLength(2);
    const page4 = await call(app, 'GET', '/api/v1/users?limit=2&page=4', { token: admin.token });
    expect(page4.body.items).toHaveLength(1);
    const search = await call(app, 'GET', '/api/v1/users?query=PERSON3', { token: admin.token });
    expect(search.body.items.map((u: { email: string }) => u.email)).toEqual(['person3@corp.example']);
    const like = await call(app, 'GET', '/api/v1/users?query=%25', { token: admin.token });
    expect(like.body.items.map((u: { email: string }) => u.email)).toEqual(['odd_one%@corp.example']);
    const pending = await makeUser(app, { role: 'pending' });
    const byRole = await call(app, 'GET', '/api/v1/users?role=pending', { token: admin.token });
    expect(byRole.body.items.map((u: { id: string }) => u.id)).toEqual([pending.user.id]);
    expect((await call(app, 'GET', '/api/v1/users?limit=1000', { token: admin.token })).status).toBe(400);
    const got = await call(app, 'GET', `/api/v1/users/${pending.user.id}`, { token: admin.token });
    expect(got.body.email).toBe(pending.user.email);
    expect(got.body.password_hash).toBeUndefined();
    const approve = await call(app, 'PATCH', `/api/v1/users/${pending.user.id}`, {
      token: admin.token,
      body: { role: 'user', name: 'Approved' },
    });
    expect(approve.body).toMatchObject({ role: 'user', name: 'Approved' });
    expect((await call(app, 'GET', '/api/v1/users/does-not-exist', { token: admin.token })).status).toBe(404);
    expect(
      (await call(app, 'PATCH', '/api/v1/users/does-not-exist', { token: admin.token, body: { name: 'x' } })).status,
    ).toBe(404);
    expect((await call(app, 'DELETE', '/api/v1/users/does-not-exist', { token: admin.token })).status).toBe(404);
    expect((await call(app, 'DELETE', `/api/v1/users/${pending.user.id}`, { token: admin.token })).status).toBe(200);
    expect((await call(app, 'GET', `/api/v1/users/${pending.user.id}`, { token: admin.token })).status).toBe(404);
  });

  it('non-admins get 403 on every admin route', async () => {
    const app = await make({}, b);
    await signup(app);
    const u = await makeUser(app);
    for (const [m, url, body] of [
      ['GET', '/api/v1/users', undefined],
      ['GET', `/api/v1/users/${u.user.id}`, undefined],
      ['PATCH', `/api/v1/users/${u.user.id}`, { role: 'admin' }],
      ['DELETE', `/api/v1/users/${u.user.id}`, undefined],
      ['GET', `/api/v1/users/${u.user.id}/sessions`, undefined],
      ['DELETE', `/api/v1/users/${u.user.id}/sessions`, undefined],
    ] as const) {
      const r = await call(app, m, url, { token: u.token, body });
      expect(r.status, `${m} ${url}`).toBe(403);
      expect(r.body.error.code).toBe('admin_required');
    }
    const me = await call(app, 'GET', '/api/v1/auths/', { token: u.token });
    expect(me.body.role).toBe('user');
  });

  it('the last active admin cannot be demoted, deactivated or deleted — also under concurrency', async () => {
    const app = await make({}, b);
    const a1 = await signup(app);
    for (const body of [{ role: 'user' }, { role: 'pending' }, { active: false }]) {
      const r = await call(app, 'PATCH', `/api/v1/users/${a1.user.id}`, { token: a1.token, body });
      expect(r.status).toBe(409);
      expect(r.body.error.code).toBe('last_admin');
    }
    expect((await call(app, 'DELETE', `/api/v1/users/${a1.user.id}`, { token: a1.token })).body.error.code).toBe(
      'last_admin',
    );
    const a2 = await makeUser(app, { role: 'admin' });
    // Two admins demote each other at the same moment: exactly one may succeed.
    const [r1, r2] = await Promise.all([
      call(app, 'PATCH', `/api/v1/users/${a2.user.id}`, { token: a1.token, body: { role: 'user' } }),
      call(app, 'PATCH', `/api/v1/users/${a1.user.id}`, { token: a2.token, body: { role: 'user' } }),
    ]);
    const statuses = [r1.status, r2.status].sort();
    expect(statuses[0]).toBe(200);
    expect([401, 409]).toContain(statuses[1]);
    const admins = await app.ctx.db.selectFrom('users').select('id').where('role', '=', 'admin').execute();
    expect(admins).toHaveLength(1);
  });
});
