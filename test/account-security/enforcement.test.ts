import pino from 'pino';
import { afterEach, expect, it } from 'vitest';
import { buildApp } from '../../server/app.js';
import { loadConfig } from '../../server/config/index.js';
import { totpCode, TOTP_STEP_MS } from '../../server/modules/account-security/totp.js';
import { call, createTestApp, describeMatrix, makeUser, matrix, signup, type TestApp } from '../harness.js';
import { enrol, fixClock, midStep, signin } from './helpers.js';

describeMatrix('ENFORCE_2FA and forced password change', matrix(), (b) => {
  const apps: TestApp[] = [];
  const make = async (env: Record<string, string> = {}) => {
    const a = await createTestApp(b, { env: { LOGIN_BACKOFF_BASE: '0', ...env } });
    apps.push(a);
    return a;
  };
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });

  it('ENFORCE_2FA: a user without 2FA can only enrol, read the account and sign out — then everything', async () => {
    const app = await make({ ENFORCE_2FA: 'true' });
    const clock = fixClock(app, midStep());
    const admin = await signup(app);
    const pw = 'user password 1';
    const u = await makeUser(app, { password: pw });
    const s = await signin(app, u.user.email, pw);
    expect(s.status).toBe(200);
    expect(s.body.two_factor_enrolment_required).toBe(true);
    const token = s.body.token;

    const me = await call(app, 'GET', '/api/v1/auths/', { token });
    expect(me.status).toBe(200);
    expect(me.body.restrictions).toEqual(['two_factor_enrolment_required']);
    for (const [m, url, body] of [
      ['GET', '/api/v1/auths/sessions', undefined],
      ['POST', '/api/v1/auths/update/profile', { name: 'X' }],
      ['POST', '/api/v1/api-keys', { name: 'k' }],
      ['POST', '/api/v1/auths/update/password', { password: pw, new_password: 'another password' }],
    ] as const) {
      const r = await call(app, m, url, { token, body });
      expect(r.status, url).toBe(403);
      expect(r.body.error.code, url).toBe('two_factor_enrolment_required');
    }
    // The admin's own session is restricted too (signed up without 2FA).
    const adminUsers = await call(app, 'GET', '/api/v1/users', { token: admin.token });
    expect(adminUsers.status).toBe(403);
    expect(adminUsers.body.error.code).toBe('two_factor_enrolment_required');

    const { secret } = await enrol(app, token, pw);
    expect((await call(app, 'GET', '/api/v1/auths/sessions', { token })).status).toBe(200);
    expect((await call(app, 'GET', '/api/v1/auths/', { token })).body.restrictions).toEqual([]);
    // Cannot be turned off while enforced.
    clock.advance(TOTP_STEP_MS);
    const off = await call(app, 'POST', '/api/v1/auths/2fa/disable', {
      token,
      body: { password: pw, code: totpCode(secret, clock.now) },
    });
    expect(off.status).toBe(403);
    expect(off.body.error.code).toBe('two_factor_enforced');
    // Next sign-in goes through the code, and the session is not restricted.
    const c = await signin(app, u.user.email, pw);
    expect(c.body.two_factor_required).toBe(true);
    const v = await call(app, 'POST', '/api/v1/auths/2fa/verify', {
      body: { challenge_token: c.body.challenge_token, code: totpCode(secret, clock.now) },
    });
    expect(v.status).toBe(200);
    expect(v.body.two_factor_enrolment_required).toBeUndefined();

    // Admin reset (the admin enrols first): the user is restricted again at once.
    const adm = await enrol(app, admin.token, admin.password);
    void adm;
    expect((await call(app, 'DELETE', `/api/v1/users/${u.user.id}/2fa`, { token: admin.token })).status).toBe(200);
    const after = await call(app, 'GET', '/api/v1/auths/sessions', { token: v.body.token });
    expect(after.status).toBe(403);
    expect(after.body.error.code).toBe('two_factor_enrolment_required');
  });

  it('ENFORCE_2FA exempts single sign-on sessions and admin impersonation; needs ENABLE_2FA', async () => {
    const app = await make({ ENFORCE_2FA: 'true' });
    const admin = await signup(app);
    const u = await makeUser(app);
    // An impersonation session (actor = an admin) is not held to the user's enrolment.
    const imp = await app.ctx.sessions.create(app.ctx.db, {
      userId: u.user.id,
      actorId: admin.user.id,
      kind: 'impersonation',
      ip: null,
      userAgent: null,
    });
    expect((await call(app, 'GET', '/api/v1/auths/sessions', { token: imp.token })).status).toBe(200);
    expect((await call(app, 'GET', '/api/v1/auths/sessions', { token: u.token })).body.error.code).toBe(
      'two_factor_enrolment_required',
    );
    for (const kind of ['oidc', 'oidc:google', 'oidc:github']) {
      const sso = await app.ctx.sessions.create(app.ctx.db, { userId: u.user.id, kind, ip: null, userAgent: null });
      expect((await call(app, 'GET', '/api/v1/auths/sessions', { token: sso.token })).status, kind).toBe(200);
    }
    const ldap = await app.ctx.sessions.create(app.ctx.db, {
      userId: u.user.id,
      kind: 'ldap',
      ip: null,
      userAgent: null,
    });
    expect((await call(app, 'GET', '/api/v1/auths/sessions', { token: ldap.token })).body.error.code).toBe(
      'two_factor_enrolment_required',
    );
    // Refused at start, before anything is opened.
    const cfg = loadConfig({ ...app.env, ENFORCE_2FA: 'true', ENABLE_2FA: 'false' });
    await expect(buildApp(cfg, { logger: pino({ level: 'silent' }) })).rejects.toThrow(
      /ENFORCE_2FA: requires ENABLE_2FA/,
    );
  });

  it('admin password reset: temporary password, every session revoked, change forced at next sign-in', async () => {
    const app = await make({ ENABLE_PASSWORD_VALIDATION: 'true' });
    const admin = await signup(app, undefined, 'Admin-Pass-1!');
    const pw = 'User-Pass-1!';
    const u = await makeUser(app, { password: pw });
    const s1 = await signin(app, u.user.email, pw);
    expect(s1.status).toBe(200);

    // Only admins; unknown id → 404; the password policy applies.
    const byUser = await call(app, 'POST', `/api/v1/users/${admin.user.id}/password`, {
      token: u.token,
      body: { password: 'Whatever-1!' },
    });
    expect(byUser.status).toBe(403);
    expect(
      (
        await call(app, 'POST', '/api/v1/users/nope/password', {
          token: admin.token,
          body: { password: 'Temp-Pass-1!' },
        })
      ).status,
    ).toBe(404);
    const weak = await call(app, 'POST', `/api/v1/users/${u.user.id}/password`, {
      token: admin.token,
      body: { password: 'weak' },
    });
    expect(weak.body.error.code).toBe('password_too_weak');

    const temp = 'Temp-Pass-1!';
    const reset = await call(app, 'POST', `/api/v1/users/${u.user.id}/password`, {
      token: admin.token,
      body: { password: temp },
    });
    expect(reset.status).toBe(200);
    expect(reset.body).toMatchObject({ must_change_password: true });
    expect(reset.body.sessions_revoked).toBeGreaterThanOrEqual(2);
    for (const t of [u.token, s1.body.token])
      expect((await call(app, 'GET', '/api/v1/auths/', { token: t })).status).toBe(401);
    expect((await signin(app, u.user.email, pw)).status).toBe(401);

    const s2 = await signin(app, u.user.email, temp);
    expect(s2.status).toBe(200);
    expect(s2.body.password_change_required).toBe(true);
    const token = s2.body.token;
    const blocked = await call(app, 'GET', '/api/v1/auths/sessions', { token });
    expect(blocked.status).toBe(403);
    expect(blocked.body.error.code).toBe('password_change_required');
    expect((await call(app, 'GET', '/api/v1/auths/', { token })).body.restrictions).toEqual([
      'password_change_required',
    ]);
    const same = await call(app, 'POST', '/api/v1/auths/update/password', {
      token,
      body: { password: temp, new_password: temp },
    });
    expect(same.status).toBe(400);
    expect(same.body.error.code).toBe('password_reuse');
    const tooWeak = await call(app, 'POST', '/api/v1/auths/update/password', {
      token,
      body: { password: temp, new_password: 'weak' },
    });
    expect(tooWeak.body.error.code).toBe('password_too_weak');
    const changed = await call(app, 'POST', '/api/v1/auths/update/password', {
      token,
      body: { password: temp, new_password: 'Fresh-Pass-2!' },
    });
    expect(changed.status).toBe(200);
    expect((await call(app, 'GET', '/api/v1/auths/sessions', { token })).status).toBe(200);
    const s3 = await signin(app, u.user.email, 'Fresh-Pass-2!');
    expect(s3.body.password_change_required).toBeUndefined();

    // The audit trail has the reset, without the password.
    await app.ctx.audit.flush();
    const ev = await app.ctx.db
      .selectFrom('audit_events')
      .selectAll()
      .where('action', '=', 'user.password_reset')
      .execute();
    expect(ev).toHaveLength(1);
    expect(JSON.stringify(ev)).not.toContain(temp);
  });

  it('an admin can require a password change; it applies at once to password sessions', async () => {
    const app = await make();
    const admin = await signup(app);
    const pw = 'user password 1';
    const u = await makeUser(app, { password: pw });
    const s = await signin(app, u.user.email, pw);
    const token = s.body.token;
    expect((await call(app, 'GET', '/api/v1/auths/sessions', { token })).status).toBe(200);
    const r = await call(app, 'POST', `/api/v1/users/${u.user.id}/require-password-change`, {
      token: admin.token,
      body: { required: true },
    });
    expect(r.status).toBe(200);
    const blocked = await call(app, 'GET', '/api/v1/auths/sessions', { token });
    expect(blocked.body.error.code).toBe('password_change_required');
    const sec = await call(app, 'GET', `/api/v1/users/${u.user.id}/security`, { token: admin.token });
    expect(sec.body.must_change_password).toBe(true);
    // Waived again.
    await call(app, 'POST', `/api/v1/users/${u.user.id}/require-password-change`, {
      token: admin.token,
      body: { required: false },
    });
    expect((await call(app, 'GET', '/api/v1/auths/sessions', { token })).status).toBe(200);
  });

  it('a second instance sees a new restriction (shared storage)', async () => {
    const app = await make();
    const other = await createTestApp(b, { shareWith: app, env: { SESSION_CACHE_TTL_MS: '0' } });
    apps.unshift(other);
    const admin = await signup(app);
    const pw = 'user password 1';
    const u = await makeUser(app, { password: pw });
    const token = (await signin(app, u.user.email, pw)).body.token;
    expect((await call(other, 'GET', '/api/v1/auths/sessions', { token })).status).toBe(200);
    await call(app, 'POST', `/api/v1/users/${u.user.id}/require-password-change`, { token: admin.token, body: {} });
    expect((await call(other, 'GET', '/api/v1/auths/sessions', { token })).body.error?.code).toBe(
      'password_change_required',
    );
  });
});
