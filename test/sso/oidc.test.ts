/**
 * OpenID Connect sign-in against a real provider (`oidc-provider`) on loopback: the full code flow
 * without a browser, the negatives (state, code replay, nonce, issuer mix-up, expired and HS256 ID
 * tokens, unverified e-mail, blocked group, domain, roles), group sync, the session limit and
 * back-channel logout. Every refused sign-in must leave the number of sessions unchanged.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { importJWK, SignJWT, type JWTPayload } from 'jose';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../server/config/index.js';
import { githubClaims } from '../../server/modules/sso/oauth.js';
import { freePort, startTestIdp, type TestIdp } from '../fixtures/oidc-provider.js';
import { call, createTestApp, describeMatrix, makeUser, matrix, signup, type Res, type TestApp } from '../harness.js';
import { auditRows, finishOidc, oidcLogin, sessionCount, startOidc, userByEmail } from './helpers.js';

interface LogLine {
  msg?: string;
  code?: string;
  details?: { reason?: string; detail?: string };
}

function captureLogger(lines: LogLine[]) {
  return pino(
    { level: 'warn' },
    new Writable({
      write(chunk, _enc, cb) {
        for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(JSON.parse(l) as LogLine);
        cb();
      },
    }),
  );
}

const LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

describeMatrix('OpenID Connect sign-in', matrix(), (b) => {
  let appPort: number;
  let redirect: string;
  let idp: TestIdp;
  let other: TestIdp;
  const apps: TestApp[] = [];
  let logs: LogLine[] = [];

  beforeAll(async () => {
    appPort = await freePort();
    redirect = `http://127.0.0.1:${appPort}/oauth/oidc/callback`;
    idp = await startTestIdp({
      redirectUris: [redirect],
      backchannelLogoutUri: `http://127.0.0.1:${appPort}/oauth/oidc/backchannel-logout`,
    });
    // A second provider that knows the same client: the source of mix-up attempts.
    other = await startTestIdp({ redirectUris: [redirect], clientId: idp.clientId, clientSecret: idp.clientSecret });
  });
  afterAll(async () => {
    await idp.close();
    await other.close();
  });
  afterEach(async () => {
    idp.tamperIdToken(null);
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });

  async function make(env: Record<string, string> = {}) {
    logs = [];
    const app = await createTestApp(b, {
      env: {
        OAUTH_CLIENT_ID: idp.clientId,
        OAUTH_CLIENT_SECRET: idp.clientSecret,
        OPENID_PROVIDER_URL: idp.issuer,
        OPENID_REDIRECT_URI: redirect,
        OAUTH_SCOPES: 'openid email profile groups roles',
        OAUTH_PROVIDER_NAME: 'Company SSO',
        ENABLE_OAUTH_SIGNUP: 'true',
        ...env,
      },
      logger: captureLogger(logs),
    });
    apps.push(app);
    const admin = await signup(app);
    return { app, admin };
  }

  function account(claims: Record<string, unknown> = {}) {
    const sub = `sub-${randomUUID()}`;
    const email = `${sub.slice(4, 12)}@example.com`;
    idp.setAccount(sub, { email, email_verified: true, name: 'Jo Example', ...claims });
    other.setAccount(sub, { email, email_verified: true, name: 'Jo Example', ...claims });
    return { sub, email: (claims.email as string | undefined) ?? email };
  }

  async function expectRefused(app: TestApp, r: Res, code: string, before: number) {
    expect(r.status).toBe(302);
    expect(r.headers.location).toBe(`/?oauth_error=${code}`);
    expect(r.cookies.token).toBeUndefined();
    expect(await sessionCount(app)).toBe(before);
  }

  const refusedFor = (pattern: RegExp) =>
    logs.some((l) => l.msg === 'OAuth sign-in refused' && pattern.test(`${l.details?.reason} ${l.details?.detail}`));

  it('full code flow: PKCE + state + nonce, account and session created, works with SameSite=strict', async () => {
    const { app } = await make({ HRIDAAI_SESSION_COOKIE_SAME_SITE: 'strict', DEFAULT_USER_ROLE: 'user' });
    const cfg = await call(app, 'GET', '/api/config');
    expect(cfg.body.oauth_providers).toEqual([{ id: 'oidc', name: 'Company SSO', login_url: '/oauth/oidc/login' }]);
    expect(JSON.stringify(cfg.body)).not.toContain(idp.clientSecret);

    const person = account({ picture: 'https://images.example.com/jo.png' });
    const s = await startOidc(app, idp, person.sub);
    const authz = new URL(String(s.login.headers.location));
    expect(authz.origin).toBe(idp.issuer);
    expect(authz.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authz.searchParams.get('state')).toBeTruthy();
    expect(authz.searchParams.get('nonce')).toBeTruthy();
    expect(authz.searchParams.get('redirect_uri')).toBe(redirect);
    expect(authz.search).not.toContain(idp.clientSecret);
    const setCookie = ([] as string[]).concat(s.login.headers['set-cookie'] as string | string[]).join('\n');
    expect(setCookie).toMatch(/oauth_state=[^;]+;.*Path=\/oauth\//);
    expect(setCookie).toMatch(/oauth_state=.*HttpOnly/);
    expect(setCookie).toMatch(/oauth_state=.*SameSite=Lax/);
    expect(s.callbackUrl.searchParams.get('iss')).toBe(idp.issuer);

    const before = await sessionCount(app);
    const cb = await finishOidc(app, s.callbackUrl, s.stateCookie);
    expect(cb.status).toBe(302);
    expect(cb.headers.location).toBe('/');
    const sessionCookie = ([] as string[])
      .concat(cb.headers['set-cookie'] as string[])
      .find((c) => c.startsWith('token='));
    expect(sessionCookie).toMatch(/SameSite=Strict/);
    expect(await sessionCount(app)).toBe(before + 1);
    const me = await call(app, 'GET', '/api/v1/auths/', { cookie: cb.cookies.token });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ email: person.email, name: 'Jo Example', role: 'user' });
    expect(me.body.profile_image_url).toBe('https://images.example.com/jo.png');
    const session = await app.ctx.db
      .selectFrom('sessions')
      .selectAll()
      .where('id', '=', me.body.session_id)
      .executeTakeFirstOrThrow();
    expect(session.kind).toBe('oidc:oidc');
    const link = await app.ctx.db
      .selectFrom('sso_sessions')
      .selectAll()
      .where('session_id', '=', session.id)
      .executeTakeFirstOrThrow();
    expect(link).toMatchObject({ provider: 'oidc', subject: person.sub });
    expect(link.idp_sid).toBeTruthy();
    const ident = await app.ctx.db
      .selectFrom('identities')
      .selectAll()
      .where('provider', '=', 'oidc')
      .where('subject', '=', person.sub)
      .executeTakeFirstOrThrow();
    expect(ident.user_id).toBe(me.body.id);
    // the state row was consumed
    expect(await app.ctx.db.selectFrom('oauth_states').select('id').execute()).toEqual([]);

    const signup = await auditRows(app, 'auth.signup');
    expect(
      signup.some((r) => r.result === 'success' && r.details.method === 'oidc' && r.subject_id === me.body.id),
    ).toBe(true);
    expect((await auditRows(app, 'user.created')).some((r) => r.details.via === 'oidc')).toBe(true);
    // signing in again finds the same account
    const again = await oidcLogin(app, idp, person.sub);
    expect(again.callback.status).toBe(302);
    const me2 = await call(app, 'GET', '/api/v1/auths/', { token: again.callback.cookies.token });
    expect(me2.body.id).toBe(me.body.id);
  });

  it('ENABLE_OAUTH_SIGNUP=false: an unknown person is refused, a linked one gets in', async () => {
    const { app } = await make({ ENABLE_OAUTH_SIGNUP: 'false' });
    const person = account();
    const before = await sessionCount(app);
    await expectRefused(app, (await oidcLogin(app, idp, person.sub)).callback, 'signup_disabled', before);
    expect(await userByEmail(app, person.email)).toBeUndefined();
  });

  it('wrong state, missing state cookie, another browser’s state', async () => {
    const { app } = await make();
    const person = account();
    const before = await sessionCount(app);

    const s1 = await startOidc(app, idp, person.sub);
    const forged = new URL(s1.callbackUrl);
    forged.searchParams.set('state', 'attacker-chosen');
    await expectRefused(app, await finishOidc(app, forged, s1.stateCookie), 'oauth_failed', before);
    expect(refusedFor(/state/i)).toBe(true);

    const s2 = await startOidc(app, idp, person.sub);
    await expectRefused(app, await finishOidc(app, s2.callbackUrl, null), 'oauth_state_invalid', before);
    await expectRefused(app, await finishOidc(app, s2.callbackUrl, 'x'.repeat(43)), 'oauth_state_invalid', before);

    // login CSRF: the victim's browser holds its own state; the attacker's callback URL does not match it
    const attacker = await startOidc(app, idp, person.sub);
    const victim = await call(app, 'GET', '/oauth/oidc/login');
    await expectRefused(
      app,
      await finishOidc(app, attacker.callbackUrl, victim.cookies.oauth_state!),
      'oauth_failed',
      before,
    );
    const failures = await auditRows(app, 'auth.signin');
    expect(
      failures.filter((r) => r.result === 'failure' && r.details.method === 'oidc').map((r) => r.details.reason),
    ).toEqual(['oauth_failed', 'oauth_state_invalid', 'oauth_state_invalid', 'oauth_failed']);
  });

  it('a replayed callback or authorization code opens nothing', async () => {
    const { app } = await make();
    const person = account();
    const s = await startOidc(app, idp, person.sub);
    const ok = await finishOidc(app, s.callbackUrl, s.stateCookie);
    expect(ok.status).toBe(302);
    expect(ok.headers.location).toBe('/');
    const after = await sessionCount(app);
    // the same callback again: the server-side state is gone
    await expectRefused(app, await finishOidc(app, s.callbackUrl, s.stateCookie), 'oauth_state_invalid', after);
    // the same code with a state that matches (an attacker who also stole the verifier): the IdP refuses it
    const fresh = await call(app, 'GET', '/oauth/oidc/login');
    const authz = new URL(String(s.login.headers.location));
    await app.ctx.db
      .updateTable('oauth_states')
      .set({ state: authz.searchParams.get('state')!, nonce: authz.searchParams.get('nonce')! })
      .execute();
    const replay = await finishOidc(app, s.callbackUrl, fresh.cookies.oauth_state!);
    await expectRefused(app, replay, 'oauth_failed', after);
    expect(refusedFor(/invalid_grant/)).toBe(true);
  });

  it('nonce mismatch', async () => {
    const { app } = await make();
    const person = account();
    const before = await sessionCount(app);
    const s = await startOidc(app, idp, person.sub);
    await app.ctx.db.updateTable('oauth_states').set({ nonce: 'another-nonce-value' }).execute();
    await expectRefused(app, await finishOidc(app, s.callbackUrl, s.stateCookie), 'oauth_failed', before);
    expect(refusedFor(/nonce/i)).toBe(true);
  });

  it('issuer mix-up: a response from another provider, and an ID token naming another issuer', async () => {
    const { app } = await make();
    const person = account();
    const before = await sessionCount(app);
    // The browser is sent to the other provider (same client id): its code comes back with iss=other.
    const login = await call(app, 'GET', '/oauth/oidc/login');
    const authz = new URL(String(login.headers.location));
    const swapped = new URL(authz.pathname + authz.search, other.issuer);
    other.loginAs(person.sub);
    const cb = await other.browse(swapped.href);
    expect(cb.searchParams.get('iss')).toBe(other.issuer);
    await expectRefused(app, await finishOidc(app, cb, login.cookies.oauth_state!), 'oauth_failed', before);
    expect(refusedFor(/iss/i)).toBe(true);

    idp.tamperIdToken((c) => ({ claims: { ...c, iss: other.issuer } }));
    const s = await startOidc(app, idp, person.sub);
    await expectRefused(app, await finishOidc(app, s.callbackUrl, s.stateCookie), 'oauth_failed', before);
  });

  it('expired ID token, HS256 ID token signed with the client secret, foreign signing key', async () => {
    const { app } = await make();
    const person = account();
    const before = await sessionCount(app);
    const now = Math.floor(Date.now() / 1000);

    idp.tamperIdToken((c) => ({ claims: { ...c, iat: now - 7200, exp: now - 3600 } }));
    let s = await startOidc(app, idp, person.sub);
    await expectRefused(app, await finishOidc(app, s.callbackUrl, s.stateCookie), 'oauth_failed', before);
    expect(refusedFor(/exp/i)).toBe(true);

    idp.tamperIdToken((c) => ({ claims: c, sign: { alg: 'HS256', secret: idp.clientSecret } }));
    s = await startOidc(app, idp, person.sub);
    await expectRefused(app, await finishOidc(app, s.callbackUrl, s.stateCookie), 'oauth_failed', before);
    expect(refusedFor(/"alg" header/)).toBe(true);

    // the IdP's key id, but signed with a key that is not in its JWKS
    idp.tamperIdToken((c) => ({ claims: c, kid: 'idp-key-1', sign: { alg: 'RS256', jwk: other.signingKey } }));
    s = await startOidc(app, idp, person.sub);
    await expectRefused(app, await finishOidc(app, s.callbackUrl, s.stateCookie), 'oauth_failed', before);
    expect(refusedFor(/signature verification failed/)).toBe(true);
    expect(await userByEmail(app, person.email)).toBeUndefined();
  });

  it('OAUTH_MERGE_ACCOUNTS_BY_EMAIL: only with email_verified; never when off', async () => {
    const mergeOn = await make({ OAUTH_MERGE_ACCOUNTS_BY_EMAIL: 'true' });
    const local = await makeUser(mergeOn.app, { email: `local-${randomBytes(3).toString('hex')}@example.com` });
    const unverified = account({ email: local.user.email, email_verified: false });
    const before = await sessionCount(mergeOn.app);
    await expectRefused(
      mergeOn.app,
      (await oidcLogin(mergeOn.app, idp, unverified.sub)).callback,
      'oauth_account_exists',
      before,
    );
    expect(
      await mergeOn.app.ctx.db
        .selectFrom('identities')
        .select('id')
        .where('subject', '=', unverified.sub)
        .executeTakeFirst(),
    ).toBeUndefined();
    const stringFalse = account({ email: local.user.email, email_verified: 'false' });
    await expectRefused(
      mergeOn.app,
      (await oidcLogin(mergeOn.app, idp, stringFalse.sub)).callback,
      'oauth_account_exists',
      before,
    );

    const verified = account({ email: local.user.email, email_verified: true });
    const ok = await oidcLogin(mergeOn.app, idp, verified.sub);
    expect(ok.callback.headers.location).toBe('/');
    const me = await call(mergeOn.app, 'GET', '/api/v1/auths/', { token: ok.callback.cookies.token });
    expect(me.body.id).toBe(local.user.id);

    const mergeOff = await make();
    const local2 = await makeUser(mergeOff.app, { email: `local-${randomBytes(3).toString('hex')}@example.com` });
    const v2 = account({ email: local2.user.email, email_verified: true });
    const before2 = await sessionCount(mergeOff.app);
    await expectRefused(
      mergeOff.app,
      (await oidcLogin(mergeOff.app, idp, v2.sub)).callback,
      'oauth_account_exists',
      before2,
    );
  });

  it('OAUTH_BLOCKED_GROUPS (name, glob, regex) and OAUTH_ALLOWED_DOMAINS refuse the sign-in', async () => {
    const { app } = await make({
      OAUTH_BLOCKED_GROUPS: '["Temp-Accounts", "contractors-*", "/^ext-\\\\d+$/i"]',
      OAUTH_ALLOWED_DOMAINS: 'example.com,partner.example',
    });
    const before = await sessionCount(app);
    for (const groups of [['staff', 'temp-accounts'], ['contractors-eu'], ['EXT-42']]) {
      const p = account({ groups });
      await expectRefused(app, (await oidcLogin(app, idp, p.sub)).callback, 'oauth_group_blocked', before);
      expect(await userByEmail(app, p.email)).toBeUndefined();
    }
    for (const email of [
      'eve@evil.example',
      'eve@sub.example.com',
      'eve@example.com.evil.example',
      'eve@notexample.com',
    ]) {
      const p = account({ email });
      await expectRefused(app, (await oidcLogin(app, idp, p.sub)).callback, 'oauth_domain_not_allowed', before);
    }
    const noMail = account({ email: undefined });
    idp.setAccount(noMail.sub, { name: 'No Mail' });
    await expectRefused(app, (await oidcLogin(app, idp, noMail.sub)).callback, 'oauth_email_missing', before);

    const fine = account({
      groups: ['staff', 'ext-abc', 'temp'],
      email: `ok-${randomBytes(3).toString('hex')}@partner.example`,
    });
    expect((await oidcLogin(app, idp, fine.sub)).callback.headers.location).toBe('/');
  });

  it('role management: admin / user / refused at every sign-in; a missing roles claim refuses without touching the account', async () => {
    const { app } = await make({
      ENABLE_OAUTH_ROLE_MANAGEMENT: 'true',
      OAUTH_ROLES_CLAIM: 'realm_access.roles',
      OAUTH_ADMIN_ROLES: 'superadmin',
      OAUTH_ALLOWED_ROLES: 'staff',
    });
    const before = await sessionCount(app);
    const none = account({ realm_access: { roles: ['guest'] } });
    await expectRefused(app, (await oidcLogin(app, idp, none.sub)).callback, 'oauth_role_not_allowed', before);
    const missing = account();
    await expectRefused(app, (await oidcLogin(app, idp, missing.sub)).callback, 'oauth_role_claim_missing', before);
    expect(await userByEmail(app, missing.email)).toBeUndefined();

    const p = account({ realm_access: { roles: ['superadmin', 'staff'] } });
    const first = await oidcLogin(app, idp, p.sub);
    const t1 = first.callback.cookies.token!;
    expect((await call(app, 'GET', '/api/v1/auths/', { token: t1 })).body.role).toBe('admin');

    // the claim disappears: refused, and the admin is NOT silently demoted
    idp.setAccount(p.sub, { email: p.email, email_verified: true, name: 'Jo' });
    const n = await sessionCount(app);
    await expectRefused(app, (await oidcLogin(app, idp, p.sub)).callback, 'oauth_role_claim_missing', n);
    expect((await userByEmail(app, p.email))!.role).toBe('admin');
    expect((await call(app, 'GET', '/api/v1/auths/', { token: t1 })).status).toBe(200);

    // the IdP demotes: role follows, the old session is revoked
    idp.setAccount(p.sub, { email: p.email, email_verified: true, realm_access: { roles: ['staff'] } });
    const second = await oidcLogin(app, idp, p.sub);
    expect((await call(app, 'GET', '/api/v1/auths/', { token: second.callback.cookies.token })).body.role).toBe('user');
    expect((await call(app, 'GET', '/api/v1/auths/', { token: t1 })).status).toBe(401);
  });

  it('group sync adds and removes only the memberships that came from the provider', async () => {
    const { app, admin } = await make({ ENABLE_OAUTH_GROUP_MANAGEMENT: 'true' });
    const mk = async (name: string) =>
      (await call(app, 'POST', '/api/v1/groups', { token: admin.token, body: { name } })).body.id as string;
    const eng = await mk('Engineering');
    const ops = await mk('Ops');
    const manual = await mk('Manual');
    const p = account({ groups: ['engineering', 'Ops', 'does-not-exist'] });
    const first = await oidcLogin(app, idp, p.sub);
    const user = (await userByEmail(app, p.email))!;
    expect(first.callback.headers.location).toBe('/');
    const members = async () =>
      (
        await app.ctx.db
          .selectFrom('group_members')
          .select(['group_id', 'source'])
          .where('user_id', '=', user.id)
          .orderBy('group_id')
          .execute()
      )
        .map(
          (m) =>
            `${m.group_id === eng ? 'eng' : m.group_id === ops ? 'ops' : m.group_id === manual ? 'manual' : '?'}:${m.source}`,
        )
        .sort();
    expect(await members()).toEqual(['eng:idp:oidc', 'ops:idp:oidc']);
    // an admin adds the user to Manual by hand
    expect(
      (
        await call(app, 'POST', `/api/v1/groups/${manual}/members`, {
          token: admin.token,
          body: { user_ids: [user.id] },
        })
      ).status,
    ).toBe(200);
    idp.setAccount(p.sub, { email: p.email, email_verified: true, groups: ['Engineering', 'Manual'] });
    await oidcLogin(app, idp, p.sub);
    expect(await members()).toEqual(['eng:idp:oidc', 'manual:local']);
    idp.setAccount(p.sub, { email: p.email, email_verified: true, groups: [] });
    await oidcLogin(app, idp, p.sub);
    expect(await members()).toEqual(['manual:local']);
    // no groups claim at all: nothing changes
    idp.setAccount(p.sub, { email: p.email, email_verified: true });
    await oidcLogin(app, idp, p.sub);
    expect(await members()).toEqual(['manual:local']);
    expect(
      await app.ctx.db.selectFrom('groups').select('id').where('name_key', '=', 'does-not-exist').executeTakeFirst(),
    ).toBeUndefined();
  });

  it('ENABLE_OAUTH_GROUP_CREATION creates missing groups (source idp:oidc, no permissions)', async () => {
    const { app } = await make({ ENABLE_OAUTH_GROUP_MANAGEMENT: 'true', ENABLE_OAUTH_GROUP_CREATION: 'true' });
    const p = account({ groups: ['Brand New'] });
    await oidcLogin(app, idp, p.sub);
    const g = await app.ctx.db
      .selectFrom('groups')
      .selectAll()
      .where('name_key', '=', 'brand new')
      .executeTakeFirstOrThrow();
    expect(g).toMatchObject({ name: 'Brand New', source: 'idp:oidc', permissions: '{}' });
  });

  it('OAUTH_MAX_SESSIONS_PER_USER revokes the oldest session of that provider', async () => {
    const { app } = await make({ OAUTH_MAX_SESSIONS_PER_USER: '2' });
    const p = account();
    const tokens: string[] = [];
    for (let i = 0; i < 3; i++) tokens.push((await oidcLogin(app, idp, p.sub)).callback.cookies.token!);
    const user = (await userByEmail(app, p.email))!;
    const other = await app.ctx.sessions.create(app.ctx.db, {
      userId: user.id,
      kind: 'password',
      ip: null,
      userAgent: null,
    });
    const status = async (t: string) => (await call(app, 'GET', '/api/v1/auths/', { token: t })).status;
    expect(await status(tokens[0]!)).toBe(401);
    expect(await status(tokens[1]!)).toBe(200);
    expect(await status(tokens[2]!)).toBe(200);
    tokens.push((await oidcLogin(app, idp, p.sub)).callback.cookies.token!);
    expect(await status(tokens[1]!)).toBe(401);
    expect(await status(tokens[3]!)).toBe(200);
    expect(await status(other.token)).toBe(200); // another kind is not counted
  });

  it('SSO-only: ENABLE_LOGIN_FORM=false and ENABLE_PASSWORD_AUTH=false leave OIDC as the way in', async () => {
    const app = await createTestApp(b, {
      env: {
        OAUTH_CLIENT_ID: idp.clientId,
        OAUTH_CLIENT_SECRET: idp.clientSecret,
        OPENID_PROVIDER_URL: idp.issuer,
        OPENID_REDIRECT_URI: redirect,
        ENABLE_LOGIN_FORM: 'false',
        ENABLE_PASSWORD_AUTH: 'false',
        ENABLE_OAUTH_SIGNUP: 'true',
      },
    });
    apps.push(app);
    const first = account();
    const r = await oidcLogin(app, idp, first.sub);
    expect(r.callback.headers.location).toBe('/');
    // the first account of a fresh install, created by SSO, is the admin
    expect((await call(app, 'GET', '/api/v1/auths/', { token: r.callback.cookies.token })).body.role).toBe('admin');
    const signin = await call(app, 'POST', '/api/v1/auths/signin', { body: { email: first.email, password: 'x' } });
    expect(signin.status).toBe(403);
    const su = await call(app, 'POST', '/api/v1/auths/signup', {
      body: { name: 'x', email: 'n@example.com', password: 'long enough pw' },
    });
    expect(su.status).toBe(403);
    const cfg = (await call(app, 'GET', '/api/config')).body;
    expect(cfg.features.enable_login_form).toBe(false);
    expect(cfg.oauth_providers).toHaveLength(1);
  });

  describe('back-channel logout', () => {
    async function listening(env: Record<string, string> = {}) {
      const made = await make({ ENABLE_OAUTH_BACKCHANNEL_LOGOUT: 'true', ...env });
      await made.app.app.listen({ host: '127.0.0.1', port: appPort });
      return made;
    }

    async function logoutToken(claims: JWTPayload, opts: { alg?: 'RS256' | 'HS256'; typ?: string } = {}) {
      const now = Math.floor(Date.now() / 1000);
      const jwt = new SignJWT({
        iss: idp.issuer,
        aud: idp.clientId,
        iat: now,
        exp: now + 120,
        jti: randomUUID(),
        events: { [LOGOUT_EVENT]: {} },
        ...claims,
      });
      if (opts.alg === 'HS256')
        return jwt
          .setProtectedHeader({ alg: 'HS256', typ: opts.typ ?? 'logout+jwt' })
          .sign(new TextEncoder().encode(idp.clientSecret));
      return jwt
        .setProtectedHeader({ alg: 'RS256', kid: 'idp-key-1', typ: opts.typ ?? 'logout+jwt' })
        .sign(await importJWK(idp.signingKey, 'RS256'));
    }

    const post = (app: TestApp, token: string) =>
      call(app, 'POST', '/oauth/oidc/backchannel-logout', {
        rawBody: new URLSearchParams({ logout_token: token }).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });

    it('the provider’s logout token revokes the matching session within a second', async () => {
      const { app } = await listening();
      const p = account();
      const a = await oidcLogin(app, idp, p.sub);
      const bystander = account();
      const c = await oidcLogin(app, idp, bystander.sub);
      const tA = a.callback.cookies.token!;
      const tC = c.callback.cookies.token!;
      const me = (t: string) => call(app, 'GET', '/api/v1/auths/', { token: t });
      expect((await me(tA)).status).toBe(200);
      const link = await app.ctx.db
        .selectFrom('sso_sessions')
        .selectAll()
        .where('subject', '=', p.sub)
        .executeTakeFirstOrThrow();
      const started = Date.now();
      await idp.backchannelLogout(p.sub, link.idp_sid!);
      const after = await me(tA);
      expect(Date.now() - started).toBeLessThan(1000);
      expect(after.status).toBe(401);
      expect(after.body.error.code).toBe('session_revoked');
      expect((await me(tC)).status).toBe(200);
    });

    it('by sub when there is no sid; replay, nonce, missing event, wrong audience, HS256, expiry are refused', async () => {
      const { app } = await listening();
      const p = account();
      const t = (await oidcLogin(app, idp, p.sub)).callback.cookies.token!;
      const me = () => call(app, 'GET', '/api/v1/auths/', { token: t });
      const bad = [
        await logoutToken({ sub: p.sub, nonce: 'n' }),
        await logoutToken({ sub: p.sub, events: {} }),
        await logoutToken({ sub: p.sub, events: { [LOGOUT_EVENT]: 'yes' } }),
        await logoutToken({ sub: p.sub, aud: 'someone-else' }),
        await logoutToken({ sub: p.sub, iss: other.issuer }),
        await logoutToken({ sub: p.sub }, { alg: 'HS256' }),
        await logoutToken({ sub: p.sub }, { typ: 'JWT+id' }),
        await logoutToken({
          sub: p.sub,
          iat: Math.floor(Date.now() / 1000) - 3600,
          exp: Math.floor(Date.now() / 1000) - 1800,
        }),
        await logoutToken({ sub: p.sub, jti: undefined }),
        await logoutToken({}),
        'not-a-jwt',
      ];
      for (const tok of bad) {
        const r = await post(app, tok);
        expect(r.status, tok.slice(0, 40)).toBe(400);
        expect(r.body.error).toBe('invalid_request');
        expect((await me()).status).toBe(200);
      }
      const good = await logoutToken({ sub: p.sub });
      expect((await post(app, good)).status).toBe(200);
      expect((await me()).status).toBe(401);
      const replay = await post(app, good);
      expect(replay.status).toBe(400);
      expect(replay.body.error_description).toMatch(/replay/);
    });

    it('is 404 while ENABLE_OAUTH_BACKCHANNEL_LOGOUT is off', async () => {
      const { app } = await make();
      const r = await post(app, await logoutToken({ sub: 'x' }));
      expect(r.status).toBe(404);
    });
  });

  describe('provider discovery goes through the outbound client', () => {
    async function proxy(handler: http.RequestListener) {
      const s = http.createServer(handler);
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
      return {
        url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`,
        close: () => new Promise<void>((r) => s.close(() => r())),
      };
    }

    it('a redirect at discovery is not followed; a document naming another issuer is refused', async () => {
      const redirecting = await proxy((_req, res) => {
        res.writeHead(302, { location: `${idp.issuer}/.well-known/openid-configuration` });
        res.end();
      });
      const impostor = await proxy(async (_req, res) => {
        const doc = await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).text();
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(doc);
      });
      try {
        for (const url of [redirecting.url, impostor.url]) {
          const { app } = await make({ OPENID_PROVIDER_URL: url });
          const r = await call(app, 'GET', '/oauth/oidc/login');
          expect(r.status).toBe(302);
          expect(r.headers.location).toBe('/?oauth_error=oauth_provider_unavailable');
          expect(r.cookies.oauth_state).toBeUndefined();
        }
      } finally {
        await redirecting.close();
        await impostor.close();
      }
    });

    it('the well-known URL form is accepted; plain http to a non-loopback host is refused at start', async () => {
      const { app } = await make({ OPENID_PROVIDER_URL: `${idp.issuer}/.well-known/openid-configuration` });
      const p = account();
      expect((await oidcLogin(app, idp, p.sub)).callback.headers.location).toBe('/');
      expect(() => loadConfig({ OPENID_PROVIDER_URL: 'http://idp.example.com', OAUTH_CLIENT_ID: 'x' })).toThrow(
        /OPENID_PROVIDER_URL/,
      );
      expect(() => loadConfig({ OPENID_PROVIDER_URL: 'http://169.254.169.254', OAUTH_CLIENT_ID: 'x' })).toThrow(
        /OPENID_PROVIDER_URL/,
      );
    });
  });

  it('a provider that never answers fails the sign-in instead of hanging it', async () => {
    const silent = http.createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    try {
      const { app } = await make({ OPENID_PROVIDER_URL: `http://127.0.0.1:${(silent.address() as AddressInfo).port}` });
      const started = Date.now();
      const r = await call(app, 'GET', '/oauth/oidc/login');
      expect(r.headers.location).toBe('/?oauth_error=oauth_provider_unavailable');
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  }, 30_000);

  it('an unknown or unconfigured provider is 404', async () => {
    const { app } = await make();
    expect((await call(app, 'GET', '/oauth/google/login')).status).toBe(404);
    expect((await call(app, 'GET', '/oauth/nope/login')).status).toBe(400);
  });
});

describe('provider presets', () => {
  it('Google, Microsoft (single tenant only) and GitHub appear in /api/config with fixed issuers', async () => {
    const tenant = '8c1b6f2e-3c44-4a11-9b0e-2f6c1d7e9a10';
    const cfg = loadConfig({
      GOOGLE_CLIENT_ID: 'g',
      GOOGLE_CLIENT_SECRET: 'gs',
      MICROSOFT_CLIENT_ID: 'm',
      MICROSOFT_CLIENT_SECRET: 'ms',
      MICROSOFT_CLIENT_TENANT_ID: tenant,
      GITHUB_CLIENT_ID: 'h',
      GITHUB_CLIENT_SECRET: 'hs',
    });
    const { configuredProviders } = await import('../../server/modules/sso/providers.js');
    const ps = configuredProviders(cfg);
    expect(ps.map((p) => [p.id, p.issuer])).toEqual([
      ['google', 'https://accounts.google.com'],
      ['microsoft', `https://login.microsoftonline.com/${tenant}/v2.0`],
      ['github', 'https://github.com'],
    ]);
    for (const t of ['common', 'organizations', 'consumers', 'contoso.onmicrosoft.com'])
      expect(() => loadConfig({ MICROSOFT_CLIENT_ID: 'm', MICROSOFT_CLIENT_TENANT_ID: t })).toThrow(
        /MICROSOFT_CLIENT_TENANT_ID/,
      );
  });

  it('GitHub: the subject is the numeric id and only a verified e-mail is used', () => {
    const c = githubClaims({ id: 42, login: 'octo', name: null, avatar_url: 'https://avatars.example/u/42' }, [
      { email: 'unverified@example.com', primary: true, verified: false },
      { email: 'verified@example.com', primary: false, verified: true },
    ]);
    expect(c.subject).toBe('42');
    expect(c.claims).toMatchObject({ email: 'verified@example.com', email_verified: true, name: 'octo' });
    const none = githubClaims({ id: 7, login: 'x' }, [{ email: 'u@example.com', primary: true, verified: false }]);
    expect(none.claims.email).toBeUndefined();
    expect(() => githubClaims({ login: 'no-id' }, [])).toThrow();
  });
});
