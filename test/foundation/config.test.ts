import { describe, expect, it } from 'vitest';
import { ConfigErrors, loadConfig } from '../../server/config/index.js';
import { settings } from '../../server/config/schema.js';

function errorsOf(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (e) {
    if (e instanceof ConfigErrors) return e.message;
    throw e;
  }
  throw new Error('expected the configuration to be refused');
}

describe('configuration defaults', () => {
  const c = loadConfig({});

  it('uses the documented defaults', () => {
    expect(c.PORT).toBe(8080);
    expect(c.DATA_DIR).toBe('./data');
    expect(c.ENV).toBe('dev');
    expect(c.ENABLE_SIGNUP).toBe(false);
    expect(c.DEFAULT_USER_ROLE).toBe('pending');
    expect(c.ENABLE_PASSWORD_VALIDATION).toBe(false);
    expect(c.PASSWORD_VALIDATION_REGEX_PATTERN).toBe('^(?=.*[a-z])(?=.*[A-Z])(?=.*\\d)(?=.*[^\\w\\s]).{8,}$');
    expect(c.ENABLE_LOGIN_FORM).toBe(true);
    expect(c.ENABLE_PASSWORD_AUTH).toBe(true);
    expect(c.ENABLE_PASSWORD_CHANGE_FORM).toBe(true);
    expect(c.HRIDAAI_SESSION_COOKIE_SECURE).toBe(false);
    expect(c.HRIDAAI_SESSION_COOKIE_SAME_SITE).toBe('lax');
    expect(c.authCookie).toEqual({ secure: false, sameSite: 'lax' });
    expect(c.JWT_EXPIRES_IN).toBe(4 * 7 * 86_400_000);
    expect(c.CORS_ALLOW_ORIGIN).toBe('*');
    expect(c.FORWARDED_ALLOW_IPS).toBe('*');
    expect(c.LOG_FORMAT).toBe('text');
    expect(c.GLOBAL_LOG_LEVEL).toBe('INFO');
    expect(c.database.kind).toBe('sqlite');
    expect(c.database.sqlitePath).toMatch(/data\/hridaai\.db$/);
    for (const h of [
      'HSTS',
      'XFRAME_OPTIONS',
      'XCONTENT_TYPE',
      'REFERRER_POLICY',
      'PERMISSIONS_POLICY',
      'CONTENT_SECURITY_POLICY',
      'CONTENT_SECURITY_POLICY_REPORT_ONLY',
      'CROSS_ORIGIN_EMBEDDER_POLICY',
      'CROSS_ORIGIN_OPENER_POLICY',
      'CROSS_ORIGIN_RESOURCE_POLICY',
      'REPORTING_ENDPOINTS',
    ] as const)
      expect(c[h], h).toBeNull();
  });

  it('warns about risky defaults', () => {
    expect(c.warnings.join('\n')).toMatch(/CORS_ALLOW_ORIGIN is "\*"/);
  });

  it('reads the entry-point default and lets the environment win', () => {
    expect(loadConfig({}, { entryDefaults: { ENV: 'prod' } }).ENV).toBe('prod');
    expect(loadConfig({ ENV: 'dev' }, { entryDefaults: { ENV: 'prod' } }).ENV).toBe('dev');
    expect(loadConfig({ ENV: 'dev' }, { entryDefaults: { ENV: 'prod' } }).sources.ENV).toBe('env');
  });
});

