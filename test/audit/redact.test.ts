import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  REDACTED,
  redactJsonText,
  cutUtf8,
  isSecretKey,
  maskValue,
  redactHeaders,
  redactToJson,
  redactUrl,
} from '../../server/platform/audit/redact.js';
import { pathMatcher } from '../../server/platform/audit/service.js';
import { parseByteSize, parsePathList } from '../../server/config/settings/audit.js';

const API_KEY = 'sk-' + 'A1b2C3d4E5f6G7h8I9j0K1l2';
const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEyMyJ9.c2lnbmF0dXJlLXZhbHVlLWhlcmU';

describe('audit redaction rules', () => {
  it('names every secret key of the rules and leaves ordinary keys alone', () => {
    for (const k of [
      'password',
      'new_password',
      'current_password',
      'Password',
      'token',
      'access_token',
      'refresh_token',
      'id_token',
      'tokenValue',
      'secret',
      'client_secret',
      'clientSecret',
      'api_key',
      'openai_api_key',
      'x-api-key',
      'private_key',
      'encryption_key',
      'privateKey',
      'apiKey',
      'Authorization',
      'cookie',
      'set-cookie',
    ])
      expect(isSecretKey(k), k).toBe(true);
    for (const k of ['name', 'email', 'role', 'key', 'keyboard', 'monkey', 'id', 'model', 'messages'])
      expect(isSecretKey(k), k).toBe(false);
  });

  it('redacts by structure at any depth, inside arrays and nested arrays', () => {
    const input = {
      email: 'a@example.com',
      password: 'hunter2-top',
      new_password: 'hunter3-top',
      profile: { settings: { client_secret: 'cs-1', nested: [{ access_token: 'tok-1' }, { ok: 1 }] } },
      connections: [
        { url: 'http://127.0.0.1', api_key: 'ak-1', headers: { Authorization: 'Basic abc' } },
        [[{ webhook_signing_key: 'wk-1' }]],
      ],
      note: `my key is ${API_KEY} and my session is ${JWT}`,
      usage: { prompt_tokens: 12, total_tokens: 30 },
    };
    const masked = maskValue(input) as typeof input;
    const { text, truncated } = redactToJson(input, 1_000_000);
    expect(truncated).toBe(false);
    expect(JSON.parse(text)).toEqual(masked);
    for (const secret of ['hunter2-top', 'hunter3-top', 'cs-1', 'tok-1', 'ak-1', 'Basic abc', 'wk-1', API_KEY, JWT])
      expect(text, secret).not.toContain(secret);
    expect(masked.email).toBe('a@example.com');
    expect(masked.profile.settings.nested[0]).toEqual({ access_token: REDACTED });
    expect(masked.profile.settings.nested[1]).toEqual({ ok: 1 });
    expect((masked.connections[1] as unknown as { webhook_signing_key: string }[][])[0]![0]).toEqual({
      webhook_signing_key: REDACTED,
    });
    expect(masked.note).toBe(`my key is ${REDACTED} and my session is ${REDACTED}`);
    // token counts are usage figures, not credentials
    expect(masked.usage).toEqual({ prompt_tokens: 12, total_tokens: 30 });
  });

  it('redacts a secret key whose value is an object or array as a whole', () => {
    const { text } = redactToJson({ secret: { a: 1, b: ['x'] }, tokens: ['t1', 't2'] }, 10_000);
    expect(JSON.parse(text)).toEqual({ secret: REDACTED, tokens: REDACTED });
  });

  it('cuts at the byte limit after redaction, on a character boundary, and says so', () => {
    const big = {
      password: 'p'.repeat(5000),
      items: Array.from({ length: 2000 }, (_, i) => ({ i, v: 'é'.repeat(3) })),
    };
    const { text, truncated } = redactToJson(big, 2048);
    expect(truncated).toBe(true);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(2048);
    expect(text.startsWith(`{"password":"${REDACTED}"`)).toBe(true);
    expect(text).not.toContain('\uFFFD');
    expect(cutUtf8('ééé', 5)).toBe('éé');
    const small = redactToJson({ a: 1 }, 2048);
    expect(small).toEqual({ text: '{"a":1}', truncated: false });
  });

  it('redacts secret query values by name and secret-looking values anywhere in the URL', () => {
    expect(redactUrl('/api/v1/x?token=abc&name=bob')).toBe(`/api/v1/x?token=${REDACTED}&name=bob`);
    expect(redactUrl('/cb?code=xyz&state=s1')).toBe(`/cb?code=${REDACTED}&state=s1`);
    expect(redactUrl('/a?api_key=k&client_secret=s&x_key=1&access%5Ftoken=t')).toBe(
      `/a?api_key=${REDACTED}&client_secret=${REDACTED}&x_key=${REDACTED}&access%5Ftoken=${REDACTED}`,
    );
    expect(redactUrl(`/a?q=${API_KEY}`)).toBe(`/a?q=${encodeURIComponent(REDACTED)}`);
    expect(redactUrl(`/share/${JWT}`)).toBe(`/share/${REDACTED}`);
    expect(redactUrl('/plain/path')).toBe('/plain/path');
  });

  it('redacts the Authorization and Cookie headers and secret-named headers', () => {
    const h = redactHeaders({
      authorization: `Bearer ${JWT}`,
      cookie: 'token=abc',
      'x-api-key': API_KEY,
      'user-agent': 'vitest',
      'x-forwarded-for': '203.0.113.9',
    });
    expect(h).toEqual({
      authorization: REDACTED,
      cookie: REDACTED,
      'x-api-key': REDACTED,
      'user-agent': 'vitest',
      'x-forwarded-for': '203.0.113.9',
    });
  });
});

