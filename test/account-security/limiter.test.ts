import { afterEach, expect, it } from 'vitest';
import { newKey } from '../../server/modules/api-keys/format.js';
import { accountSubject, ipSubject } from '../../server/modules/account-security/limiter.js';
import {
  call,
  createTestApp,
  describeMatrix,
  makeUser,
  matrix,
  signup,
  uniqueEmail,
  type TestApp,
} from '../harness.js';
import { captureAuthEvents, fixClock, signin } from './helpers.js';

const PW = 'the right password';

describeMatrix('login limiter', matrix({ full: true }), (b) => {
  const apps: TestApp[] = [];
  const make = async (env: Record<string, string> = {}, shareWith?: TestApp) => {
    const a = await createTestApp(b, { env, shareWith });
    apps.unshift(a);
    return a;
  };
  afterEach(async () => {
    for (const a of apps.splice(0)) await a.close();
  });

  async function lockoutOf(app: TestApp, adminToken: string, id: string) {
    const r = await call(app, 'GET', '/api/v1/admin/lockouts', { token: adminToken });
    expect(r.status).toBe(200);
    return (r.body.items as { id: string }[]).find((e) => e.id === id) as Record<string, unknown> | undefined;
  }

  it('N failures lock the account: the right password then gets the same answer; admins list and clear it', async () => {
    const app = await make({ LOGIN_MAX_ATTEMPTS: '3', LOGIN_BACKOFF_BASE: '0' });
    const events = captureAuthEvents(app);
    const admin = await signup(app);
    const u = await makeUser(app, { password: PW });
    const wrong: { status: number; body: unknown }[] = [];
    for (let i = 0; i < 3; i++) wrong.push(await signin(app, u.user.email, 'wrong password'));
    expect(wrong.every((r) => r.status === 401)).toBe(true);
    const locked = await signin(app, u.user.email, PW);
    expect(locked.status).toBe(401);
    expect(locked.body).toEqual(wrong[0]!.body);
    expect(locked.body.error.message).toMatch(/too many failed attempts/);
    // Audited: the lockout, and the refused attempt with its reason.
    expect(events.some((e) => e.action === 'auth.lockout' && e.userId === u.user.id)).toBe(true);
    expect(events.filter((e) => e.reason === 'login_locked')).toHaveLength(1);

    const id = accountSubject(u.user.email).id;
    const entry = await lockoutOf(app, admin.token, id);
    expect(entry).toMatchObject({ kind: 'account', label: u.user.email, user_id: u.user.id, locked: true, refused: 1 });
    const sec = await call(app, 'GET', `/api/v1/users/${u.user.id}/security`, { token: admin.token });
    expect(sec.body.lockout.locked).toBe(true);
    const store = (await call(app, 'GET', '/api/v1/admin/lockouts', { token: admin.token })).body.store;
    expect(store).toBe(b.redis ? 'redis' : 'database');

    // Only admins; an unknown id is 404.
    expect((await call(app, 'GET', '/api/v1/admin/lockouts', { token: u.token })).status).toBe(403);
    expect((await call(app, 'DELETE', `/api/v1/admin/lockouts/${id}`, { token: u.token })).status).toBe(403);
    expect(
      (await call(app, 'DELETE', `/api/v1/admin/lockouts/a_${'0'.repeat(40)}`, { token: admin.token })).status,
    ).toBe(404);
    const cleared = await call(app, 'DELETE', `/api/v1/admin/lockouts/${id}`, { token: admin.token });
    expect(cleared.status).toBe(200);
    expect(cleared.body.entry.label).toBe(u.user.email);
    expect((await signin(app, u.user.email, PW)).status).toBe(200);
    await app.ctx.audit.flush();
    const ev = await app.ctx.db
      .selectFrom('audit_events')
      .select('action')
      .where('action', '=', 'login_lockout.cleared')
      .execute();
    expect(ev).toHaveLength(1);
  });

  it('unknown accounts lock the same way (a lockout tells nothing about existence)', async () => {
    const app = await make({ LOGIN_MAX_ATTEMPTS: '2', LOGIN_BACKOFF_BASE: '0' });
    const admin = await signup(app);
    const ghost = uniqueEmail('ghost');
    for (let i = 0; i < 3; i++) await signin(app, ghost, 'x');
    const entry = await lockoutOf(app, admin.token, accountSubject(ghost).id);
    expect(entry).toMatchObject({ locked: true, user_id: null, refused: 1 });
  });

  it('concurrent attempts: no more than N are processed before the lockout', async () => {
    const N = 5;
    const app = await make({ LOGIN_MAX_ATTEMPTS: String(N), LOGIN_BACKOFF_BASE: '0' });
    const events = captureAuthEvents(app);
    const admin = await signup(app);
    const u = await makeUser(app, { password: PW });
    const results = await Promise.all(Array.from({ length: 4 * N }, () => signin(app, u.user.email, 'wrong password')));
    expect(results.every((r) => r.status === 401)).toBe(true);
    const processed = events.filter((e) => e.email === u.user.email && e.reason === 'invalid_credentials').length;
    const refused = events.filter((e) => e.email === u.user.email && e.reason === 'login_locked').length;
    expect(processed + refused).toBe(4 * N);
    expect(processed).toBeLessThanOrEqual(N);
    expect(processed).toBeGreaterThanOrEqual(1);
    const entry = await lockoutOf(app, admin.token, accountSubject(u.user.email).id);
    expect(entry).toMatchObject({ locked: true, lockouts: 1, refused });
    expect((await signin(app, u.user.email, PW)).status).toBe(401);
  });

  it('exponential back-off, lockout expiry and a doubled second lockout (fixed clock)', async () => {
    const app = await make({ LOGIN_MAX_ATTEMPTS: '5', LOGIN_BACKOFF_BASE: '1s', LOGIN_LOCKOUT_DURATION: '15m' });
    const clock = fixClock(app, Date.now());
    const u = await makeUser(app, { password: PW });
    const events = captureAuthEvents(app);
    const fail = () => signin(app, u.user.email, 'wrong password');
    await fail();
    await fail();
    await fail(); // 3rd failure: the next attempt must wait 1 s
    expect(events.filter((e) => e.reason === 'invalid_credentials')).toHaveLength(3);
    expect((await signin(app, u.user.email, PW)).status).toBe(401); // too early, even with the right password
    expect(events.at(-1)!.reason).toBe('login_backoff');
    clock.advance(1000);
    await fail(); // 4th: wait 2 s
    clock.advance(1999);
    await fail();
    expect(events.at(-1)!.reason).toBe('login_backoff');
    clock.advance(1);
    await fail(); // 5th: locked for 15 minutes
    expect(events.filter((e) => e.reason === 'invalid_credentials')).toHaveLength(5);
    clock.advance(15 * 60_000 - 1);
    expect((await signin(app, u.user.email, PW)).status).toBe(401);
    expect(events.at(-1)!.reason).toBe('login_locked');
    clock.advance(1);
    expect((await signin(app, u.user.email, PW)).status).toBe(200);
    // Success cleared the account: the next lockout starts from zero failures, at the base duration.
    for (let i = 0; i < 5; i++) {
      clock.advance(10_000);
      await fail();
    }
    const entry = await app.ctx.accountSecurity.limiter.get(accountSubject(u.user.email).id);
    expect(entry!.locked_until! - clock.now).toBe(15 * 60_000);
    // A second lockout without a success in between doubles.
    clock.advance(15 * 60_000);
    for (let i = 0; i < 5; i++) {
      clock.advance(10_000);
      await fail();
    }
    const again = await app.ctx.accountSecurity.limiter.get(accountSubject(u.user.email).id);
    expect(again!.locked_until! - clock.now).toBe(30 * 60_000);
  });

  it('password spraying (one password, many accounts, one address) is caught by the address key', async () => {
    const app = await make({ LOGIN_IP_MAX_ATTEMPTS: '10', LOGIN_BACKOFF_BASE: '0' });
    const admin = await signup(app);
    const victim = await makeUser(app, { password: PW });
    const sprayer = '127.0.0.9';
    for (let i = 0; i < 10; i++) {
      const r = await signin(app, uniqueEmail('spray'), 'Summer2024!', { remoteAddress: sprayer });
      expect(r.status).toBe(401);
    }
    expect((await signin(app, victim.user.email, PW, { remoteAddress: sprayer })).status).toBe(401);
    expect((await signin(app, victim.user.email, PW, { remoteAddress: '127.0.0.10' })).status).toBe(200);
    const entry = await lockoutOf(app, admin.token, ipSubject(sprayer).id);
    expect(entry).toMatchObject({ kind: 'ip', label: sprayer, locked: true });
  });

  it('a success clears the account count, never the address count', async () => {
    const app = await make({ LOGIN_IP_MAX_ATTEMPTS: '6', LOGIN_BACKOFF_BASE: '0' });
    const u = await makeUser(app, { password: PW });
    const ip = '127.0.0.11';
    for (let i = 0; i < 5; i++) await signin(app, uniqueEmail(), 'x', { remoteAddress: ip });
    expect((await signin(app, u.user.email, PW, { remoteAddress: ip })).status).toBe(200);
    const entry = await app.ctx.accountSecurity.limiter.get(ipSubject(ip).id);
    expect(entry!.failures).toBe(5);
    await signin(app, uniqueEmail(), 'x', { remoteAddress: ip });
    expect((await signin(app, u.user.email, PW, { remoteAddress: ip })).status).toBe(401);
  });

  it('X-Forwarded-For from an untrusted peer is ignored: it neither escapes nor resets the count', async () => {
    const app = await make({ FORWARDED_ALLOW_IPS: '127.0.0.1', LOGIN_IP_MAX_ATTEMPTS: '5', LOGIN_BACKOFF_BASE: '0' });
    const u = await makeUser(app, { password: PW });
    const peer = '127.0.0.2';
    for (let i = 0; i < 4; i++)
      await signin(app, uniqueEmail(), 'x', {
        remoteAddress: peer,
        headers: { 'x-forwarded-for': `127.0.${i}.${i + 100}` },
      });
    // A success with a forged header from the same peer only refunds itself.
    const ok = await signin(app, u.user.email, PW, {
      remoteAddress: peer,
      headers: { 'x-forwarded-for': '127.0.0.1' },
    });
    expect(ok.status).toBe(200);
    expect((await app.ctx.accountSecurity.limiter.get(ipSubject(peer).id))!.failures).toBe(4);
    for (const xff of ['127.0.0.200', '127.0.0.1'])
      expect(
        (await app.ctx.accountSecurity.limiter.get(ipSubject(xff).id))?.failures ?? 0,
        `nothing counted for forged ${xff}`,
      ).toBe(0);
    await signin(app, uniqueEmail(), 'x', { remoteAddress: peer, headers: { 'x-forwarded-for': '127.0.0.200' } });
    const locked = await signin(app, u.user.email, PW, {
      remoteAddress: peer,
      headers: { 'x-forwarded-for': '127.0.9.9' },
    });
    expect(locked.status).toBe(401);
    // Through the trusted proxy the client address is believed and counted on its own.
    const viaProxy = await signin(app, u.user.email, PW, {
      remoteAddress: '127.0.0.1',
      headers: { 'x-forwarded-for': '127.0.0.77' },
    });
    expect(viaProxy.status).toBe(200);
  });

  it('counts are shared between instances and survive a restart', async () => {
    const a = await make({ LOGIN_MAX_ATTEMPTS: '3', LOGIN_BACKOFF_BASE: '0' });
    const admin = await signup(a);
    const u = await makeUser(a, { password: PW });
    await signin(a, u.user.email, 'wrong');
    await signin(a, u.user.email, 'wrong');
    // A second instance on the same storage: it has never seen these failures in memory.
    const bInst = await make({ LOGIN_MAX_ATTEMPTS: '3', LOGIN_BACKOFF_BASE: '0' }, a);
    await a.app.close(); // the first instance is gone
    const entry = await bInst.ctx.accountSecurity.limiter.get(accountSubject(u.user.email).id);
    expect(entry!.failures).toBe(2);
    await signin(bInst, u.user.email, 'wrong');
    expect((await signin(bInst, u.user.email, PW)).status).toBe(401);
    // A third instance started later agrees.
    const c = await make({ LOGIN_MAX_ATTEMPTS: '3', LOGIN_BACKOFF_BASE: '0' }, a);
    expect((await signin(c, u.user.email, PW)).status).toBe(401);
    const listed = await call(c, 'GET', '/api/v1/admin/lockouts?locked_only=true', { token: admin.token });
    expect(listed.body.items.map((e: { label: string }) => e.label)).toContain(u.user.email);
    // Concurrent failures on two instances: still no more than N processed.
    const v = await makeUser(c, { password: PW });
    const events = [captureAuthEvents(bInst), captureAuthEvents(c)];
    await Promise.all(Array.from({ length: 12 }, (_, i) => signin(i % 2 ? bInst : c, v.user.email, 'wrong')));
    const processed = events.flat().filter((e) => e.email === v.user.email && e.reason === 'invalid_credentials');
    expect(processed.length).toBeLessThanOrEqual(3);
  });

  it('API-key failures count on the client address (each new bad key once)', async () => {
    const app = await make({ LOGIN_IP_MAX_ATTEMPTS: '3', LOGIN_BACKOFF_BASE: '0' });
    const u = await makeUser(app, { password: PW });
    const ip = '127.0.0.12';
    const same = newKey().key;
    for (let i = 0; i < 3; i++) await call(app, 'GET', '/api/v1/auths/', { token: same, remoteAddress: ip });
    expect((await app.ctx.accountSecurity.limiter.get(ipSubject(ip).id))!.failures).toBe(1);
    for (let i = 0; i < 2; i++) {
      const r = await call(app, 'GET', '/api/v1/auths/', { token: newKey().key, remoteAddress: ip });
      expect(r.status).toBe(401);
    }
    expect((await signin(app, u.user.email, PW, { remoteAddress: ip })).status).toBe(401);
    expect((await signin(app, u.user.email, PW, { remoteAddress: '127.0.0.13' })).status).toBe(200);
  });
});