describe('invalid values stop the server with the variable and what is allowed', () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ PORT: 'eighty' }, /PORT: must be a whole number/],
    [{ PORT: '70000' }, /PORT: must be between 1 and 65535/],
    [{ ENABLE_SIGNUP: 'maybe' }, /ENABLE_SIGNUP: must be true or false/],
    [{ DEFAULT_USER_ROLE: 'admin' }, /DEFAULT_USER_ROLE: must be one of pending, user/],
    [{ JWT_EXPIRES_IN: '4 weeks' }, /JWT_EXPIRES_IN: .*not a duration/],
    [{ JWT_EXPIRES_IN: '0s' }, /JWT_EXPIRES_IN: .*shorter than one second/],
    [{ HSTS: 'maxage=1' }, /HSTS: unknown directive/],
    [{ HSTS: 'includeSubDomains' }, /HSTS: max-age=<seconds> is required/],
    [{ XFRAME_OPTIONS: 'ALLOW-FROM x' }, /XFRAME_OPTIONS: must be DENY or SAMEORIGIN/],
    [{ XCONTENT_TYPE: 'sniff' }, /XCONTENT_TYPE: must be nosniff/],
    [{ REFERRER_POLICY: 'everything' }, /REFERRER_POLICY: unknown policy/],
    [{ PERMISSIONS_POLICY: 'camera' }, /PERMISSIONS_POLICY: .*not a valid Permissions-Policy entry/],
    [{ CONTENT_SECURITY_POLICY: "default-src 'self', script-src x" }, /CONTENT_SECURITY_POLICY: a comma/],
    [{ CONTENT_SECURITY_POLICY: "default-src 'self'; default-src x" }, /appears twice/],
    [{ CROSS_ORIGIN_EMBEDDER_POLICY: 'require' }, /CROSS_ORIGIN_EMBEDDER_POLICY: must be one of/],
    [{ CROSS_ORIGIN_OPENER_POLICY: 'same' }, /CROSS_ORIGIN_OPENER_POLICY: must be one of/],
    [{ CROSS_ORIGIN_RESOURCE_POLICY: 'anyone' }, /CROSS_ORIGIN_RESOURCE_POLICY: must be one of/],
    [{ REPORTING_ENDPOINTS: 'default=https://x' }, /REPORTING_ENDPOINTS: .*name="https/],
    [{ FORWARDED_ALLOW_IPS: '10.0.0.1,proxy.local' }, /FORWARDED_ALLOW_IPS: "proxy.local" is not a valid IP/],
    [{ FORWARDED_ALLOW_IPS: '10.0.0.0/33' }, /FORWARDED_ALLOW_IPS: "10.0.0.0\/33" is not a valid CIDR/],
    [{ CORS_ALLOW_ORIGIN: 'https://a.example/path' }, /CORS_ALLOW_ORIGIN: .*without a path/],
    [{ CORS_ALLOW_ORIGIN: 'null' }, /CORS_ALLOW_ORIGIN: "null" is never an allowed origin/],
    [{ CORS_ALLOW_ORIGIN: 'https://a.example;*' }, /cannot be combined/],
    [{ CORS_ALLOW_ORIGIN: 'app://desktop' }, /CORS_ALLOW_CUSTOM_SCHEME/],
    [{ HRIDAAI_SESSION_COOKIE_SAME_SITE: 'none' }, /HRIDAAI_SESSION_COOKIE_SAME_SITE: none requires/],
    [
      { HRIDAAI_SESSION_COOKIE_SAME_SITE: 'loose' },
      /HRIDAAI_SESSION_COOKIE_SAME_SITE: must be one of lax, strict, none/,
    ],
    [{ DATABASE_URL: 'mysql://x' }, /DATABASE_URL: must be sqlite/],
    [{ DATABASE_TYPE: 'sqlite+sqlcipher' }, /DATABASE_PASSWORD: is required when DATABASE_TYPE is sqlite\+sqlcipher/],
    [{ DATABASE_TYPE: 'postgresql' }, /DATABASE_TYPE: is postgresql but DATABASE_URL/],
    [
      { PASSWORD_VALIDATION_REGEX_PATTERN: '(' },
      /PASSWORD_VALIDATION_REGEX_PATTERN: is not a valid regular expression/,
    ],
    [{ HRIDAAI_ADMIN_EMAIL: 'admin@example.com' }, /must be set together/],
    [{ HRIDAAI_ADMIN_EMAIL: 'a@example.com', HRIDAAI_ADMIN_PASSWORD: 'x'.repeat(73) }, /longer than 72 bytes/],
    [
      { HRIDAAI_ADMIN_EMAIL: 'a@example.com', HRIDAAI_ADMIN_PASSWORD: 'weak', ENABLE_PASSWORD_VALIDATION: 'true' },
      /HRIDAAI_ADMIN_PASSWORD: does not match/,
    ],
    [{ HRIDAAI_SECRET_KEY: 'short' }, /HRIDAAI_SECRET_KEY: must be at least 16/],
    [{ REDIS_URL: 'http://x' }, /REDIS_URL: must be a redis/],
    [{ GLOBAL_LOG_LEVEL: 'LOUD' }, /GLOBAL_LOG_LEVEL: must be one of/],
    [{ LOG_FORMAT: 'xml' }, /LOG_FORMAT: must be one of text, json/],
    [{ HSTS: 'max-age=1\nX-Evil: 1' }, /HSTS: must not contain line breaks/],
  ];
  for (const [env, re] of cases) {
    it(`${JSON.stringify(env).slice(0, 80)} → ${re.source.slice(0, 50)}`, () => {
      expect(errorsOf(env)).toMatch(re);
    });
  }

  it('reports every invalid variable at once', () => {
    const msg = errorsOf({ PORT: 'x', ENABLE_SIGNUP: 'y', HSTS: 'z' });
    expect(msg).toContain('PORT:');
    expect(msg).toContain('ENABLE_SIGNUP:');
    expect(msg).toContain('HSTS:');
  });
});

