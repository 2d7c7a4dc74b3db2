import { afterEach, expect, it } from 'vitest';
import { totpCode, TOTP_STEP_MS } from '../../server/modules/account-security/totp.js';
import { CHALLENGE_TYP } from '../../server/modules/account-security/service.js';
import { signToken } from '../../server/platform/security/tokens.js';
import { call, createTestApp, describeMatrix, makeUser, matrix, signup, type TestApp } from '../harness.js';
import { captureAuthEvents, enrol, fixClock, midStep, signin } from './helpers.js';

describeMatrix('two-factor authentication (TOTP)', matrix(), (b) => {
  const apps: TestApp[] = [];
  const make = async (env: Record<string, string> = {}) => {
    const a = await createTestApp(b, { env: { LOGIN_BACKOFF_BASE: '0', ...env } });
    apps.push(a);
    return a;
  };
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });

  /** An admin (first account) plus a user with a password, both signed in. */
  async function setupUsers(app: TestApp) {
    const admin = await signup(app);
    const pw = 'user password 1';
    const u = await makeUser(app, { role: 'user', password: pw });
    return { admin, user: u.user, token: u.token, pw };
  }

  it('enrolment: otpauth URI, confirmation by a first code, secret sealed at rest, ten hashed recovery codes', async () => {
    const app = await make();
    const clock = fixClock(app, midStep());
    const { user, token, pw } = await setupUsers(app);

    expect((await call(app, 'GET', '/api/v1/auths/2fa', { token })).body).toMatchObject({
      enabled: false,
      available: true,
    });
    // Re-authentication: the current password is needed to start.
    const noPw = await call(app, 'POST', '/api/v1/auths/2fa/setup', { token, body: {} });
    expect(noPw.status).toBe(401);
    expect(noPw.body.error.code).toBe('invalid_credentials');
    const setup = await call(app, 'POST', '/api/v1/auths/2fa/setup', { token, body: { password: pw } });
    expect(setup.status).toBe(200);
    const secret: string = setup.body.secret;
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    const uri = new URL(setup.body.otpauth_uri);
    expect(uri.protocol).toBe('otpauth:');
    expect(uri.searchParams.get('secret')).toBe(secret);
    expect(decodeURIComponent(uri.pathname)).toBe(`/HridaAI:${user.email}`);

    // Not on until confirmed: sign-in still gives a session directly.
    const before = await signin(app, user.email, pw);
    expect(before.status).toBe(200);
    expect(before.body.token).toBeTruthy();

    const wrong = await call(app, 'POST', '/api/v1/auths/2fa/enable', { token, body: { code: '000000' } });
    if (totpCode(secret, clock.now) !== '000000') {
      expect(wrong.status).toBe(400);
      expect(wrong.body.error.code).toBe('two_factor_code_invalid');
    }
    const enable = await call(app, 'POST', '/api/v1/auths/2fa/enable', {
      token,
      body: { code: totpCode(secret, clock.now) },
    });
    expect(enable.status).toBe(200);
    const codes: string[] = enable.body.recovery_codes;
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);

    const st = await call(app, 'GET', '/api/v1/auths/2fa', { token });
    expect(st.body).toMatchObject({ enabled: true, recovery_codes_remaining: 10 });
    // At rest: a sealed envelope, never the secret; codes only as HMACs.
    const row = await app.ctx.db
      .selectFrom('user_security')
      .selectAll()
      .where('user_id', '=', user.id)
      .executeTakeFirstOrThrow();
    expect(row.totp_secret_enc).toMatch(/^hsb1\./);
    expect(row.totp_secret_enc).not.toContain(secret);
    expect(row.totp_pending_enc).toBeNull();
    const stored = await app.ctx.db.selectFrom('recovery_codes').selectAll().where('user_id', '=', user.id).execute();
    expect(stored).toHaveLength(10);
    const dump = JSON.stringify(stored) + JSON.stringify(row);
    for (const c of codes) {
      expect(dump).not.toContain(c);
      expect(dump).not.toContain(c.replace(/-/g, ''));
    }
    for (const s of stored) expect(s.code_hash).toMatch(/^[0-9a-f]{64}$/);
    // A second enrolment is refused while 2FA is on.
    const again = await call(app, 'POST', '/api/v1/auths/2fa/setup', { token, body: { password: pw } });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('two_factor_already_enabled');
  });

  it('sign-in: password → challenge token (its own typ, useless elsewhere) → code → session', async () => {
    const app = await make();
    const clock = fixClock(app, midStep());
    const { user, token, pw } = await setupUsers(app);
    const { secret } = await enrol(app, token, pw);
    clock.advance(TOTP_STEP_MS);

    const first = await signin(app, user.email, pw);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ two_factor_required: true, methods: ['totp', 'recovery_code'] });
    expect(first.body.token).toBeUndefined();
    expect(first.cookies.token).toBeUndefined();
    const challenge: string = first.body.challenge_token;

    // Useless anywhere else: as a bearer token, as a cookie.
    for (const r of [
      await call(app, 'GET', '/api/v1/auths/', { token: challenge }),
      await call(app, 'GET', '/api/v1/auths/', { cookie: challenge }),
      await call(app, 'GET', '/api/v1/auths/2fa', { token: challenge }),
      await call(app, 'GET', '/api/v1/users', { token: challenge }),
    ]) {
      expect(r.status).toBe(401);
      expect(r.body.error.code).toBe('token_invalid');
    }
    // And a session token is not a challenge token.
    const asChallenge = await call(app, 'POST', '/api/v1/auths/2fa/verify', {
      body: { challenge_token: token, code: totpCode(secret, clock.now) },
    });
    expect(asChallenge.status).toBe(401);
    expect(asChallenge.body.error.code).toBe('two_factor_challenge_invalid');
    // A challenge token signed for a challenge that does not exist (right typ, right key) is refused.
    const forged = await signToken(app.ctx.keyring, { sub: user.id, sid: 'no-such-challenge' }, 60_000, CHALLENGE_TYP);
    const f = await call(app, 'POST', '/api/v1/auths/2fa/verify', {
      body: { challenge_token: forged, code: totpCode(secret, clock.now) },
    });
    expect(f.body.error.code).toBe('two_factor_challenge_invalid');
    // Tampered.
    const t = await call(app, 'POST', '/api/v1/auths/2fa/verify', {
      body: { challenge_token: challenge.slice(0, -3) + 'AAA', code: totpCode(secret, clock.now) },
    });
    expect(t.body.error.code).toBe('two_factor_challenge_invalid');

    const ok = await call(app, 'POST', '/api/v1/auths/2fa/verify', {
      body: { challenge_token: challenge, code: totpCode(secret, clock.now) },
    });
    expect(ok.status).toBe(200);
    expect(ok.body.user.id).toBe(user.id);
    expect(ok.cookies.token).toBe(ok.body.token);
    expect((await call(app, 'GET', '/api/v1/auths/', { token: ok.body.token })).status).toBe(200);
    // The challenge is spent.
    const reuse = await call(app, 'POST', '/api/v1/auths/2fa/verify', {
      body: { challenge_token: challenge, code: totpCode(secret, clock.now + TOTP_STEP_MS) },
    });
    expect(reuse.status).toBe(401);
    expect(reuse.body.error.code).toBe('two_factor_challenge_invalid');
  });

  it('codes: ±1 step accepted, ±2 refused, and a code used once cannot be replayed in its window', async () => {
    const app = await make();
    const clock = fixClock(app, midStep());
    const { user, token, pw } = await setupUsers(app);
    const { secret } = await enrol(app, token, pw);
    const verify = async (code: string) => {
      const c = await signin(app, user.email, pw);
      expect(c.body.two_factor_required).toBe(true);
      return call(app, 'POST', '/api/v1/auths/2fa/verify', { body: { challenge_token: c.body.challenge_token, code } });
    };
    // The enrolment used the code of this step: replaying it is refused.
    const replayEnrol = await verify(totpCode(secret, clock.now));
    expect(replayEnrol.body.error.code).toBe('two_factor_code_invalid');

    clock.advance(10 * TOTP_STEP_MS);
    const now = clock.now;
    const two = [totpCode(secret, now - 2 * TOTP_STEP_MS), totpCode(secret, now + 2 * TOTP_STEP_MS)];
    for (const c of two)
      if (![-1, 0, 1].some((d) => totpCode(secret, now + d * TOTP_STEP_MS) === c))
        expect((await verify(c)).body.error.code).toBe('two_factor_code_invalid');
    // The previous step's code is accepted...
    const prev = await verify(totpCode(secret, now - TOTP_STEP_MS));
    expect(prev.status).toBe(200);
    // ...and then cannot be replayed, nor can the (older) codes around it.
    expect((await verify(totpCode(secret, now - TOTP_STEP_MS))).body.error.code).toBe('two_factor_code_invalid');
    // The next step's code is accepted (later step), then the current one is older: refused.
    const next = await verify(totpCode(secret, now + TOTP_STEP_MS));
    expect(next.status).toBe(200);
    if (totpCode(secret, now) !== totpCode(secret, now + TOTP_STEP_MS))
      expect((await verify(totpCode(secret, now))).body.error.code).toBe('two_factor_code_invalid');

    // Two concurrent requests with the same fresh code: exactly one wins.
    clock.advance(5 * TOTP_STEP_MS);
    const c1 = await signin(app, user.email, pw);
    const c2 = await signin(app, user.email, pw);
    const code = totpCode(secret, clock.now);
    const both = await Promise.all(
      [c1, c2].map((c) =>
        call(app, 'POST', '/api/v1/auths/2fa/verify', { body: { challenge_token: c.body.challenge_token, code } }),
      ),
    );
    expect(both.map((r) => r.status).sort()).toEqual([200, 400]);
  });

  it('a password reset ends the sign-ins half-way through (open challenges)', async () => {
    const app = await make();
    const clock = fixClock(app, midStep());
    const { admin, user, token, pw } = await setupUsers(app);
    const { secret } = await enrol(app, token, pw);
    clock.advance(TOTP_STEP_MS);
    const c = await signin(app, user.email, pw);
    expect(c.body.two_factor_required).toBe(true);
    const reset = await call(app, 'POST', `/api/v1/users/${user.id}/password`, {
      token: admin.token,
      body: { password: 'temporary password 1' },
    });
    expect(reset.status).toBe(200);
    const v = await call(app, 'POST', '/api/v1/auths/2fa/verify', {
      body: { challenge_token: c.body.challenge_token, code: totpCode(secret, clock.now) },
    });
    expect(v.status).toBe(401);
    expect(v.body.error.code).toBe('two_factor_challenge_invalid');
  });

  it('attempts per challenge are capped', async () => {
    const app = await make({ TWO_FACTOR_MAX_ATTEMPTS: '3', LOGIN_MAX_ATTEMPTS: '100' });
    const clock = fixClock(app, midStep());
    const { user, token, pw } = await setupUsers(app);
    const { secret } = await enrol(app, token, pw);
    clock.advance(TOTP_STEP_MS);
    const c = await signin(app, user.email, pw);
    const good = totpCode(secret, clock.now);
    const bad = good === '123456' ? '654321' : '123456';
    const left: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await call(app, 'POST', '/api/v1/auths/2fa/verify', {
        body: { challenge_token: c.body.challenge_token, code: bad },
      });
      expect(r.status).toBe(400);
      left.push(r.body.error.details.attempts_left);
    }
    expect(left).toEqual([2, 1, 0]);
    // The right code no longer helps on this challenge.
    const late = await call(app, 'POST', '/api/v1/auths/2fa/verify', {
      body: { challenge_token: c.body.challenge_token, code: good },
    });
    expect(late.status).toBe(401);
    expect(late.body.error.code).toBe('two_factor_challenge_invalid');
    // A new sign-in gives a new challenge.
    const c2 = await signin(app, user.email, pw);
    const ok = await call(app, 'POST', '/api/v1/auths/2fa/verify', {
      body: { challenge_token: c2.body.challenge_token, code: good },
    });
    expect(ok.status).toBe(200);
  });

  it('recovery codes: each works once; regenerating (with a current code) voids the old ones', async () => {
    const app = await make();
    const clock = fixClock(app, midStep());
    const { user, token, pw } = await setupUsers(app);
    const { secret, recoveryCodes } = await enrol(app, token, pw);
    const withRecovery = async (rc: string) => {
      const c = await signin(app, user.email, pw);
      return call(app, 'POST', '/api/v1/auths/2fa/verify', {
        body: { challenge_token: c.body.challenge_token, recovery_code: rc },
      });
    };
    const first = await withRecovery(recoveryCodes[0]!.toUpperCase().replace(/-/g, ' '));
    expect(first.status).toBe(200);
    expect(first.body.recovery_codes_remaining).toBe(9);
    const again = await withRecovery(recoveryCodes[0]!);
    expect(again.status).toBe(400);
    expect(again.body.error.code).toBe('two_factor_code_invalid');
    // Two concurrent uses of the same code: one wins.
    const c1 = await signin(app, user.email, pw);
    const c2 = await signin(app, user.email, pw);
    const both = await Promise.all(
      [c1, c2].map((c) =>
        call(app, 'POST', '/api/v1/auths/2fa/verify', {
          body: { challenge_token: c.body.challenge_token, recovery_code: recoveryCodes[1] },
        }),
      ),
    );
    expect(both.map((r) => r.status).sort()).toEqual([200, 400]);
    // Another user's code does not work here.
    const other = await makeUser(app, { password: pw });
    const otherCodes = (await enrol(app, other.token, pw)).recoveryCodes;
    expect((await withRecovery(otherCodes[0]!)).status).toBe(400);

    clock.advance(TOTP_STEP_MS);
    const needsCode = await call(app, 'POST', '/api/v1/auths/2fa/recovery-codes', { token, body: { code: '000000' } });
    if (totpCode(secret, clock.now) !== '000000') expect(needsCode.status).toBe(400);
    const regen = await call(app, 'POST', '/api/v1/auths/2fa/recovery-codes', {
      token,
      body: { code: totpCode(secret, clock.now) },
    });
    expect(regen.status).toBe(200);
    expect(regen.body.recovery_codes).toHaveLength(10);
    expect((await withRecovery(recoveryCodes[2]!)).status).toBe(400);
    expect((await withRecovery(regen.body.recovery_codes[0])).status).toBe(200);
  });

  it('turning 2FA off needs the password and a code; an admin can reset it (audited); ENABLE_2FA=false stops enrolment only', async () => {
    const app = await make();
    const events = captureAuthEvents(app);
    const clock = fixClock(app, midStep());
    const { admin, user, token, pw } = await setupUsers(app);
    const { secret } = await enrol(app, token, pw);
    expect(events.some((e) => e.action === 'auth.2fa' && e.result === 'success')).toBe(true);
    clock.advance(TOTP_STEP_MS);
    const noPw = await call(app, 'POST', '/api/v1/auths/2fa/disable', {
      token,
      body: { code: totpCode(secret, clock.now) },
    });
    expect(noPw.status).toBe(401);
    const noCode = await call(app, 'POST', '/api/v1/auths/2fa/disable', {
      token,
      body: { password: pw, code: '999999' },
    });
    if (totpCode(secret, clock.now) !== '999999') expect(noCode.status).toBe(400);
    expect(events.some((e) => e.action === 'auth.2fa' && e.result === 'failure' && e.userId === user.id)).toBe(true);
    const off = await call(app, 'POST', '/api/v1/auths/2fa/disable', {
      token,
      body: { password: pw, code: totpCode(secret, clock.now) },
    });
    expect(off.status).toBe(200);
    expect((await signin(app, user.email, pw)).body.token).toBeTruthy();

    // Admin reset.
    clock.advance(TOTP_STEP_MS);
    await enrol(app, token, pw);
    expect((await signin(app, user.email, pw)).body.two_factor_required).toBe(true);
    const other = await makeUser(app);
    const notAdmin = await call(app, 'DELETE', `/api/v1/users/${user.id}/2fa`, { token: other.token });
    expect(notAdmin.status).toBe(403);
    expect((await call(app, 'DELETE', `/api/v1/users/nope/2fa`, { token: admin.token })).status).toBe(404);
    const reset = await call(app, 'DELETE', `/api/v1/users/${user.id}/2fa`, { token: admin.token });
    expect(reset.status).toBe(200);
    expect((await call(app, 'DELETE', `/api/v1/users/${user.id}/2fa`, { token: admin.token })).body.error.code).toBe(
      'two_factor_not_enabled',
    );
    expect((await signin(app, user.email, pw)).body.token).toBeTruthy();
    expect(await app.ctx.db.selectFrom('recovery_codes').selectAll().where('user_id', '=', user.id).execute()).toEqual(
      [],
    );
    const sec = await call(app, 'GET', `/api/v1/users/${user.id}/security`, { token: admin.token });
    expect(sec.body.two_factor.enabled).toBe(false);
    await app.ctx.audit.flush();
    const actions = (await app.ctx.db.selectFrom('audit_events').select(['action', 'resource_id']).execute()).filter(
      (e) => e.resource_id === user.id,
    );
    for (const a of ['two_factor.enabled', 'two_factor.disabled', 'two_factor.reset'])
      expect(actions.map((e) => e.action)).toContain(a);
  });

  it('ENABLE_2FA=false: enrolment refused; an account already enrolled keeps being asked', async () => {
    const app = await make();
    fixClock(app, midStep());
    const { user, token, pw } = await setupUsers(app);
    await enrol(app, token, pw);
    // A second instance on the same storage with the feature turned off.
    const off = await createTestApp(b, { shareWith: app, env: { ENABLE_2FA: 'false' } });
    apps.unshift(off);
    expect(off.config.ENABLE_2FA).toBe(false);
    expect((await signin(off, user.email, pw)).body.two_factor_required).toBe(true);
    const other = await makeUser(off, { password: pw });
    const s = await call(off, 'POST', '/api/v1/auths/2fa/setup', { token: other.token, body: { password: pw } });
    expect(s.status).toBe(403);
    expect(s.body.error.code).toBe('two_factor_disabled');
  });
});
