import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { call, createTestApp, describeMatrix, makeUser, matrix, signup, sleep, type TestApp } from '../harness.js';
import { allLogText, logEntries, memoryLogger, pipeline, trail } from './helpers.js';

const METADATA_FIELDS = [
  'log_type',
  'event',
  'id',
  'timestamp',
  'audit_level',
  'request_id',
  'user',
  'actor_id',
  'auth_kind',
  'key_id',
  'source_ip',
  'user_agent',
  'method',
  'url',
  'route',
  'status_code',
  'duration_ms',
].sort();
const REQUEST_FIELDS = [...METADATA_FIELDS, 'request_headers', 'request_body', 'request_body_truncated'].sort();
const RESPONSE_FIELDS = [...REQUEST_FIELDS, 'response_body', 'response_body_truncated'].sort();

const PASSWORD = 'Tr0ub4dor&3-audit-pw';
const NEW_PASSWORD = 'C0rrect-Horse-new-pw';

describeMatrix('request audit log', matrix(), (b) => {
  const apps: TestApp[] = [];
  async function make(env: Record<string, string>, logger?: ReturnType<typeof memoryLogger>['logger']) {
    const app = await createTestApp(b, { env, logger });
    apps.push(app);
    return app;
  }
  afterEach(async () => {
    vi.restoreAllMocks();
    while (apps.length) await apps.pop()!.close();
  });

  const requests = (entries: Record<string, unknown>[]) => entries.filter((e) => e.event === 'request');

  it('NONE (default) writes no log at all, but the trail still records sign-in', async () => {
    const app = await make({});
    expect(app.config.AUDIT_LOG_LEVEL).toBe('NONE');
    const admin = await signup(app, undefined, PASSWORD);
    await call(app, 'GET', '/api/v1/users', { token: admin.token });
    await call(app, 'GET', '/api/v1/users', { token: 'garbage' });
    await app.ctx.audit.flush();
    expect(existsSync(path.join(app.dataDir, 'audit.log'))).toBe(false);
    expect((await trail(app, 'auth.signup')).length).toBe(1);
    expect((await trail(app, 'auth.failure')).length).toBe(1);
  });

  it('METADATA: exactly the metadata fields, trusted-proxy client IP, user and request id', async () => {
    const app = await make({ AUDIT_LOG_LEVEL: 'METADATA', FORWARDED_ALLOW_IPS: '127.0.0.1' });
    const admin = await signup(app, undefined, PASSWORD);
    const r = await call(app, 'GET', '/api/v1/users?limit=5', {
      token: admin.token,
      headers: { 'user-agent': 'audit-test/1.0', 'x-forwarded-for': '203.0.113.7' },
    });
    expect(r.status).toBe(200);
    // A peer that is not a trusted proxy cannot choose the audited IP.
    await call(app, 'GET', '/api/v1/users', {
      token: admin.token,
      remoteAddress: '127.0.0.9',
      headers: { 'x-forwarded-for': '198.51.100.1' },
    });
    const entries = requests(await logEntries(app));
    const e = entries.find((x) => x.request_id === r.headers['x-request-id'])!;
    expect(e).toBeDefined();
    expect(Object.keys(e).sort()).toEqual(METADATA_FIELDS);
    expect(e).toMatchObject({
      log_type: 'audit',
      event: 'request',
      audit_level: 'METADATA',
      user: { id: admin.user.id, email: admin.user.email, role: 'admin' },
      actor_id: admin.user.id,
      auth_kind: 'session',
      key_id: null,
      source_ip: '203.0.113.7',
      user_agent: 'audit-test/1.0',
      method: 'GET',
      url: '/api/v1/users?limit=5',
      route: '/api/v1/users',
      status_code: 200,
    });
    expect(new Date(e.timestamp as string).toISOString()).toBe(e.timestamp);
    expect(typeof e.duration_ms).toBe('number');
    const forged = entries.find((x) => x.source_ip === '198.51.100.1');
    expect(forged).toBeUndefined();
    expect(entries.some((x) => x.source_ip === '127.0.0.9')).toBe(true);
    // sign-up is logged with the new account as its user
    const su = entries.find((x) => x.url === '/api/v1/auths/signup')!;
    expect(su.user).toMatchObject({ id: admin.user.id });
    expect(su.status_code).toBe(201);
  });

  it('REQUEST: adds redacted headers and the body, cut at MAX_BODY_LOG_SIZE', async () => {
    const app = await make({ AUDIT_LOG_LEVEL: 'REQUEST', MAX_BODY_LOG_SIZE: '64' });
    const admin = await signup(app, undefined, PASSWORD);
    const { user } = await makeUser(app);
    await call(app, 'PATCH', `/api/v1/users/${user.id}`, { token: admin.token, body: { name: 'Renamed' } });
    await call(app, 'PATCH', `/api/v1/users/${user.id}`, { token: admin.token, body: { name: 'x'.repeat(150) } });
    await call(app, 'POST', '/api/v1/auths/signin', { body: { email: 'a@b.co', password: PASSWORD } });
    const entries = requests(await logEntries(app));
    const patches = entries.filter((x) => x.method === 'PATCH');
    expect(patches).toHaveLength(2);
    for (const p of patches) expect(Object.keys(p).sort()).toEqual(REQUEST_FIELDS);
    expect(JSON.parse(patches[0]!.request_body as string)).toEqual({ name: 'Renamed' });
    expect(patches[0]!.request_body_truncated).toBe(false);
    expect(patches[1]!.request_body_truncated).toBe(true);
    expect(Buffer.byteLength(patches[1]!.request_body as string)).toBeLessThanOrEqual(64);
    expect((patches[0]!.request_headers as Record<string, string>).authorization).toBe('[REDACTED]');
    const signupEntry = entries.find((x) => x.url === '/api/v1/auths/signup')!;
    expect(signupEntry.request_body_truncated).toBe(true);
    const signinEntry = entries.find((x) => x.url === '/api/v1/auths/signin')!;
    expect(JSON.parse(signinEntry.request_body as string)).toEqual({ email: 'a@b.co', password: '[REDACTED]' });
    expect(allLogText(app.dataDir)).not.toContain(PASSWORD);
    expect(allLogText(app.dataDir)).not.toContain(admin.token);
  });

  it('REQUEST_RESPONSE: adds the response body; no password, token or API key is ever written', async () => {
    const app = await make({ AUDIT_LOG_LEVEL: 'REQUEST_RESPONSE', MAX_BODY_LOG_SIZE: '65536' });
    const admin = await signup(app, undefined, PASSWORD);
    const signin = await call(app, 'POST', '/api/v1/auths/signin', {
      body: { email: admin.user.email, password: PASSWORD },
    });
    expect(signin.status).toBe(200);
    const pw = await call(app, 'POST', '/api/v1/auths/update/password', {
      token: signin.body.token,
      body: { password: PASSWORD, new_password: NEW_PASSWORD },
    });
    expect(pw.status).toBe(200);
    await call(app, 'POST', '/api/v1/auths/signin', {
      body: { email: admin.user.email, password: 'wrong-' + PASSWORD },
    });
    const key = await call(app, 'POST', '/api/v1/api-keys', { token: signin.body.token, body: { name: 'ci' } });
    expect(key.status, key.text).toBe(201);
    const secretKey = key.body.key as string;
    expect(secretKey).toMatch(/^sk-/);
    // A request made with the key is audited like any other, with the key id.
    const me = await call(app, 'GET', '/api/v1/auths/?api_key=' + secretKey, { token: secretKey });
    expect(me.status).toBe(200);
    await call(app, 'GET', `/api/v1/users?token=${signin.body.token}`, { cookie: signin.body.token });

    const entries = requests(await logEntries(app));
    for (const e of entries) expect(Object.keys(e).sort()).toEqual(RESPONSE_FIELDS);
    const withKey = entries.find((x) => x.request_id === me.headers['x-request-id'])!;
    expect(withKey).toMatchObject({ auth_kind: 'api-key', key_id: key.body.id, user: { id: admin.user.id } });
    const created = entries.find((x) => x.request_id === key.headers['x-request-id'])!;
    expect(JSON.parse(created.response_body as string)).toMatchObject({ id: key.body.id, key: '[REDACTED]' });
    const si = entries.find((x) => x.request_id === signin.headers['x-request-id'])!;
    expect(JSON.parse(si.response_body as string)).toMatchObject({ token: '[REDACTED]' });
    expect(si.user).toMatchObject({ id: admin.user.id });

    const text = allLogText(app.dataDir);
    for (const secret of [PASSWORD, NEW_PASSWORD, 'wrong-' + PASSWORD, secretKey, signin.body.token, admin.token])
      expect(text.includes(secret), `log contains ${secret.slice(0, 6)}…`).toBe(false);
    expect(text).toContain('[REDACTED]');
  });

  it('excluded paths are skipped, but sign-in/out/up and failed authentication are always audited', async () => {
    const app = await make({ AUDIT_LOG_LEVEL: 'METADATA', AUDIT_EXCLUDED_PATHS: 'auths,users' });
    const admin = await signup(app, undefined, PASSWORD);
    await call(app, 'GET', '/api/v1/users', { token: admin.token });
    await call(app, 'GET', '/api/v1/auths/sessions', { token: admin.token });
    const bad = await call(app, 'GET', '/api/v1/users', { token: 'not-a-jwt' });
    expect(bad.status).toBe(401);
    const si = await call(app, 'POST', '/api/v1/auths/signin', {
      body: { email: admin.user.email, password: PASSWORD },
    });
    await call(app, 'POST', '/api/v1/auths/signout', { token: si.body.token });
    await call(app, 'GET', '/health');
    const entries = await logEntries(app);
    const urls = requests(entries).map((e) => `${e.method} ${e.url} ${e.status_code}`);
    expect(urls).toEqual([
      'POST /api/v1/auths/signup 201',
      'GET /api/v1/users 401',
      'POST /api/v1/auths/signin 200',
      'POST /api/v1/auths/signout 200',
    ]);
    const failure = entries.find((e) => e.event === 'auth')!;
    expect(failure).toMatchObject({ action: 'auth.failure', result: 'failure', method: 'token' });
    expect(failure.request_id).toBe(bad.headers['x-request-id']);
  });

  it('the default exclusions skip /chats, /chat and /folders', async () => {
    const app = await make({ AUDIT_LOG_LEVEL: 'METADATA' });
    const admin = await signup(app, undefined, PASSWORD);
    for (const u of ['/api/v1/chats/none', '/api/chat/none', '/api/v1/folders/none', '/api/v1/nothing-here'])
      await call(app, 'GET', u, { token: admin.token });
    const urls = requests(await logEntries(app)).map((e) => e.url);
    expect(urls).toContain('/api/v1/nothing-here');
    for (const u of ['/api/v1/chats/none', '/api/chat/none', '/api/v1/folders/none']) expect(urls).not.toContain(u);
  });

  it('included paths (whitelist) audit only those, matched on the route so encoding cannot dodge them', async () => {
    const app = await make({ AUDIT_LOG_LEVEL: 'METADATA', AUDIT_INCLUDED_PATHS: 'users' });
    const admin = await signup(app, undefined, PASSWORD);
    await call(app, 'GET', '/api/v1/users', { token: admin.token });
    await call(app, 'GET', '/api/v1/%75sers', { token: admin.token });
    await call(app, 'GET', '/api/v1/auths/', { token: admin.token });
    await call(app, 'GET', '/api/v1/auths/', { token: admin.token + 'x' });
    await call(app, 'POST', '/api/v1/auths/signout', { token: admin.token });
    const urls = requests(await logEntries(app)).map((e) => `${e.method} ${e.url} ${e.status_code}`);
    expect(urls).toEqual([
      'POST /api/v1/auths/signup 201',
      'GET /api/v1/users 200',
      'GET /api/v1/%75sers 200',
      'GET /api/v1/auths/ 401',
      'POST /api/v1/auths/signout 200',
    ]);
  });

  it('ENABLE_AUDIT_STDOUT writes the same JSON lines to standard output', async () => {
    const out: string[] = [];
    const real = process.stdout.write.bind(process.stdout);
    vi.spyOn(process.stdout, 'write').mockImplementation(((chunk: string, ...rest: unknown[]) => {
      if (String(chunk).includes('"log_type":"audit"')) {
        out.push(String(chunk));
        const cb = rest.find((x) => typeof x === 'function') as (() => void) | undefined;
        cb?.();
        return true;
      }
      return real(chunk, ...(rest as []));
    }) as typeof process.stdout.write);
    const app = await make({
      AUDIT_LOG_LEVEL: 'METADATA',
      ENABLE_AUDIT_STDOUT: 'true',
      ENABLE_AUDIT_LOGS_FILE: 'false',
    });
    await signup(app, undefined, PASSWORD);
    await app.ctx.audit.flush();
    const lines = out
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    expect(lines.some((l) => l.url === '/api/v1/auths/signup')).toBe(true);
    expect(existsSync(path.join(app.dataDir, 'audit.log'))).toBe(false);
  });

  it('rotates at AUDIT_LOG_FILE_ROTATION_SIZE and keeps AUDIT_LOG_FILE_ROTATION_KEEP files', async () => {
    const app = await make({
      AUDIT_LOG_LEVEL: 'METADATA',
      AUDIT_LOG_FILE_ROTATION_SIZE: '4KB',
      AUDIT_LOG_FILE_ROTATION_KEEP: '2',
    });
    const admin = await signup(app, undefined, PASSWORD);
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) {
      const r = await call(app, 'GET', `/api/v1/users?page=${i + 1}`, { token: admin.token });
      ids.push(r.headers['x-request-id'] as string);
    }
    await app.ctx.audit.flush();
    const files = readdirSync(app.dataDir)
      .filter((f) => f.startsWith('audit.log'))
      .sort();
    expect(files).toEqual(['audit.log', 'audit.log.1', 'audit.log.2']);
    for (const f of files) {
      const st = statSync(path.join(app.dataDir, f));
      expect(st.size).toBeLessThanOrEqual(4096);
      expect(st.mode & 0o777).toBe(0o600);
    }
    // the newest entries are all there, in order, and every line is whole JSON
    const texts = ['audit.log.2', 'audit.log.1', 'audit.log'].map((f) =>
      readFileSync(path.join(app.dataDir, f), 'utf8').split('\n').filter(Boolean),
    );
    const ordered = texts
      .flat()
      .map((l) => JSON.parse(l))
      .filter((e) => e.event === 'request')
      .map((e) => e.request_id);
    const tail = ids.slice(ids.length - ordered.length);
    expect(ordered.length).toBeGreaterThan(5);
    expect(ordered).toEqual(tail);
  });

  it('a failing sink is reported in logs and metrics, keeps its entries and catches up', async () => {
    const mem = memoryLogger();
    const base = path.join(tmpdir(), `hridaai-audit-blocked-${Date.now()}-${process.pid}`);
    writeFileSync(base, 'a file where a directory should be');
    try {
      const file = path.join(base, 'audit.log');
      const app = await make({ AUDIT_LOG_LEVEL: 'METADATA', AUDIT_LOGS_FILE_PATH: file }, mem.logger);
      const admin = await signup(app, undefined, PASSWORD);
      await call(app, 'GET', '/api/v1/users', { token: admin.token });
      await app.ctx.audit.flush();
      const stats = pipeline(app).stats().sinks.file!;
      expect(stats.errors).toBeGreaterThan(0);
      expect(stats.pending).toBe(2);
      expect(stats.dropped).toBe(0);
      expect(mem.lines.some((l) => l.msg === 'Audit sink write failed; entries kept and retried')).toBe(true);
      const metrics = await (
        app.ctx as unknown as { obs: { registry: { metrics(): Promise<string> } } }
      ).obs.registry.metrics();
      expect(metrics).toMatch(/hridaai_audit_sink_errors_total\{sink="file"\} [1-9]/);
      expect(metrics).toMatch(/hridaai_audit_entries_pending\{sink="file"\} 2/);
      // the disk comes back: the queued entries are written, none lost
      rmSync(base);
      mkdirSync(base);
      await call(app, 'GET', '/api/v1/auths/', { token: admin.token });
      await sleep(10);
      const entries = await logEntries(app, file);
      expect(requests(entries).map((e) => e.url)).toEqual(['/api/v1/auths/signup', '/api/v1/users', '/api/v1/auths/']);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });

  it('a stuck sink never delays responses (the log is written off the response path)', async () => {
    let held = 0;
    let stuck = true;
    let release: (() => void) | undefined;
    const real = process.stdout.write.bind(process.stdout);
    vi.spyOn(process.stdout, 'write').mockImplementation(((chunk: string, ...rest: unknown[]) => {
      if (String(chunk).includes('"log_type":"audit"')) {
        const cb = rest.find((x) => typeof x === 'function') as (() => void) | undefined;
        if (!stuck) {
          cb?.();
          return true;
        }
        held += 1; // never calls back while stuck
        release = cb;
        return true;
      }
      return real(chunk, ...(rest as []));
    }) as typeof process.stdout.write);
    const app = await make({
      AUDIT_LOG_LEVEL: 'REQUEST_RESPONSE',
      ENABLE_AUDIT_STDOUT: 'true',
      ENABLE_AUDIT_LOGS_FILE: 'false',
    });
    const admin = await signup(app, undefined, PASSWORD);
    // Were the log on the response path, these would wait forever for the stuck sink.
    for (let i = 0; i < 20; i++)
      expect((await call(app, 'GET', '/api/v1/users', { token: admin.token })).status).toBe(200);
    await sleep(20);
    expect(held).toBe(1);
    expect(pipeline(app).stats().sinks.stdout!.pending).toBeGreaterThanOrEqual(20);
    // once the sink recovers, everything queued is written
    stuck = false;
    release?.();
    await app.ctx.audit.flush();
    expect(pipeline(app).stats().sinks.stdout).toMatchObject({ pending: 0, dropped: 0 });
    expect(pipeline(app).stats().sinks.stdout!.written).toBeGreaterThanOrEqual(21);
  });
});
