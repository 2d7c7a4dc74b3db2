import { statSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { SignJWT, UnsecuredJWT } from 'jose';
import { afterEach, expect, it } from 'vitest';
import { createKeyring } from '../../server/platform/security/keyring.js';
import { SESSION_TYP, signToken } from '../../server/platform/security/tokens.js';
import { call, createTestApp, describeMatrix, makeUser, matrix, signup, sleep, type TestApp } from '../harness.js';

describeMatrix('sessions: every revocation trigger takes effect at once', matrix({ full: true }), (b) => {
  const apps: TestApp[] = [];
  const make = async (env: Record<string, string> = {}, shareWith?: TestApp) => {
    const a = await createTestApp(b, { env, shareWith });
    apps.push(a);
    return a;
  };
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });

  const me = (app: TestApp, token: string) => call(app, 'GET', '/api/v1/auths/', { token });

  it('sign-out revokes the token (bearer and cookie)', async () => {
    const app = await make();
    const { token } = await signup(app);
    expect((await me(app, token)).status).toBe(200);
    expect((await call(app, 'GET', '/api/v1/auths/', { cookie: token })).status).toBe(200);
    const out = await call(app, 'POST', '/api/v1/auths/signout', { token });
    expect(out.status).toBe(200);
    const again = await me(app, token);
    expect(again.status).toBe(401);
    expect(again.body.error.code).toBe('session_revoked');
    expect((await call(app, 'GET', '/api/v1/auths/', { cookie: token })).status).toBe(401);
  });

  it('deactivation, role change and deletion revoke every session of the user', async () => {
    const app = await make();
    const admin = await signup(app);
    for (const [change, body] of [
      ['deactivate', { active: false }],
      ['role change', { role: 'pending' }],
      ['promotion', { role: 'admin' }],
    ] as const) {
      const u = await makeUser(app);
      const second = await app.ctx.sessions.create(app.ctx.db, {
        userId: u.user.id,
        kind: 'password',
        ip: null,
        userAgent: null,
      });
      expect((await me(app, u.token)).status, change).toBe(200);
      const r = await call(app, 'PATCH', `/api/v1/users/${u.user.id}`, { token: admin.token, body });
      expect(r.status, change).toBe(200);
      expect((await me(app, u.token)).status, change).toBe(401);
      expect((await me(app, second.token)).status, change).toBe(401);
    }
    const u = await makeUser(app);
    expect((await me(app, u.token)).status).toBe(200);
    expect((await call(app, 'DELETE', `/api/v1/users/${u.user.id}`, { token: admin.token })).status).toBe(200);
    expect((await me(app, u.token)).status).toBe(401);
  });

  it('a token without expiry (JWT_EXPIRES_IN=-1) is still revocable', async () => {
    const app = await make({ JWT_EXPIRES_IN: '-1' });
    const { token } = await signup(app);
    const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString());
    expect(payload.exp).toBeUndefined();
    expect((await me(app, token)).status).toBe(200);
    await call(app, 'POST', '/api/v1/auths/signout', { token });
    expect((await me(app, token)).status).toBe(401);
  });

  it('a user can list and revoke their own sessions, not anyone else’s', async () => {
    const app = await make();
    const admin = await signup(app);
    const u = await makeUser(app);
    const other = await app.ctx.sessions.create(app.ctx.db, {
      userId: u.user.id,
      kind: 'password',
      ip: null,
      userAgent: null,
    });
    const list = await call(app, 'GET', '/api/v1/auths/sessions', { token: u.token });
    expect(list.body.items).toHaveLength(2);
    expect(list.body.items.filter((s: { current: boolean }) => s.current)).toHaveLength(1);
    // The admin's session id is not the user's: 404, and the admin session keeps working.
    const adminSid = (await me(app, admin.token)).body.session_id;
    const foreign = await call(app, 'DELETE', `/api/v1/auths/sessions/${adminSid}`, { token: u.token });
    expect(foreign.status).toBe(404);
    expect((await me(app, admin.token)).status).toBe(200);
    const ok = await call(app, 'DELETE', `/api/v1/auths/sessions/${other.session.id}`, { token: u.token });
    expect(ok.status).toBe(200);
    expect((await me(app, other.token)).status).toBe(401);
    expect((await me(app, u.token)).status).toBe(200);
  });

  it('admins can list and revoke a user’s sessions; the session must belong to that user', async () => {
    const app = await make();
    const admin = await signup(app);
    const u = await makeUser(app);
    const v = await makeUser(app);
    const list = await call(app, 'GET', `/api/v1/users/${u.user.id}/sessions`, { token: admin.token });
    expect(list.body.items).toHaveLength(1);
    const sid = list.body.items[0].id;
    expect(
      (await call(app, 'DELETE', `/api/v1/users/${v.user.id}/sessions/${sid}`, { token: admin.token })).status,
    ).toBe(404);
    expect((await me(app, u.token)).status).toBe(200);
    expect(
      (await call(app, 'DELETE', `/api/v1/users/${u.user.id}/sessions/${sid}`, { token: admin.token })).status,
    ).toBe(200);
    expect((await me(app, u.token)).status).toBe(401);
    expect((await call(app, 'DELETE', `/api/v1/users/${v.user.id}/sessions`, { token: admin.token })).body.count).toBe(
      1,
    );
    expect((await me(app, v.token)).status).toBe(401);
    expect((await call(app, 'GET', `/api/v1/users/${u.user.id}/sessions`, { token: v.token })).status).toBe(401);
  });

  it('refuses tampered, foreign, expired, wrongly typed and unsigned tokens', async () => {
    const app = await make();
    const { token, user } = await signup(app);
    const sid = (await me(app, token)).body.session_id as string;
    const [h, p, s] = token.split('.') as [string, string, string];
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString());
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...payload, sub: 'someone-else' })).toString('base64url')}.${s}`;
    const otherKey = createKeyring('a completely different secret key', null);
    const foreign = await signToken(otherKey, { sub: user.id, sid }, 3_600_000);
    const expired = await signToken(
      app.ctx.keyring,
      { sub: user.id, sid },
      60_000,
      SESSION_TYP,
      Date.now() - 3_600_000,
    );
    const wrongTyp = await signToken(app.ctx.keyring, { sub: user.id, sid }, 60_000, 'hridaai-2fa-challenge+jwt');
    const noExp = await signToken(app.ctx.keyring, { sub: user.id, sid }, null);
    const unsigned = new UnsecuredJWT({ sid }).setSubject(user.id).setIssuedAt().setExpirationTime('1h').encode();
    const noKid = await new SignJWT({ sid })
      .setProtectedHeader({ alg: 'HS256', typ: SESSION_TYP })
      .setSubject(user.id)
      .setJti('x')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(app.ctx.keyring.current.derive('jwt'));
    const rawSecret = await new SignJWT({ sid })
      .setProtectedHeader({ alg: 'HS256', typ: SESSION_TYP, kid: app.ctx.keyring.current.kid })
      .setSubject(user.id)
      .setJti('x')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(app.shared.secret));
    const otherSession = await signToken(app.ctx.keyring, { sub: 'not-the-owner', sid }, 60_000);
    for (const [name, t, code] of [
      ['tampered', tampered, 'token_invalid'],
      ['foreign key', foreign, 'token_invalid'],
      ['expired', expired, 'token_expired'],
      ['wrong typ', wrongTyp, 'token_invalid'],
      ['no exp while JWT_EXPIRES_IN is set', noExp, 'token_invalid'],
      ['alg none', unsigned, 'token_invalid'],
      ['no kid', noKid, 'token_invalid'],
      ['signed with the raw secret instead of the derived key', rawSecret, 'token_invalid'],
      ['sub does not own sid', otherSession, 'token_invalid'],
      ['garbage', 'not.a.jwt', 'token_invalid'],
    ] as const) {
      const r = await me(app, t);
      expect(r.status, name).toBe(401);
      expect(r.body.error.code, name).toBe(code);
    }
    expect((await call(app, 'GET', '/api/v1/auths/', { headers: { authorization: 'Basic abc' } })).status).toBe(401);
    expect((await call(app, 'GET', '/api/v1/auths/')).body.error.code).toBe('unauthenticated');
  });

  it('an expired session row is refused even if the token claims otherwise', async () => {
    const app = await make({ JWT_EXPIRES_IN: '-1' });
    const { token } = await signup(app);
    const sid = (await me(app, token)).body.session_id as string;
    await app.ctx.db
      .updateTable('sessions')
      .set({ expires_at: Date.now() - 1000 })
      .where('id', '=', sid)
      .execute();
    await app.ctx.sessions.afterUserChange((await me(app, token)).body?.id ?? '');
    // cache entry may still be fresh for this instance; wait out the TTL.
    await sleep(app.config.SESSION_CACHE_TTL_MS + 50);
    expect((await me(app, token)).status).toBe(401);
  });

  it('two instances sharing a key accept each other’s tokens and agree on revocation', async () => {
    const a = await make({ SESSION_CACHE_TTL_MS: b.redis ? '60000' : '1000' });
    const b2 = await make({ SESSION_CACHE_TTL_MS: b.redis ? '60000' : '1000' }, a);
    const { token } = await signup(a);
    expect((await me(b2, token)).status).toBe(200); // now cached on b2
    await call(a, 'POST', '/api/v1/auths/signout', { token });
    expect((await me(a, token)).status).toBe(401);
    // With Redis the broadcast reaches b2 at once even though its cache TTL is a minute; without Redis, within 1s.
    const deadline = Date.now() + 1000;
    let status = 200;
    while (Date.now() < deadline + 200) {
      status = (await me(b2, token)).status;
      if (status === 401) break;
      await sleep(50);
    }
    expect(status).toBe(401);
  });

  it('key rotation: tokens signed with HRIDAAI_SECRET_KEY_PREVIOUS keep working; unknown keys do not', async () => {
    const a = await make();
    const { token } = await signup(a);
    const rotated = await make(
      { HRIDAAI_SECRET_KEY: 'the brand new secret key value', HRIDAAI_SECRET_KEY_PREVIOUS: a.shared.secret },
      a,
    );
    expect((await me(rotated, token)).status).toBe(200);
    const fresh = await call(rotated, 'POST', '/api/v1/auths/signin', {
      body: { email: (await me(a, token)).body.email, password: 'correct horse battery' },
    });
    const kid = JSON.parse(Buffer.from(fresh.body.token.split('.')[0], 'base64url').toString()).kid;
    expect(kid).toBe(rotated.ctx.keyring.current.kid);
    expect(kid).not.toBe(a.ctx.keyring.current.kid);
    const withoutPrevious = await make({ HRIDAAI_SECRET_KEY: 'the brand new secret key value' }, a);
    expect((await me(withoutPrevious, token)).status).toBe(401);
  });
});

describeMatrix('secret key file', matrix().slice(0, 1), (b) => {
  it('is generated with mode 0600 in DATA_DIR and reloaded on restart', async () => {
    const first = await createTestApp(b, { env: { HRIDAAI_SECRET_KEY: '' } });
    try {
      const file = path.join(first.dataDir, '.hridaai_secret_key');
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(readFileSync(file, 'utf8').trim().length).toBeGreaterThanOrEqual(40);
      const { token } = await signup(first);
      const kid = first.ctx.keyring.current.kid;
      await first.app.close();
      // Same data dir, no key in env: the saved key is reused and old tokens still verify.
      const { loadConfig } = await import('../../server/config/index.js');
      const { buildApp } = await import('../../server/app.js');
      const pino = (await import('pino')).default;
      const again = await buildApp(loadConfig({ ...first.env, HRIDAAI_SECRET_KEY: '' }), {
        logger: pino({ level: 'silent' }),
      });
      try {
        expect(again.ctx.keyring.current.kid).toBe(kid);
        const r = await again.app.inject({
          method: 'GET',
          url: '/api/v1/auths/',
          headers: { authorization: `Bearer ${token}` },
        });
        expect(r.statusCode).toBe(200);
      } finally {
        await again.close();
      }
    } finally {
      await first.close().catch(() => undefined);
    }
  });
});
