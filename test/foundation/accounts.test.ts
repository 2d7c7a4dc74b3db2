import { afterEach, expect, it } from 'vitest';
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

describeMatrix('accounts: sign-up, sign-in, password rules', matrix(), (b) => {
  const apps: TestApp[] = [];
  const make = async (env: Record<string, string> = {}) => {
    const a = await createTestApp(b, { env });
    apps.push(a);
    return a;
  };
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });

  it('the first account becomes admin and sign-up closes after it', async () => {
    const app = await make();
    expect((await call(app, 'GET', '/api/config')).body.onboarding).toBe(true);
    const first = await signup(app);
    expect(first.user.role).toBe('admin');
    const cfg = await call(app, 'GET', '/api/config');
    expect(cfg.body.onboarding).toBe(false);
    expect(cfg.body.features.enable_signup).toBe(false);
    const second = await call(app, 'POST', '/api/v1/auths/signup', {
      body: { name: 'B', email: uniqueEmail(), password: 'another password' },
    });
    expect(second.status).toBe(403);
    expect(second.body.error.code).toBe('signup_disabled');
  });

  it('20 concurrent first sign-ups give exactly one admin and no other account', async () => {
    const app = await make();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        call(app, 'POST', '/api/v1/auths/signup', {
          body: { name: `U${i}`, email: uniqueEmail('race'), password: 'race password' },
        }),
      ),
    );
    const ok = results.filter((r) => r.status === 201);
    expect(ok).toHaveLength(1);
    expect(ok[0]!.body.user.role).toBe('admin');
    expect(results.filter((r) => r.status === 403).every((r) => r.body.error.code === 'signup_disabled')).toBe(true);
    const users = await app.ctx.db.selectFrom('users').select(['role']).execute();
    expect(users).toEqual([{ role: 'admin' }]);
  });

  it('20 concurrent sign-ups with ENABLE_SIGNUP=true give one admin and 19 pending', async () => {
    const app = await make({ ENABLE_SIGNUP: 'true' });
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        call(app, 'POST', '/api/v1/auths/signup', {
          body: { name: `U${i}`, email: uniqueEmail('race'), password: 'race password' },
        }),
      ),
    );
    expect(results.every((r) => r.status === 201)).toBe(true);
    const roles = results.map((r) => r.body.user.role).sort();
    expect(roles.filter((r) => r === 'admin')).toHaveLength(1);
    expect(roles.filter((r) => r === 'pending')).toHaveLength(19);
  });

  it('ENABLE_SIGNUP=true reopens sign-up with DEFAULT_USER_ROLE', async () => {
    const app = await make({ ENABLE_SIGNUP: 'true', DEFAULT_USER_ROLE: 'user' });
    await signup(app);
    const r = await call(app, 'POST', '/api/v1/auths/signup', {
      body: { name: 'B', email: uniqueEmail(), password: 'another password' },
    });
    expect(r.status).toBe(201);
    expect(r.body.user.role).toBe('user');
  });

  it('a duplicate e-mail (any case) is refused', async () => {
    const app = await make({ ENABLE_SIGNUP: 'true' });
    const email = uniqueEmail();
    await signup(app, email);
    const r = await call(app, 'POST', '/api/v1/auths/signup', {
      body: { name: 'B', email: email.toUpperCase(), password: 'another password' },
    });
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('email_taken');
  });

  it('a pending user can read their own account and sign out, nothing else', async () => {
    const app = await make({ ENABLE_SIGNUP: 'true' });
    await signup(app);
    const r = await call(app, 'POST', '/api/v1/auths/signup', {
      body: { name: 'P', email: uniqueEmail(), password: 'pending password' },
    });
    expect(r.body.user.role).toBe('pending');
    const token = r.body.token as string;
    const me = await call(app, 'GET', '/api/v1/auths/', { token });
    expect(me.status).toBe(200);
    expect(me.body.role).toBe('pending');
    for (const [m, u, body] of [
      ['GET', '/api/v1/users', undefined],
      ['POST', '/api/v1/auths/update/profile', { name: 'x' }],
      ['POST', '/api/v1/auths/update/password', { password: 'pending password', new_password: 'new one!' }],
      ['GET', '/api/v1/users/whatever', undefined],
    ] as const) {
      const res = await call(app, m, u, { token, body });
      expect(res.status, `${m} ${u}`).toBe(403);
      expect(res.body.error.code, `${m} ${u}`).toBe('account_pending');
    }
    expect((await call(app, 'POST', '/api/v1/auths/signout', { token })).status).toBe(200);
    expect((await call(app, 'GET', '/api/v1/auths/', { token })).status).toBe(401);
  });

  it('password rules: 72-byte limit (never truncated), validation pattern and hint', async () => {
    const app = await make({
      ENABLE_SIGNUP: 'true',
      ENABLE_PASSWORD_VALIDATION: 'true',
      PASSWORD_VALIDATION_HINT: 'Use 8+ chars with upper, lower, digit, symbol.',
    });
    await signup(app, uniqueEmail(), 'Admin-Passw0rd!');
    const up = (password: string) =>
      call(app, 'POST', '/api/v1/auths/signup', { body: { name: 'X', email: uniqueEmail(), password } });
    const weak = await up('password');
    expect(weak.status).toBe(400);
    expect(weak.body.error).toEqual({
      code: 'password_too_weak',
      message: 'Use 8+ chars with upper, lower, digit, symbol.',
    });
    const ok72 = 'Aa1!' + 'x'.repeat(68);
    expect(Buffer.byteLength(ok72)).toBe(72);
    expect((await up(ok72)).status).toBe(201);
    const long73 = ok72 + 'y';
    const r73 = await up(long73);
    expect(r73.status).toBe(400);
    expect(r73.body.error.code).toBe('password_too_long');
    // 70 ASCII + one 3-byte character = 73 bytes though only 71 characters.
    const multibyte = 'Aa1!' + 'x'.repeat(66) + '€';
    expect(multibyte.length).toBe(71);
    expect((await up(multibyte)).body.error.code).toBe('password_too_long');
    // Someone who knows only the first 72 bytes of a long password cannot sign in with them (nothing was truncated).
    expect((await up('')).status).toBe(400);
  });

  it('sign-in: wrong e-mail and wrong password give the same answer', async () => {
    const app = await make();
    const { user, password } = await signup(app);
    const wrongPw = await call(app, 'POST', '/api/v1/auths/signin', { body: { email: user.email, password: 'nope' } });
    const wrongMail = await call(app, 'POST', '/api/v1/auths/signin', {
      body: { email: 'nobody@example.com', password: 'nope' },
    });
    expect(wrongPw.status).toBe(401);
    expect(wrongMail.status).toBe(401);
    expect(wrongPw.body).toEqual(wrongMail.body);
    expect(wrongPw.body.error.code).toBe('invalid_credentials');
    const ok = await call(app, 'POST', '/api/v1/auths/signin', { body: { email: user.email.toUpperCase(), password } });
    expect(ok.status).toBe(200);
    expect(ok.body.user.id).toBe(user.id);
    expect(ok.cookies.token).toBe(ok.body.token);
    expect(ok.body.user.password_hash).toBeUndefined();
  });

  it('the session cookie is HttpOnly with the configured SameSite and Secure flags', async () => {
    const app = await make({ HRIDAAI_SESSION_COOKIE_SECURE: 'true', HRIDAAI_SESSION_COOKIE_SAME_SITE: 'strict' });
    const r = await call(app, 'POST', '/api/v1/auths/signup', {
      body: { name: 'A', email: uniqueEmail(), password: 'cookie password' },
    });
    const setCookie = String(r.headers['set-cookie']);
    expect(setCookie).toMatch(/^token=/);
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/Secure/);
    expect(setCookie).toMatch(/SameSite=Strict/);
    expect(setCookie).toMatch(/Max-Age=2419200/);
  });

  it('HRIDAAI_AUTH_COOKIE_* override the session cookie flags for the auth cookie', async () => {
    const app = await make({ HRIDAAI_SESSION_COOKIE_SAME_SITE: 'strict', HRIDAAI_AUTH_COOKIE_SAME_SITE: 'lax' });
    const r = await call(app, 'POST', '/api/v1/auths/signup', {
      body: { name: 'A', email: uniqueEmail(), password: 'cookie password' },
    });
    expect(String(r.headers['set-cookie'])).toMatch(/SameSite=Lax/);
    expect(String(r.headers['set-cookie'])).not.toMatch(/Secure/);
  });

  it('a deactivated account cannot sign in', async () => {
    const app = await make();
    await signup(app);
    const u = await makeUser(app, { password: 'inactive password', active: false });
    const r = await call(app, 'POST', '/api/v1/auths/signin', {
      body: { email: u.user.email, password: 'inactive password' },
    });
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('account_inactive');
  });

  it('HRIDAAI_ADMIN_* creates the admin only when no users exist and closes sign-up', async () => {
    const env = {
      HRIDAAI_ADMIN_EMAIL: 'Boot@Example.com',
      HRIDAAI_ADMIN_PASSWORD: 'bootstrap password',
      HRIDAAI_ADMIN_NAME: 'Boss',
    };
    const app = await make(env);
    const users = await app.ctx.db.selectFrom('users').select(['email', 'role', 'name']).execute();
    expect(users).toEqual([{ email: 'boot@example.com', role: 'admin', name: 'Boss' }]);
    const r = await call(app, 'POST', '/api/v1/auths/signin', {
      body: { email: 'boot@example.com', password: 'bootstrap password' },
    });
    expect(r.status).toBe(200);
    const up = await call(app, 'POST', '/api/v1/auths/signup', {
      body: { name: 'X', email: uniqueEmail(), password: 'some password' },
    });
    expect(up.body.error.code).toBe('signup_disabled');
    // A second instance on the same database with a different admin e-mail does nothing.
    const second = await createTestApp(b, {
      shareWith: app,
      env: { ...env, HRIDAAI_ADMIN_EMAIL: 'other@example.com' },
    });
    apps.push(second);
    expect(await app.ctx.db.selectFrom('users').select('email').execute()).toEqual([{ email: 'boot@example.com' }]);
  });

  it('password change: needs the current password, applies the rules, revokes other sessions', async () => {
    const app = await make({ ENABLE_PASSWORD_VALIDATION: 'true' });
    const { user, token, password } = await signup(app, uniqueEmail(), 'Original-Pass1!');
    const other = await call(app, 'POST', '/api/v1/auths/signin', { body: { email: user.email, password } });
    const bad = await call(app, 'POST', '/api/v1/auths/update/password', {
      token,
      body: { password: 'wrong', new_password: 'Brand-New-Pass2!' },
    });
    expect(bad.status).toBe(401);
    const weak = await call(app, 'POST', '/api/v1/auths/update/password', {
      token,
      body: { password, new_password: 'weak' },
    });
    expect(weak.body.error.code).toBe('password_too_weak');
    const ok = await call(app, 'POST', '/api/v1/auths/update/password', {
      token,
      body: { password, new_password: 'Brand-New-Pass2!' },
    });
    expect(ok.status).toBe(200);
    expect(ok.body.other_sessions_revoked).toBe(1);
    expect((await call(app, 'GET', '/api/v1/auths/', { token })).status).toBe(200);
    expect((await call(app, 'GET', '/api/v1/auths/', { token: other.body.token })).status).toBe(401);
    expect((await call(app, 'POST', '/api/v1/auths/signin', { body: { email: user.email, password } })).status).toBe(
      401,
    );
    expect(
      (await call(app, 'POST', '/api/v1/auths/signin', { body: { email: user.email, password: 'Brand-New-Pass2!' } }))
        .status,
    ).toBe(200);
  });
});

