/**
 * Trusted-header authentication: believed only from a FORWARDED_ALLOW_IPS peer (the socket
 * address, never X-Forwarded-For) and never while FORWARDED_ALLOW_IPS is `*`; a session of another
 * user on the same request is refused; provisioning follows the sign-up rules; CSRF still applies.
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, expect, it } from 'vitest';
import { peerMatcher } from '../../server/modules/sso/trusted-header.js';
import { call, createTestApp, describeMatrix, makeUser, matrix, signup, type TestApp } from '../harness.js';
import { auditRows, userByEmail } from './helpers.js';

const PROXY = '10.0.0.5';
const H = 'x-forwarded-email';

it('peer matching: IPs, CIDRs, IPv4-mapped IPv6', () => {
  const m = peerMatcher(['10.0.0.5', '192.168.1.0/24', 'fd00::/8']);
  expect(m('10.0.0.5')).toBe(true);
  expect(m('::ffff:10.0.0.5')).toBe(true);
  expect(m('10.0.0.6')).toBe(false);
  expect(m('192.168.1.77')).toBe(true);
  expect(m('192.168.2.1')).toBe(false);
  expect(m('fd12::1')).toBe(true);
  expect(m('fe80::1')).toBe(false);
  expect(m(undefined)).toBe(false);
  expect(m('not-an-ip')).toBe(false);
});

describeMatrix('trusted-header authentication', matrix(), (b) => {
  const apps: TestApp[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });
  async function make(env: Record<string, string> = {}, logs?: string[]) {
    const app = await createTestApp(b, {
      env: {
        HRIDAAI_AUTH_TRUSTED_EMAIL_HEADER: 'X-Forwarded-Email',
        HRIDAAI_AUTH_TRUSTED_NAME_HEADER: 'X-Forwarded-Name',
        HRIDAAI_AUTH_TRUSTED_GROUPS_HEADER: 'X-Forwarded-Groups',
        FORWARDED_ALLOW_IPS: `${PROXY},192.168.50.0/24`,
        ...env,
      },
      ...(logs
        ? {
            logger: pino(
              { level: 'warn' },
              new Writable({
                write(c, _e, cb) {
                  logs.push(String(c));
                  cb();
                },
              }),
            ),
          }
        : {}),
    });
    apps.push(app);
    return app;
  }
  const me = (app: TestApp, headers: Record<string, string>, remoteAddress = PROXY, token?: string) =>
    call(app, 'GET', '/api/v1/auths/', { headers, remoteAddress, token });

  it('FORWARDED_ALLOW_IPS=* : the header is ignored from every peer and a warning is logged at start', async () => {
    const logs: string[] = [];
    const app = await make({ FORWARDED_ALLOW_IPS: '*', ENABLE_SIGNUP: 'true' }, logs);
    await signup(app);
    expect(logs.join('\n')).toMatch(/HRIDAAI_AUTH_TRUSTED_EMAIL_HEADER.*IGNORED/);
    const r = await me(app, { [H]: 'someone@example.com' });
    expect(r.status).toBe(401);
    expect(await userByEmail(app, 'someone@example.com')).toBeUndefined();
  });

  it('believed only from a listed peer; X-Forwarded-For cannot fake the peer', async () => {
    const app = await make({ ENABLE_SIGNUP: 'true', DEFAULT_USER_ROLE: 'user' });
    await signup(app);
    const ok = await me(app, { [H]: 'Dana@Example.com', 'x-forwarded-name': 'Dana' });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ email: 'dana@example.com', name: 'Dana', role: 'user', session_id: null });
    expect((await me(app, { [H]: 'dana@example.com' }, '192.168.50.9')).status).toBe(200);
    expect((await me(app, { [H]: 'dana@example.com' }, `::ffff:${PROXY}`)).status).toBe(200);
    for (const peer of ['10.0.0.6', '127.0.0.1', '192.168.51.1']) {
      const r = await me(app, { [H]: 'dana@example.com', 'x-forwarded-for': PROXY }, peer);
      expect(r.status, peer).toBe(401);
    }
    // one account, linked to the header identity
    const u = (await userByEmail(app, 'dana@example.com'))!;
    const ident = await app.ctx.db.selectFrom('identities').select('provider').where('user_id', '=', u.id).execute();
    expect(ident.map((i) => i.provider)).toEqual(['trusted_header']);
  });

  it('a session of another user on the same request is refused; the same user’s is fine', async () => {
    const app = await make();
    const admin = await signup(app);
    const other = await makeUser(app, { email: 'other@example.com' });
    const mine = await makeUser(app, { email: 'mine@example.com' });
    const mismatch = await me(app, { [H]: 'mine@example.com' }, PROXY, other.token);
    expect(mismatch.status).toBe(401);
    expect(mismatch.body.error.code).toBe('trusted_header_mismatch');
    const viaCookie = await call(app, 'GET', '/api/v1/auths/', {
      headers: { [H]: 'mine@example.com' },
      remoteAddress: PROXY,
      cookie: admin.token,
    });
    expect(viaCookie.status).toBe(401);
    expect((await me(app, { [H]: 'mine@example.com' }, PROXY, mine.token)).body.email).toBe('mine@example.com');
    // without the header from the proxy, a normal session works as usual
    expect((await me(app, {}, PROXY, other.token)).body.email).toBe('other@example.com');
    const rows = await auditRows(app, 'auth.failure');
    expect(
      rows.some((r) => r.details.method === 'trusted_header' && r.details.reason === 'trusted_header_mismatch'),
    ).toBe(true);
  });

  it('provisioning follows ENABLE_SIGNUP; deactivated accounts and malformed headers are refused', async () => {
    const closed = await make();
    // a fresh install: the first account (created through the header) becomes admin
    const first = await me(closed, { [H]: 'boss@example.com' });
    expect(first.status).toBe(200);
    expect(first.body.role).toBe('admin');
    const stranger = await me(closed, { [H]: 'stranger@example.com' });
    expect(stranger.status).toBe(403);
    expect(stranger.body.error.code).toBe('signup_disabled');
    expect(await userByEmail(closed, 'stranger@example.com')).toBeUndefined();
    const known = await makeUser(closed, { email: 'known@example.com' });
    expect((await me(closed, { [H]: 'known@example.com' })).status).toBe(200);
    await closed.ctx.db.updateTable('users').set({ active: 0 }).where('id', '=', known.user.id).execute();
    await new Promise((r) => setTimeout(r, 1100));
    const inactive = await me(closed, { [H]: 'known@example.com' });
    expect(inactive.status).toBe(403);
    expect(inactive.body.error.code).toBe('account_inactive');
    const bad = await me(closed, { [H]: 'not an email' });
    expect(bad.status).toBe(401);
    expect(bad.body.error.code).toBe('trusted_header_invalid');

    const pending = await make({ ENABLE_SIGNUP: 'true' });
    await signup(pending);
    const p = await call(pending, 'GET', '/api/v1/users', {
      headers: { [H]: 'newbie@example.com' },
      remoteAddress: PROXY,
    });
    expect(p.status).toBe(403);
    expect(p.body.error.code).toBe('account_pending');
  });

  it('the CSRF origin check applies to header-authenticated requests', async () => {
    const app = await make();
    await signup(app);
    await makeUser(app, { email: 'csrf@example.com' });
    const r = await call(app, 'POST', '/api/v1/auths/update/profile', {
      headers: { [H]: 'csrf@example.com', origin: 'https://evil.example' },
      remoteAddress: PROXY,
      body: { name: 'Pwned' },
    });
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('csrf_origin_mismatch');
    expect((await userByEmail(app, 'csrf@example.com'))!.name).not.toBe('Pwned');
  });

  it('the groups header syncs only its own memberships', async () => {
    const app = await make();
    const admin = await signup(app);
    const mk = async (name: string) =>
      (await call(app, 'POST', '/api/v1/groups', { token: admin.token, body: { name } })).body.id as string;
    const a = await mk('Alpha');
    const bGroup = await mk('Beta');
    const u = await makeUser(app, { email: 'grp@example.com' });
    await call(app, 'POST', `/api/v1/groups/${bGroup}/members`, {
      token: admin.token,
      body: { user_ids: [u.user.id] },
    });
    expect((await me(app, { [H]: 'grp@example.com', 'x-forwarded-groups': 'alpha, beta' })).status).toBe(200);
    const rows = async () =>
      (
        await app.ctx.db
          .selectFrom('group_members')
          .select(['group_id', 'source'])
          .where('user_id', '=', u.user.id)
          .execute()
      )
        .map((m) => `${m.group_id === a ? 'alpha' : 'beta'}:${m.source}`)
        .sort();
    expect(await rows()).toEqual(['alpha:idp:trusted_header', 'beta:local']);
    expect((await me(app, { [H]: 'grp@example.com', 'x-forwarded-groups': '' })).status).toBe(200);
    expect(await rows()).toEqual(['beta:local']);
  });
});