describe('audit redaction straight from JSON text (response bodies)', () => {
  it('gives exactly what redacting the parsed value gives (property)', () => {
    const keys = fc.constantFrom(
      'password',
      'new_password',
      'api_key',
      'x_key',
      'token',
      'max_tokens',
      'name',
      'id',
      'key',
      'a',
    );
    const leaf = fc.oneof(
      fc.string(),
      fc.integer(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.boolean(),
      fc.constant(null),
      fc.constant(API_KEY),
      fc.constant(`Bearer ${JWT}`),
    );
    const json = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: 'small' }, leaf, tie('arr'), tie('obj')),
      arr: fc.array(tie('value'), { maxLength: 4 }),
      obj: fc.dictionary(fc.oneof(keys, fc.string()), tie('value'), { maxKeys: 4 }),
    })).value;
    fc.assert(
      fc.property(json, fc.boolean(), (v, pretty) => {
        const text = JSON.stringify(v, null, pretty ? 2 : undefined);
        const fromText = redactJsonText(text, 10_000_000);
        const fromValue = redactToJson(JSON.parse(text), 10_000_000);
        expect(fromText).not.toBeNull();
        expect(JSON.parse(fromText!.text)).toEqual(JSON.parse(fromValue.text));
      }),
      { numRuns: 500 },
    );
  });

  it('sees through escaped keys, skips secret values whole and refuses non-JSON', () => {
    const r = redactJsonText('{"\\u0070assword":"p1","n":{"client_secret":{"a":["}",{"b":"]"}]}},"ok":1}', 1000);
    expect(r).not.toBeNull();
    expect(r!.text).not.toContain('p1');
    expect(JSON.parse(r!.text)).toEqual({ password: REDACTED, n: { client_secret: REDACTED }, ok: 1 });
    for (const bad of ['{', '{"a":}', '[1,]', 'nope', '{"a":1}x', '"unterminated'])
      expect(redactJsonText(bad, 1000), bad).toBeNull();
  });

  it('stops at the limit: a huge body costs no more than the limit', () => {
    const big = JSON.stringify({ items: Array.from({ length: 100_000 }, (_, i) => ({ i, token: `t${i}` })) });
    const r = redactJsonText(big, 2048)!;
    expect(r.truncated).toBe(true);
    expect(Buffer.byteLength(r.text)).toBeLessThanOrEqual(2048);
    expect(r.text).not.toMatch(/"t\d+"/);
  });
});

describe('audit path filters', () => {
  it('parses the documented forms', () => {
    expect(parsePathList(undefined, '/chats,/chat,/folders')).toEqual(['chats', 'chat', 'folders']);
    expect(parsePathList('auths, users ,configs', '')).toEqual(['auths', 'users', 'configs']);
    expect(() => parsePathList('a b', '')).toThrow();
    expect(parseByteSize('10MB')).toBe(10 * 1024 * 1024);
    expect(parseByteSize('512kb')).toBe(512 * 1024);
    expect(parseByteSize('4096')).toBe(4096);
    expect(() => parseByteSize('ten')).toThrow();
    expect(() => parseByteSize('10')).toThrow();
  });

  it('matches /api/<p> and /api/v1/<p> at a word boundary, case-insensitively', () => {
    const m = pathMatcher(['chats', 'chat', 'folders']);
    expect(m('/api/v1/chats')).toBe(true);
    expect(m('/api/v1/chats/:id')).toBe(true);
    expect(m('/api/chat/completions')).toBe(true);
    expect(m('/api/v1/chat/completions')).toBe(true);
    expect(m('/API/V1/Folders/1')).toBe(true);
    expect(m('/api/v1/chatter')).toBe(false);
    expect(m('/api/v1/users')).toBe(false);
    expect(m('/api/v2/chats')).toBe(false);
    expect(m('/chats')).toBe(false);
    const only = pathMatcher(['chat']);
    expect(only('/api/v1/chats')).toBe(false);
    const root = pathMatcher(['api/v1/auths/sessions']);
    expect(root('/api/v1/auths/sessions/:id')).toBe(true);
    expect(root('/api/v1/auths/signin')).toBe(false);
    expect(pathMatcher([])('/api/v1/users')).toBe(false);
  });
});
