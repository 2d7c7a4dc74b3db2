/**
 * LDAP sign-in against a real slapd with StartTLS and LDAPS and a throwaway CA: success over both
 * transports, a wrong CA refused, filter injection, empty passwords, no linking by e-mail, group
 * and role mapping, the login limiter, and a frozen directory (SIGSTOP) failing in time.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { userFilter } from '../../server/modules/sso/ldap.js';
import { startTestSlapd, type TestSlapd } from '../fixtures/slapd.js';
import {
  call,
  createTestApp,
  describeMatrix,
  makeUser,
  matrix,
  REQUIRE_SERVICES,
  signup,
  type TestApp,
} from '../harness.js';
import { auditRows, sessionCount, userByEmail } from './helpers.js';

const slapd: TestSlapd | null = await startTestSlapd().catch((e: unknown) => {
  if (REQUIRE_SERVICES) throw e;
  console.warn(`skipped: slapd could not start: ${(e as Error).message}`);
  return null;
});
if (!slapd && REQUIRE_SERVICES) throw new Error('HRIDAAI_REQUIRE_SERVICES=1 but slapd is not installed');

describe('LDAP filter construction', () => {
  it('escapes the typed user name (the value never becomes filter syntax)', () => {
    const f = (u: string) => userFilter({ userAttr: 'uid', extraFilter: null }, u).toString();
    expect(f('*')).toBe('(uid=\\2a)');
    expect(f(')(')).toBe('(uid=\\29\\28)');
    expect(f('admin)(|(a=*')).toBe('(uid=admin\\29\\28|\\28a=\\2a)');
    expect(f('a\\b')).toBe('(uid=a\\5cb)');
  });
});

const describeLdap = slapd
  ? describeMatrix
  : (name: string, _m: unknown, _fn: unknown) =>
      describe.skip(`${name} — skipped: slapd not installed`, () => undefined);
if (!slapd) console.warn('skipped: LDAP suite: slapd not installed');

describeLdap('LDAP sign-in', matrix(), (b) => {
  const s = slapd!;
  const apps: TestApp[] = [];
  let secretDir: string;
  let passwordFile: string;
  beforeAll(() => {
    secretDir = mkdtempSync(path.join(tmpdir(), 'ldap-secret-'));
    passwordFile = path.join(secretDir, 'reader');
    writeFileSync(passwordFile, `${s.readerPassword}\n`, { mode: 0o600 });
  });
  afterAll(() => rmSync(secretDir, { recursive: true, force: true }));
  afterEach(async () => {
    s.resume();
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });

  const startTls = () => ({
    ENABLE_LDAP: 'true',
    LDAP_SERVER_HOST: s.host,
    LDAP_SERVER_PORT: String(s.port),
    LDAP_USE_TLS: 'false',
    LDAP_USE_STARTTLS: 'true',
    LDAP_CA_CERT_FILE: s.caFile,
    LDAP_APP_DN: s.readerDn,
    LDAP_APP_PASSWORD_FILE: passwordFile,
    LDAP_SEARCH_BASE: `ou=people,${s.base}`,
    LDAP_SERVER_LABEL: 'Example Directory',
    LDAP_TIMEOUT: '2',
    LOGIN_BACKOFF_BASE: '0',
    LOGIN_MAX_ATTEMPTS: '1000',
    LOGIN_IP_MAX_ATTEMPTS: '1000',
  });
  const ldaps = () => ({
    ...startTls(),
    LDAP_USE_TLS: 'true',
    LDAP_USE_STARTTLS: 'false',
    LDAP_SERVER_PORT: String(s.ldapsPort),
  });

  async function make(env: Record<string, string>) {
    const app = await createTestApp(b, { env });
    apps.push(app);
    const admin = await signup(app);
    return { app, admin };
  }
  const ldapLogin = (app: TestApp, user: string, password: string) =>
    call(app, 'POST', '/api/v1/auths/ldap', { body: { user, password } });

  for (const [name, env] of [
    ['StartTLS', startTls],
    ['LDAPS', ldaps],
  ] as const) {
    it(`${name}: signs in, creates the account once, identity is the entryUUID`, async () => {
      const { app } = await make(env());
      expect((await call(app, 'GET', '/api/config')).body.ldap).toEqual({ label: 'Example Directory' });
      const r = await ldapLogin(app, 'alice', s.passwords.alice);
      expect(r.status).toBe(200);
      expect(r.body.user).toMatchObject({ email: 'alice@example.test', name: 'Alice Example' });
      expect(r.cookies.token).toBeTruthy();
      const me = await call(app, 'GET', '/api/v1/auths/', { token: r.body.token });
      expect(me.status).toBe(200);
      const ident = await app.ctx.db
        .selectFrom('identities')
        .selectAll()
        .where('provider', '=', 'ldap')
        .where('user_id', '=', r.body.user.id)
        .executeTakeFirstOrThrow();
      expect(ident.subject).toMatch(/^entryUUID:[0-9a-f-]{36}$/);
      const session = await app.ctx.db
        .selectFrom('sessions')
        .select('kind')
        .where('id', '=', me.body.session_id)
        .executeTakeFirstOrThrow();
      expect(session.kind).toBe('ldap');
      expect(
        (await auditRows(app, 'auth.signup')).some((x) => x.details.method === 'ldap' && x.result === 'success'),
      ).toBe(true);
      const again = await ldapLogin(app, 'ALICE', s.passwords.alice);
      expect(again.status).toBe(200);
      expect(again.body.user.id).toBe(r.body.user.id);
      // the directory's e-mail is lower-cased
      const bob = await ldapLogin(app, 'bob', s.passwords.bob);
      expect(bob.body.user.email).toBe('bob@example.test');
    });

    it(`${name}: a certificate from another CA is refused while validating`, async () => {
      const { app } = await make({ ...env(), LDAP_CA_CERT_FILE: s.wrongCaFile });
      const before = await sessionCount(app);
      const r = await ldapLogin(app, 'alice', s.passwords.alice);
      expect(r.status).toBe(503);
      expect(r.body.error.code).toBe('ldap_unavailable');
      expect(await sessionCount(app)).toBe(before);
      expect(await userByEmail(app, 'alice@example.test')).toBeUndefined();
      const lax = await make({ ...env(), LDAP_CA_CERT_FILE: s.wrongCaFile, LDAP_VALIDATE_CERT: 'false' });
      expect((await ldapLogin(lax.app, 'alice', s.passwords.alice)).status).toBe(200);
    });
  }

  it('the service account password may come from LDAP_APP_PASSWORD, and a wrong one is a directory error', async () => {
    const env = { ...startTls(), LDAP_APP_PASSWORD_FILE: '', LDAP_APP_PASSWORD: s.readerPassword };
    const { app } = await make(env);
    expect((await ldapLogin(app, 'alice', s.passwords.alice)).status).toBe(200);
    const bad = await make({ ...env, LDAP_APP_PASSWORD: 'wrong' });
    const r = await ldapLogin(bad.app, 'alice', s.passwords.alice);
    expect(r.status).toBe(503);
    expect(r.body.error.code).toBe('ldap_unavailable');
  });

  it('wrong password, unknown user, empty password and filter-injection user names open nothing', async () => {
    const { app } = await make(startTls());
    const before = await sessionCount(app);
    const cases: [string, string][] = [
      ['alice', 'wrong'],
      ['alice', ''],
      ['nobody', 'x'],
      ['carol', ''],
      ['*', s.passwords.alice],
      ['ali*', s.passwords.alice],
      ['*lice', s.passwords.alice],
      [')(', s.passwords.alice],
      ['admin)(|(a=*', s.passwords.alice],
      ['*)(uid=alice', s.passwords.alice],
      ['alice)(uid=*', s.passwords.alice],
      ['*', ''],
    ];
    for (const [user, pw] of cases) {
      const r = await ldapLogin(app, user, pw);
      expect(r.status, `${user} / ${pw ? 'pw' : 'empty'}`).toBe(401);
      expect(r.body.error.code).toBe('invalid_credentials');
      expect(r.cookies.token).toBeUndefined();
    }
    expect(await sessionCount(app)).toBe(before);
    expect(await userByEmail(app, 'alice@example.test')).toBeUndefined();
    const audited = (await auditRows(app, 'auth.signin')).filter((r) => r.details.method === 'ldap');
    expect(audited).toHaveLength(cases.length);
    expect(audited.every((r) => r.result === 'failure' && r.details.reason === 'invalid_credentials')).toBe(true);
  });

  it('an entry without an e-mail is refused; a local account with the same e-mail is never taken over', async () => {
    const { app } = await make(startTls());
    const before = await sessionCount(app);
    const carol = await ldapLogin(app, 'carol', s.passwords.carol);
    expect(carol.status).toBe(403);
    const local = await makeUser(app, { email: 'alice@example.test' });
    const r = await ldapLogin(app, 'alice', s.passwords.alice);
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('oauth_account_exists');
    expect(await sessionCount(app)).toBe(before + 1); // only makeUser's own session
    expect(
      await app.ctx.db
        .selectFrom('identities')
        .select('id')
        .where('provider', '=', 'ldap')
        .where('user_id', '=', local.user.id)
        .executeTakeFirst(),
    ).toBeUndefined();
  });

  it('groups: LDAP_ALLOWED_GROUPS, LDAP_ADMIN_GROUPS and membership sync', async () => {
    const { app, admin } = await make({
      ...startTls(),
      LDAP_ADMIN_GROUPS: `cn=admins,ou=groups,${s.base}`,
      LDAP_ALLOWED_GROUPS: 'staff',
      ENABLE_LDAP_GROUP_MANAGEMENT: 'true',
    });
    const staff = (await call(app, 'POST', '/api/v1/groups', { token: admin.token, body: { name: 'Staff' } })).body.id;
    const carol = await ldapLogin(app, 'carol', s.passwords.carol);
    expect(carol.status).toBe(403); // no mail is checked first; carol is in no allowed group either
    const alice = await ldapLogin(app, 'alice', s.passwords.alice);
    expect(alice.status).toBe(200);
    expect(alice.body.user.role).toBe('admin');
    const bob = await ldapLogin(app, 'bob', s.passwords.bob);
    expect(bob.body.user.role).toBe('user');
    const m = await app.ctx.db
      .selectFrom('group_members')
      .selectAll()
      .where('group_id', '=', staff)
      .orderBy('user_id')
      .execute();
    expect(m.map((x) => x.source)).toEqual(['idp:ldap', 'idp:ldap']);
  });

  it('the login limiter counts LDAP failures: locked out, the right password is refused without asking the directory', async () => {
    const { app } = await make({ ...startTls(), LOGIN_MAX_ATTEMPTS: '3' });
    for (let i = 0; i < 3; i++) expect((await ldapLogin(app, 'alice', 'wrong')).status).toBe(401);
    s.pause(); // a refused attempt must not even reach the directory
    const locked = await ldapLogin(app, 'alice', s.passwords.alice);
    s.resume();
    expect(locked.status).toBe(401);
    expect(locked.cookies.token).toBeUndefined();
    expect((await ldapLogin(app, 'bob', s.passwords.bob)).status).toBe(200);
  });

  it('a frozen directory (SIGSTOP) fails the sign-in in time', async () => {
    for (const env of [startTls(), ldaps()]) {
      const { app } = await make(env);
      const before = await sessionCount(app);
      s.pause();
      const started = Date.now();
      const r = await ldapLogin(app, 'alice', s.passwords.alice);
      const took = Date.now() - started;
      s.resume();
      expect(r.status).toBe(503);
      expect(r.body.error.code).toBe('ldap_unavailable');
      expect(took).toBeLessThan(8000);
      expect(await sessionCount(app)).toBe(before);
      // and it recovers
      expect((await ldapLogin(app, 'alice', s.passwords.alice)).status).toBe(200);
    }
  }, 60_000);

  it('ENABLE_LDAP=false refuses the route', async () => {
    const { app } = await make({});
    const r = await ldapLogin(app, 'alice', s.passwords.alice);
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('ldap_disabled');
    expect((await call(app, 'GET', '/api/config')).body.ldap).toBeNull();
  });
});

afterAll(async () => {
  await slapd?.stop();
});
