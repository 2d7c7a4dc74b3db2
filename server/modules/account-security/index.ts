/**
 * Account security: TOTP two-factor authentication with recovery codes (ENABLE_2FA, ENFORCE_2FA),
 * the login limiter (brute-force protection shared by every sign-in path), admin password reset
 * with a forced change, and the no-authentication policy (POLICY_NO_AUTH_DEFAULT).
 *
 * The service lives at `ctx.accountSecurity`. What other modules use:
 *
 * - **Login limiter** — `ctx.accountSecurity.limiter` (see limiter.ts for the full contract):
 *
 *       import { accountSubject, ipSubject } from '../account-security/index.js';
 *       const attempt = await ctx.accountSecurity.limiter.attempt([accountSubject(login, user?.id), ipSubject(req.ip)]);
 *       if (!attempt.allowed) → answer exactly like a wrong credential, without checking it
 *       ...check the credential (always the same work)...
 *       on failure: nothing more (the attempt was counted up front)
 *       on success: see "After a first factor" below (or `limiter.succeed(attempt)`)
 *
 *   For credentials where only failures matter (API keys): `limiter.check([...])` (read-only)
 *   and `limiter.fail([...])` (count one failure). `ctx.accountSecurity.apiKeyFailed(req, e)`
 *   already does this for `Authorization: Bearer sk-…`.
 *
 * - **After a first factor** (password, LDAP): `await ctx.accountSecurity.afterFirstFactor(req,
 *   user, attempt, 'ldap')` returns either `{ challenge }` (the account uses 2FA: answer it, no
 *   session) or `{ notices }` (create the session with that kind and add the notices to the answer).
 *
 * - **Restrictions**: authenticate calls `enforce(req, auth)` for every request; a session that
 *   must change its password or enrol in 2FA reaches only the routes listed in service.ts.
 *
 * - **No-auth policy**: authenticate calls `anonymousAuth(req)` for a request without credentials.
 *   A GET route opts in to `view_only` with `viewable: true` in its `route()` declaration.
 */
export {
  accountSubject,
  clientAddressKey,
  ipSubject,
  LoginLimiter,
  type Attempt,
  type LimitSubject,
} from './limiter.js';
export {
  AccountSecurity,
  CHALLENGE_TYP,
  SSO_SESSION_KINDS,
  isSsoSessionKind,
  restrictionsOfAuth,
  tooManyAttempts,
  type Restriction,
} from './service.js';
export { registerAccountSecurityRoutes } from './routes.js';
