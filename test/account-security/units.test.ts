import { describe, expect, it } from 'vitest';
import { loadConfig, ConfigErrors } from '../../server/config/index.js';
import {
  accountSubject,
  backoffMs,
  blockedUntil,
  clientAddressKey,
  ipSubject,
  lockoutMs,
  normalise,
  refund,
  reserve,
  type AttemptState,
  type LimiterPolicy,
} from '../../server/modules/account-security/limiter.js';
import {
  matchTotp,
  newRecoveryCodes,
  newTotpSecret,
  normaliseRecoveryCode,
  otpauthUri,
  totpCode,
  totpStep,
  TOTP_STEP_MS,
} from '../../server/modules/account-security/totp.js';

const T0 = 1_700_000_000_000 - (1_700_000_000_000 % TOTP_STEP_MS); // the start of a step

describe('TOTP with a fixed clock', () => {
  const secret = newTotpSecret();

  it('accepts the current step and one step either side, nothing further', () => {
    const now = T0 + 10_000;
    const cur = totpStep(now);
    expect(matchTotp(totpCode(secret, now), secret, now)).toBe(cur);
    expect(matchTotp(totpCode(secret, now - TOTP_STEP_MS), secret, now)).toBe(cur - 1);
    expect(matchTotp(totpCode(secret, now + TOTP_STEP_MS), secret, now)).toBe(cur + 1);
    const far = [totpCode(secret, now - 2 * TOTP_STEP_MS), totpCode(secret, now + 2 * TOTP_STEP_MS)];
    for (const c of far) if (c !== totpCode(secret, now)) expect(matchTotp(c, secret, now)).toBeNull();
  });

  it('window edges: the last millisecond of a step and the first of the next', () => {
    const codeAtStart = totpCode(secret, T0);
    // Same step until T0 + 29 999 ms; still accepted (as the previous step) until T0 + 59 999 ms.
    expect(matchTotp(codeAtStart, secret, T0 + TOTP_STEP_MS - 1)).toBe(totpStep(T0));
    expect(matchTotp(codeAtStart, secret, T0 + 2 * TOTP_STEP_MS - 1)).toBe(totpStep(T0));
    const later = T0 + 2 * TOTP_STEP_MS;
    if (totpCode(secret, later) !== codeAtStart && totpCode(secret, later - TOTP_STEP_MS) !== codeAtStart)
      expect(matchTotp(codeAtStart, secret, later)).toBeNull();
    // A code of the next step is accepted one step early, not two.
    const next = totpCode(secret, T0 + TOTP_STEP_MS);
    expect(matchTotp(next, secret, T0)).toBe(totpStep(T0) + 1);
    const next2 = totpCode(secret, T0 + 2 * TOTP_STEP_MS);
    if (next2 !== totpCode(secret, T0) && next2 !== next) expect(matchTotp(next2, secret, T0)).toBeNull();
  });

  it('refuses malformed codes and wrong secrets', () => {
    const now = T0 + 1000;
    const good = totpCode(secret, now);
    for (const bad of ['', '12345', '1234567', 'abcdef', `${good}0`, ' '.repeat(6)])
      expect(matchTotp(bad, secret, now)).toBeNull();
    expect(matchTotp(`${good.slice(0, 3)} ${good.slice(3)}`, secret, now)).toBe(totpStep(now));
    const other = newTotpSecret();
    if (totpCode(other, now) !== good) expect(matchTotp(good, other, now)).toBeNull();
  });

  it('builds a standard otpauth URI', () => {
    const uri = otpauthUri('JBSWY3DPEHPK3PXP', 'ada@example.com', 'HridaAI');
    const u = new URL(uri);
    expect(u.protocol).toBe('otpauth:');
    expect(u.host).toBe('totp');
    expect(decodeURIComponent(u.pathname)).toBe('/HridaAI:ada@example.com');
    expect(u.searchParams.get('secret')).toBe('JBSWY3DPEHPK3PXP');
    expect(u.searchParams.get('issuer')).toBe('HridaAI');
    expect(u.searchParams.get('digits')).toBe('6');
    expect(u.searchParams.get('period')).toBe('30');
  });
});

