import { performance } from 'node:perf_hooks';
import { afterEach, expect, it } from 'vitest';
import { createTestApp, describeMatrix, makeUser, matrix, signup, uniqueEmail, type TestApp } from '../harness.js';
import { signin } from './helpers.js';

const ROUNDS = 200;
const WARMUP = 20;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * Account enumeration: an unknown account, a wrong password and a locked account get the same
 * status, the same body and about the same time (median difference under 5 ms over 200 tries).
 */
describeMatrix('sign-in answers do not reveal accounts', matrix(), (b) => {
  const apps: TestApp[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });

  it('unknown user, wrong password and locked account: same status, body and time', async () => {
    const app = await createTestApp(b, { env: { LOGIN_MAX_ATTEMPTS: '3', LOGIN_BACKOFF_BASE: '0' } });
    apps.push(app);
    await signup(app);
    const pw = 'the right password';
    const n = ROUNDS + WARMUP;
    const accounts: { email: string }[] = [];
    for (let i = 0; i < n; i++) accounts.push((await makeUser(app, { password: pw })).user);
    const locked = (await makeUser(app, { password: pw })).user;
    for (let i = 0; i < 3; i++) await signin(app, locked.email, 'wrong', { remoteAddress: '127.1.0.1' });

    // Every try from its own address so that only the account decides.
    let ipSeq = 0;
    const addr = () => {
      ipSeq += 1;
      return `127.2.${Math.floor(ipSeq / 250)}.${(ipSeq % 250) + 1}`;
    };
    const kinds = {
      unknown: (i: number) =>
        signin(app, uniqueEmail('nobody'), pw, { remoteAddress: addr() }).then((r) => [r, i] as const),
      wrong: (i: number) =>
        signin(app, accounts[i]!.email, 'wrong password', { remoteAddress: addr() }).then((r) => [r, i] as const),
      locked: (i: number) => signin(app, locked.email, pw, { remoteAddress: addr() }).then((r) => [r, i] as const),
    };
    const times: Record<keyof typeof kinds, number[]> = { unknown: [], wrong: [], locked: [] };
    const bodies = new Map<string, string>();
    for (let i = 0; i < n; i++) {
      // Interleaved, in a rotating order, so drift and noise hit every kind alike.
      const order = (['unknown', 'wrong', 'locked'] as const).map((_, j, a) => a[(i + j) % 3]!);
      for (const k of order) {
        const t0 = performance.now();
        const [r] = await kinds[k](i);
        const dt = performance.now() - t0;
        expect(r.status, k).toBe(401);
        bodies.set(k, r.text);
        if (i >= WARMUP) times[k].push(dt);
      }
    }
    expect(new Set(bodies.values()).size).toBe(1);
    const med = { unknown: median(times.unknown), wrong: median(times.wrong), locked: median(times.locked) };
    const spread = Math.max(med.unknown, med.wrong, med.locked) - Math.min(med.unknown, med.wrong, med.locked);
    expect(spread, JSON.stringify(med)).toBeLessThan(5);
    // The right password of the locked account still fails: it was never checked.
    expect((await signin(app, locked.email, pw, { remoteAddress: addr() })).status).toBe(401);
  });
});
