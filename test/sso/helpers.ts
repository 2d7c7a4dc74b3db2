/** Shared helpers of the SSO suites: a browser-free OAuth sign-in against the test IdP. */
import { call, type Res, type TestApp } from '../harness.js';
import type { TestIdp } from '../fixtures/oidc-provider.js';

export interface OidcAttempt {
  login: Res;
  /** The URL the IdP sent the browser back to. */
  callbackUrl: URL;
  stateCookie: string;
  callback: Res;
}

export function setCookieValue(res: Res, name: string): string | undefined {
  return res.cookies[name];
}

/** Starts a sign-in at HridaAI, signs in at the IdP as `sub`, returns before the callback. */
export async function startOidc(app: TestApp, idp: TestIdp, sub: string, provider = 'oidc') {
  const login = await call(app, 'GET', `/oauth/${provider}/login`);
  if (login.status !== 302) throw new Error(`login: ${login.status} ${login.text}`);
  const stateCookie = login.cookies['oauth_state'];
  if (!stateCookie) throw new Error('no state cookie');
  idp.loginAs(sub);
  const callbackUrl = await idp.browse(String(login.headers.location));
  return { login, callbackUrl, stateCookie };
}

export async function finishOidc(app: TestApp, callbackUrl: URL, stateCookie: string | null, provider = 'oidc') {
  return call(app, 'GET', `/oauth/${provider}/callback${callbackUrl.search}`, {
    headers: stateCookie ? { cookie: `oauth_state=${stateCookie}` } : {},
  });
}

export async function oidcLogin(app: TestApp, idp: TestIdp, sub: string): Promise<OidcAttempt> {
  const s = await startOidc(app, idp, sub);
  const callback = await finishOidc(app, s.callbackUrl, s.stateCookie);
  return { ...s, callback };
}

export async function sessionCount(app: TestApp): Promise<number> {
  const r = await app.ctx.db
    .selectFrom('sessions')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

export async function userByEmail(app: TestApp, email: string) {
  return app.ctx.db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirst();
}

/** Audit trail rows of an action (authentication events are queued: flushed first). */
export async function auditRows(app: TestApp, action: string) {
  await app.ctx.audit.flush();
  const rows = await app.ctx.db
    .selectFrom('audit_events')
    .select(['action', 'result', 'details', 'subject_id'])
    .where('action', '=', action)
    .orderBy('seq')
    .execute();
  return rows.map((r) => ({ ...r, details: JSON.parse(r.details ?? '{}') as Record<string, unknown> }));
}