describeMatrix('SSO-only flags are enforced at the API', matrix(), (b) => {
  const apps: TestApp[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });
  const make = async (env: Record<string, string>) => {
    const a = await createTestApp(b, { env });
    apps.push(a);
    return a;
  };

  it('ENABLE_PASSWORD_AUTH=false refuses password sign-in, sign-up and password change', async () => {
    const app = await make({ ENABLE_PASSWORD_AUTH: 'false' });
    const admin = await makeUser(app, { role: 'admin', password: 'admin password' });
    const up = await call(app, 'POST', '/api/v1/auths/signup', {
      body: { name: 'A', email: uniqueEmail(), password: 'pw pw pw' },
    });
    expect(up.status).toBe(403);
    expect(up.body.error.code).toBe('password_auth_disabled');
    const inn = await call(app, 'POST', '/api/v1/auths/signin', {
      body: { email: admin.user.email, password: 'admin password' },
    });
    expect(inn.status).toBe(403);
    expect(inn.body.error.code).toBe('password_auth_disabled');
    const change = await call(app, 'POST', '/api/v1/auths/update/password', {
      token: admin.token,
      body: { password: 'admin password', new_password: 'new password' },
    });
    expect(change.status).toBe(403);
    expect(change.body.error.code).toBe('password_auth_disabled');
    expect((await call(app, 'GET', '/api/config')).body.features.enable_password_auth).toBe(false);
  });

  it('ENABLE_LOGIN_FORM=false refuses local sign-up (even the first) and is exposed to the UI', async () => {
    const app = await make({ ENABLE_LOGIN_FORM: 'false' });
    const up = await call(app, 'POST', '/api/v1/auths/signup', {
      body: { name: 'A', email: uniqueEmail(), password: 'pw pw pw' },
    });
    expect(up.status).toBe(403);
    expect(up.body.error.code).toBe('login_form_disabled');
    const cfg = await call(app, 'GET', '/api/config');
    expect(cfg.body.features.enable_login_form).toBe(false);
  });

  it('ENABLE_PASSWORD_CHANGE_FORM=false refuses password change at the API', async () => {
    const app = await make({ ENABLE_PASSWORD_CHANGE_FORM: 'false' });
    const { token, password } = await signup(app);
    const r = await call(app, 'POST', '/api/v1/auths/update/password', {
      token,
      body: { password, new_password: 'new password!' },
    });
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('password_change_disabled');
    expect((await call(app, 'GET', '/api/config')).body.features.enable_password_change_form).toBe(false);
  });
});