describe('recovery codes', () => {
  it('ten distinct codes of 60 bits, in a forgiving canonical form', () => {
    const codes = newRecoveryCodes();
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const c of codes) {
      expect(c).toMatch(/^[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}$/);
      expect(normaliseRecoveryCode(c)).toBe(c.replace(/-/g, ''));
      expect(normaliseRecoveryCode(` ${c.toUpperCase()} `)).toBe(c.replace(/-/g, ''));
    }
    expect(normaliseRecoveryCode('0000-1111-2222')).toBe('000011112222');
    expect(normaliseRecoveryCode('oooo-iiii-llll')).toBe('000011111111');
    expect(normaliseRecoveryCode('short')).toBeNull();
    expect(normaliseRecoveryCode('uuuu-uuuu-uuuu')).toBeNull();
  });
});

describe('login limiter: subjects', () => {
  it('an IPv6 address counts as its /64; IPv4 (also IPv4-mapped) as itself', () => {
    expect(clientAddressKey('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(clientAddressKey('2001:db8:1:2:ffff::1')).toBe('2001:db8:1:2::/64');
    expect(ipSubject('2001:db8:1:2::1').id).toBe(ipSubject('2001:db8:1:2:aaaa:bbbb:cccc:dddd').id);
    expect(ipSubject('2001:db8:1:3::1').id).not.toBe(ipSubject('2001:db8:1:2::1').id);
    expect(clientAddressKey('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(ipSubject('::ffff:127.0.0.5').id).toBe(ipSubject('127.0.0.5').id);
    expect(clientAddressKey('127.0.0.1')).toBe('127.0.0.1');
    expect(clientAddressKey(undefined)).toBe('unknown');
  });

  it('an account is its identifier, whatever the case or surrounding spaces', () => {
    expect(accountSubject(' Ada@Example.COM ').id).toBe(accountSubject('ada@example.com').id);
    expect(accountSubject('ada@example.com').id).not.toBe(accountSubject('bob@example.com').id);
    expect(accountSubject('ada@example.com').id).toMatch(/^a_[0-9a-f]{40}$/);
    expect(ipSubject('127.0.0.1').id).toMatch(/^i_[0-9a-f]{40}$/);
  });
});

describe('login limiter: the state machine', () => {
  const p: LimiterPolicy = {
    accountMax: 5,
    ipMax: 50,
    lockoutMs: 15 * 60_000,
    lockoutMaxMs: 24 * 3_600_000,
    backoffBaseMs: 1000,
    backoffMaxMs: 60_000,
    windowMs: 3_600_000,
  };

  it('N failures lock the account; the back-off starts at half and doubles', () => {
    let s: AttemptState = normalise(null, 0, p);
    let now = 1_000_000;
    const delays: number[] = [];
    for (let i = 1; i <= 4; i++) {
      const r = reserve(s, now, 'account', p);
      expect(r.lockedNow).toBe(false);
      s = r.state;
      delays.push(s.nextAt ? s.nextAt - now : 0);
      now = Math.max(now + 1, s.nextAt);
    }
    expect(delays).toEqual([0, 0, 1000, 2000]);
    const fifth = reserve(s, now, 'account', p);
    expect(fifth.lockedNow).toBe(true);
    expect(fifth.state.lockedUntil).toBe(now + 15 * 60_000);
    expect(blockedUntil(fifth.state, now + 1).reason).toBe('locked');
    expect(blockedUntil(normalise(fifth.state, now + 15 * 60_000, p), now + 15 * 60_000).reason).toBeNull();
  });

  it('a second lockout within the window doubles, capped at the maximum', () => {
    expect(lockoutMs(1, p)).toBe(15 * 60_000);
    expect(lockoutMs(2, p)).toBe(30 * 60_000);
    expect(lockoutMs(3, p)).toBe(60 * 60_000);
    expect(lockoutMs(30, p)).toBe(24 * 3_600_000);
  });

  it('addresses get the back-off only past half their threshold', () => {
    expect(backoffMs('ip', 25, p)).toBe(0);
    expect(backoffMs('ip', 26, p)).toBe(1000);
    expect(backoffMs('ip', 27, p)).toBe(2000);
    expect(backoffMs('ip', 49, p)).toBe(60_000);
    expect(backoffMs('account', 2, { ...p, backoffBaseMs: 0 })).toBe(0);
  });

  it('everything is forgotten after the window without a failure; a refund gives the attempt back', () => {
    const r = reserve(normalise(null, 0, p), 1000, 'account', p);
    expect(normalise(r.state, 1000 + p.windowMs, p).failures).toBe(1);
    expect(normalise(r.state, 1001 + p.windowMs, p).failures).toBe(0);
    expect(refund(r.state, false, 'account', p).failures).toBe(0);
    let s = normalise(null, 0, p);
    for (let i = 0; i < 4; i++) s = reserve(s, 0, 'account', p).state;
    const locking = reserve(s, 0, 'account', p);
    const back = refund(locking.state, true, 'account', p);
    expect(back.lockedUntil).toBe(0);
    expect(back.failures).toBe(4);
    expect(back.lockouts).toBe(0);
  });
});

describe('account-security settings', () => {
  const base = { DATA_DIR: '/tmp/hridaai-unused' };

  it('documented defaults', () => {
    const c = loadConfig(base);
    expect(c.ENABLE_2FA).toBe(true);
    expect(c.ENFORCE_2FA).toBe(false);
    expect(c.POLICY_NO_AUTH_DEFAULT).toBe('deny');
    expect(c.LOGIN_MAX_ATTEMPTS).toBe(5);
    expect(c.LOGIN_IP_MAX_ATTEMPTS).toBe(50);
    expect(c.LOGIN_LOCKOUT_DURATION).toBe(15 * 60_000);
    expect(c.LOGIN_LOCKOUT_MAX_DURATION).toBe(24 * 3_600_000);
    expect(c.LOGIN_BACKOFF_BASE).toBe(1000);
    expect(c.LOGIN_BACKOFF_MAX).toBe(60_000);
    expect(c.LOGIN_ATTEMPT_WINDOW).toBe(3_600_000);
    expect(c.TWO_FACTOR_CHALLENGE_TTL).toBe(5 * 60_000);
    expect(c.TWO_FACTOR_MAX_ATTEMPTS).toBe(5);
    expect(c.TWO_FACTOR_ISSUER).toBe('HridaAI');
  });

  it('bad values stop the server with the variable name', () => {
    for (const [k, v] of [
      ['POLICY_NO_AUTH_DEFAULT', 'everyone'],
      ['LOGIN_BACKOFF_BASE', 'soon'],
      ['LOGIN_LOCKOUT_DURATION', '0'],
      ['LOGIN_MAX_ATTEMPTS', '0'],
      ['TWO_FACTOR_ISSUER', 'a:b'],
      ['ENFORCE_2FA', 'maybe'],
    ] as const) {
      let err: unknown;
      try {
        loadConfig({ ...base, [k]: v });
      } catch (e) {
        err = e;
      }
      expect(err, k).toBeInstanceOf(ConfigErrors);
      expect(String((err as Error).message)).toContain(k);
    }
    expect(loadConfig({ ...base, LOGIN_BACKOFF_BASE: '0' }).LOGIN_BACKOFF_BASE).toBe(0);
    expect(loadConfig({ ...base, LOGIN_LOCKOUT_DURATION: '1h30m' }).LOGIN_LOCKOUT_DURATION).toBe(90 * 60_000);
  });
});