describe('standard header syntax is accepted', () => {
  it.each([
    ['HSTS', 'max-age=31536000; includeSubDomains', 'max-age=31536000; includeSubDomains'],
    ['HSTS', 'max-age=31536000;includeSubDomains', 'max-age=31536000; includeSubDomains'],
    ['HSTS', 'max-age=63072000; includeSubDomains; preload', 'max-age=63072000; includeSubDomains; preload'],
    ['HSTS', 'MAX-AGE=10; INCLUDESUBDOMAINS', 'max-age=10; includeSubDomains'],
    ['XFRAME_OPTIONS', 'deny', 'DENY'],
    ['XFRAME_OPTIONS', 'SAMEORIGIN', 'SAMEORIGIN'],
    ['XCONTENT_TYPE', 'nosniff', 'nosniff'],
    ['REFERRER_POLICY', 'strict-origin-when-cross-origin', 'strict-origin-when-cross-origin'],
    ['REFERRER_POLICY', 'no-referrer, strict-origin-when-cross-origin', 'no-referrer, strict-origin-when-cross-origin'],
    ['PERMISSIONS_POLICY', 'camera=(),microphone=(),geolocation=()', 'camera=(),microphone=(),geolocation=()'],
    ['PERMISSIONS_POLICY', 'geolocation=(self "https://maps.example")', 'geolocation=(self "https://maps.example")'],
    [
      'CONTENT_SECURITY_POLICY',
      "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'",
      "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'",
    ],
    [
      'CONTENT_SECURITY_POLICY_REPORT_ONLY',
      "default-src 'self'; report-uri /csp-report",
      "default-src 'self'; report-uri /csp-report",
    ],
    ['CROSS_ORIGIN_EMBEDDER_POLICY', 'require-corp', 'require-corp'],
    ['CROSS_ORIGIN_OPENER_POLICY', 'same-origin', 'same-origin'],
    ['CROSS_ORIGIN_RESOURCE_POLICY', 'same-origin', 'same-origin'],
    [
      'REPORTING_ENDPOINTS',
      'default="https://your-report-collector.example/reports"',
      'default="https://your-report-collector.example/reports"',
    ],
  ] as const)('%s=%s', (name, value, expected) => {
    expect(loadConfig({ [name]: value })[name]).toBe(expected);
  });
});

describe('other parsing rules', () => {
  it('parses JWT_EXPIRES_IN units and -1', () => {
    expect(loadConfig({ JWT_EXPIRES_IN: '24h' }).JWT_EXPIRES_IN).toBe(86_400_000);
    expect(loadConfig({ JWT_EXPIRES_IN: '1h30m' }).JWT_EXPIRES_IN).toBe(5_400_000);
    expect(loadConfig({ JWT_EXPIRES_IN: '1500ms' }).JWT_EXPIRES_IN).toBe(1500);
    expect(loadConfig({ JWT_EXPIRES_IN: '2w' }).JWT_EXPIRES_IN).toBe(2 * 604_800_000);
    const never = loadConfig({ JWT_EXPIRES_IN: '-1' });
    expect(never.JWT_EXPIRES_IN).toBeNull();
    expect(never.warnings.join('\n')).toMatch(/JWT_EXPIRES_IN=-1/);
  });

  it('lets HRIDAAI_AUTH_COOKIE_* override HRIDAAI_SESSION_COOKIE_* for the auth cookie', () => {
    const c = loadConfig({
      HRIDAAI_SESSION_COOKIE_SECURE: 'true',
      HRIDAAI_SESSION_COOKIE_SAME_SITE: 'strict',
      HRIDAAI_AUTH_COOKIE_SAME_SITE: 'lax',
    });
    expect(c.sessionCookie).toEqual({ secure: true, sameSite: 'strict' });
    expect(c.authCookie).toEqual({ secure: true, sameSite: 'lax' });
  });

  it('accepts CORS origin lists and custom schemes', () => {
    const c = loadConfig({
      CORS_ALLOW_ORIGIN: 'https://chat.example.com;https://internal.example.com:8443;app://desktop',
      CORS_ALLOW_CUSTOM_SCHEME: 'app',
    });
    expect(c.cors.origins).toEqual(['https://chat.example.com', 'https://internal.example.com:8443', 'app://desktop']);
    expect(c.warnings.join('\n')).not.toMatch(/CORS_ALLOW_ORIGIN/);
  });

  it('accepts IPs and CIDRs in FORWARDED_ALLOW_IPS', () => {
    expect(loadConfig({ FORWARDED_ALLOW_IPS: '192.168.1.100, 10.0.0.0/8,::1,fd00::/8' }).FORWARDED_ALLOW_IPS).toEqual([
      '192.168.1.100',
      '10.0.0.0/8',
      '::1',
      'fd00::/8',
    ]);
  });

  it('warns on risky values', () => {
    const c = loadConfig({ ENV: 'prod', DEFAULT_USER_ROLE: 'user', FORWARDED_ALLOW_IPS: '*' });
    const w = c.warnings.join('\n');
    expect(w).toMatch(/insecure cookies/);
    expect(w).toMatch(/DEFAULT_USER_ROLE=user/);
    expect(w).toMatch(/FORWARDED_ALLOW_IPS is "\*"/);
  });

  it('reads postgresql URLs', () => {
    const c = loadConfig({ DATABASE_URL: 'postgresql://u:p@db:5432/hridaai' });
    expect(c.database.kind).toBe('postgresql');
    expect(loadConfig({ DATABASE_URL: 'postgres://u@db/x', DATABASE_TYPE: 'postgres' }).database.kind).toBe(
      'postgresql',
    );
  });

  it('declares an allowed-values text and a description for every setting', () => {
    for (const [name, def] of Object.entries(settings)) {
      expect(def.description.length, name).toBeGreaterThan(10);
      expect(def.allowed.length, name).toBeGreaterThan(0);
    }
  });
});
