import { expect } from 'vitest';
import { totpCode, TOTP_STEP_MS } from '../../server/modules/account-security/totp.js';
import type { AuthEvent } from '../../server/platform/audit/index.js';
import { call, type Res, type TestApp } from '../harness.js';

/** A fixed instant in the middle of a TOTP step (far from both edges). */
export function midStep(at = Date.now()): number {
  return Math.floor(at / TOTP_STEP_MS) * TOTP_STEP_MS + TOTP_STEP_MS / 2;
}

/** Fixes the clock of the TOTP checks and the login limiter; returns a setter to move it. */
export function fixClock(app: TestApp, at: number) {
  let now = at;
  app.ctx.accountSecurity.clock = () => now;
  return {
    get now() {
      return now;
    },
    set(t: number) {
      now = t;
    },
    advance(ms: number) {
      now += ms;
    },
  };
}

export function signin(
  app: TestApp,
  email: string,
  password: string,
  opts: { remoteAddress?: string; headers?: Record<string, string> } = {},
): Promise<Res> {
  return call(app, 'POST', '/api/v1/auths/signin', { body: { email, password }, ...opts });
}

/** Enrols TOTP for a signed-in user at the app's clock: returns the secret and the recovery codes. */
export async function enrol(
  app: TestApp,
  token: string,
  password: string | undefined,
): Promise<{ secret: string; recoveryCodes: string[] }> {
  const setup = await call(app, 'POST', '/api/v1/auths/2fa/setup', { token, body: password ? { password } : {} });
  expect(setup.status, setup.text).toBe(200);
  const secret: string = setup.body.secret;
  const enable = await call(app, 'POST', '/api/v1/auths/2fa/enable', {
    token,
    body: { code: totpCode(secret, app.ctx.accountSecurity.clock()) },
  });
  expect(enable.status, enable.text).toBe(200);
  return { secret, recoveryCodes: enable.body.recovery_codes };
}

/** Records authentication audit events (in addition to the real trail). */
export function captureAuthEvents(app: TestApp): AuthEvent[] {
  const events: AuthEvent[] = [];
  const real = app.ctx.audit;
  app.ctx.audit = {
    ...real,
    record: real.record.bind(real),
    recordAuth: real.recordAuth.bind(real),
    flush: real.flush.bind(real),
    auth(e) {
      events.push(e);
      real.auth(e);
    },
  };
  return events;
}
