/**
 * The SSRF corpus: every class of internal address, in every spelling, directly and behind
 * redirects, plus a rebinding resolver and non-http schemes. A loopback canary counts connections:
 * it must see none, and the socket layer must never be asked to dial a denied address.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getGlobalDispatcher, ProxyAgent, setGlobalDispatcher } from 'undici';
import { createSafeFetch, UrlBlockedError } from '../../server/platform/net/index.js';
import { FetchError } from '../../server/platform/net/errors.js';
import {
  FAKE_PUBLIC,
  FAKE_PUBLIC_2,
  netConfig,
  startAttacker,
  startCanary,
  testNet,
  type Attacker,
  type Canary,
  type TestNet,
} from './helpers.js';

let canary: Canary;
let attacker: Attacker;
let net: TestNet;
let rebindCalls = 0;

beforeAll(async () => {
  canary = await startCanary();
  attacker = await startAttacker();
  net = testNet(attacker.port, {
    'attacker.example': [FAKE_PUBLIC],
    'other.example': [FAKE_PUBLIC_2],
    'loop4.example': ['127.0.0.1'],
    'loop6.example': ['::1'],
    'ten.example': ['10.0.0.5'],
    'oneseventwo.example': ['172.16.3.4'],
    'oneninetwo.example': ['192.168.1.10'],
    'cgnat.example': ['100.64.1.1'],
    'linklocal.example': ['169.254.10.10'],
    'ula.example': ['fd12:3456::1'],
    'mapped.example': ['::ffff:127.0.0.1'],
    'compat.example': ['::127.0.0.1'],
    'nat64.example': ['64:ff9b::a9fe:a9fe'],
    'sixtofour.example': ['2002:a9fe:a9fe::1'],
    'meta.example': ['169.254.169.254'],
    'meta6.example': ['fd00:ec2::254'],
    'zero.example': ['0.0.0.0'],
    'multicast.example': ['239.1.1.1'],
    'zone.example': ['fe80::1%eth0'],
    'junk.example': ['not-an-ip'],
    'mixed.example': [FAKE_PUBLIC, '127.0.0.1'],
    'mixed6.example': [FAKE_PUBLIC, '::1'],
    'rebind.example': () => (++rebindCalls === 1 ? [FAKE_PUBLIC] : ['127.0.0.1']),
    localhost: ['127.0.0.1', '::1'],
    'metadata.google.internal': [FAKE_PUBLIC],
    'metadata.azure.com': [FAKE_PUBLIC],
  });
});

afterAll(async () => {
  await canary?.close();
  await attacker?.close();
});

function client(env: Record<string, string> = {}, extra: Parameters<typeof createSafeFetch>[1] = {}) {
  return createSafeFetch(netConfig(env), {
    resolver: net.resolver,
    connector: net.connector,
    timeoutMs: 3000,
    ...extra,
  });
}

const P = () => canary.port;

/** Every spelling of an internal target that must be refused (direct requests). */
function directCorpus(): string[] {
  const p = P();
  return [
    // loopback, IPv4 spellings
    `http://127.0.0.1:${p}/`,
    `http://127.1:${p}/`,
    `http://127.0.1:${p}/`,
    `http://2130706433:${p}/`,
    `http://0x7f000001:${p}/`,
    `http://0x7f.0x0.0x0.0x1:${p}/`,
    `http://0177.0.0.1:${p}/`,
    `http://0177.0000.0000.0001:${p}/`,
    `http://017700000001:${p}/`,
    `http://127.000.000.001:${p}/`,
    `http://0x7F.1:${p}/`,
    `http://127.0.0.1.:${p}/`,
    `http://127.0.0.2:${p}/`,
    `http://127.255.255.254:${p}/`,
    `https://127.0.0.1:${p}/`,
    // unspecified (reaches loopback on Linux)
    `http://0:${p}/`,
    `http://0.0.0.0:${p}/`,
    `http://[::]:${p}/`,
    // IPv6 loopback and IPv4-in-IPv6 forms
    `http://[::1]:${p}/`,
    `http://[0:0:0:0:0:0:0:1]:${p}/`,
    `http://[::ffff:127.0.0.1]:${p}/`,
    `http://[::ffff:7f00:1]:${p}/`,
    `http://[0:0:0:0:0:ffff:7f00:1]:${p}/`,
    `http://[::127.0.0.1]:${p}/`,
    `http://[::ffff:0:127.0.0.1]:${p}/`,
    `http://[64:ff9b::127.0.0.1]:${p}/`,
    `http://[64:ff9b::7f00:1]:${p}/`,
    `http://[2002:7f00:1::]:${p}/`,
    `http://[2001:0:4136:e378:8000:63bf:80ff:fffe]:${p}/`,
    `http://[fe80::1]:${p}/`,
    `http://[fe80::1%25lo]:${p}/`,
    // loopback names
    `http://localhost:${p}/`,
    `http://LOCALHOST:${p}/`,
    `http://localhost.:${p}/`,
    `http://app.localhost:${p}/`,
    `http://ⓛocalhost:${p}/`,
    // private, CGNAT, link-local, ULA, site-local, multicast, broadcast, reserved
    'http://10.0.0.1/',
    'http://10.255.255.255/',
    'http://172.16.0.1/',
    'http://172.31.255.255/',
    'http://192.168.0.1/',
    'http://3232235521/',
    'http://100.64.0.1/',
    'http://100.127.255.254/',
    'http://169.254.1.1/',
    'http://[fd00::1]/',
    'http://[fc00::1]/',
    'http://[fec0::1]/',
    'http://224.0.0.1/',
    'http://239.255.255.250/',
    'http://255.255.255.255/',
    'http://[ff02::1]/',
    'http://240.0.0.1/',
    'http://192.0.0.1/',
    'http://198.18.0.1/',
    'http://192.0.2.1/',
    'http://[2001:db8::1]/',
    // cloud metadata
    'http://169.254.169.254/latest/meta-data/',
    'http://0xa9fea9fe/',
    'http://2852039166/',
    'http://169.254.43518/',
    'http://[::ffff:169.254.169.254]/',
    'http://[::ffff:a9fe:a9fe]/',
    'http://[fd00:ec2::254]/',
    'http://100.100.100.200/',
    'http://168.63.129.16/',
    'http://169.254.170.2/v2/credentials',
    'http://metadata.google.internal/computeMetadata/v1/',
    'http://METADATA.GOOGLE.INTERNAL./computeMetadata/v1/',
    'http://metadata.azure.com/',
    'http://metadata/',
    // names whose resolution is internal (one lookup, every address checked)
    `http://loop4.example:${p}/`,
    `http://loop6.example:${p}/`,
    'http://ten.example/',
    'http://oneseventwo.example/',
    'http://oneninetwo.example/',
    'http://cgnat.example/',
    'http://linklocal.example/',
    'http://ula.example/',
    `http://mapped.example:${p}/`,
    `http://compat.example:${p}/`,
    'http://nat64.example/',
    'http://sixtofour.example/',
    'http://meta.example/',
    'http://meta6.example/',
    `http://zero.example:${p}/`,
    'http://multicast.example/',
    'http://zone.example/',
    'http://junk.example/',
    `http://mixed.example:${p}/`,
    `http://mixed6.example:${p}/`,
    // URL tricks
    `http://attacker.example@127.0.0.1:${p}/`,
    `http://127.0.0.1:${p}#@attacker.example/`,
    `http://user:pass@attacker.example/ok`,
    // non-http schemes
    'file:///etc/passwd',
    `gopher://127.0.0.1:${p}/_GET%20/`,
    `ftp://127.0.0.1:${p}/`,
    `dict://127.0.0.1:${p}/info`,
    'ldap://127.0.0.1/',
    'javascript:alert(1)',
    'data:text/html,<script>alert(1)</script>',
    `ws://127.0.0.1:${p}/`,
    `wss://attacker.example/`,
    'jar:http://attacker.example/x.jar!/',
    'view-source:http://attacker.example/ok',
    'not a url',
  ];
}

/** Internal targets used behind redirects. */
function redirectTargets(): string[] {
  const p = P();
  return [
    `http://127.0.0.1:${p}/`,
    `http://127.1:${p}/`,
    `http://2130706433:${p}/`,
    `http://0:${p}/`,
    `http://[::1]:${p}/`,
    `http://[::ffff:127.0.0.1]:${p}/`,
    `http://localhost:${p}/`,
    `http://loop4.example:${p}/`,
    `http://mixed.example:${p}/`,
    'http://10.0.0.1/',
    'http://192.168.0.1/',
    'http://100.64.0.1/',
    'http://[fd00::1]/',
    'http://169.254.169.254/latest/meta-data/',
    'http://[fd00:ec2::254]/',
    'http://metadata.google.internal/',
    'http://100.100.100.200/',
    'file:///etc/passwd',
    `gopher://127.0.0.1:${p}/_x`,
    'javascript:alert(1)',
  ];
}

describe('safe-fetch SSRF corpus', () => {
  it('has at least 60 direct attack URLs and 20 redirect targets', () => {
    expect(directCorpus().length).toBeGreaterThanOrEqual(60);
    expect(redirectTargets().length).toBeGreaterThanOrEqual(20);
  });

  it('positive control: with ENABLE_RAG_LOCAL_WEB_FETCH=true the canary is reachable (so it can detect a bypass)', async () => {
    const sf = client({ ENABLE_RAG_LOCAL_WEB_FETCH: 'true' });
    const before = canary.hits();
    const r = await sf.fetch(`http://127.1:${P()}/`);
    expect(await r.text()).toBe('canary');
    expect(canary.hits()).toBeGreaterThan(before);
    await sf.close();
  });

  it('refuses every direct attack URL: zero canary hits, nothing dialled', async () => {
    const sf = client();
    const before = canary.hits();
    net.dialed.length = 0;
    const results: { url: string; error: string }[] = [];
    for (const url of directCorpus()) {
      const err = await sf.fetch(url).then(
        () => null,
        (e: Error) => e,
      );
      results.push({ url, error: err ? `${err.name}:${(err as UrlBlockedError).rule}` : 'FETCHED' });
    }
    const notBlocked = results.filter((r) => !r.error.startsWith('UrlBlockedError'));
    expect(notBlocked).toEqual([]);
    expect(canary.hits()).toBe(before);
    expect(net.dialed).toEqual([]);
    await sf.close();
  });

  it('refuses metadata endpoints and special addresses even with ENABLE_RAG_LOCAL_WEB_FETCH=true', async () => {
    const sf = client({ ENABLE_RAG_LOCAL_WEB_FETCH: 'true' });
    net.dialed.length = 0;
    const before = canary.hits();
    for (const url of [
      'http://169.254.169.254/',
      'http://0xa9fea9fe/',
      'http://[::ffff:169.254.169.254]/',
      'http://[fd00:ec2::254]/',
      'http://[64:ff9b::a9fe:a9fe]/',
      'http://[2002:a9fe:a9fe::1]/',
      'http://100.100.100.200/',
      'http://metadata.google.internal/',
      'http://metadata.azure.com/',
      'http://meta.example/',
      'http://nat64.example/',
      'http://sixtofour.example/',
      `http://0.0.0.0:${P()}/`,
      `http://[::]:${P()}/`,
      'http://255.255.255.255/',
      'http://224.0.0.1/',
    ]) {
      await expect(sf.fetch(url), url).rejects.toBeInstanceOf(UrlBlockedError);
    }
    expect(net.dialed).toEqual([]);
    expect(canary.hits()).toBe(before);
    await sf.close();
  });

  it('does not follow redirects by default (AIOHTTP_CLIENT_ALLOW_REDIRECTS=false), whatever the target', async () => {
    const sf = client();
    const before = canary.hits();
    for (const to of [...redirectTargets(), 'http://attacker.example/ok']) {
      for (const code of [301, 302, 303, 307, 308]) {
        const err = await sf
          .fetch(`http://attacker.example/r?code=${code}&to=${encodeURIComponent(to)}`)
          .catch((e: Error) => e);
        expect(err, `${code} → ${to}`).toBeInstanceOf(UrlBlockedError);
        expect((err as UrlBlockedError).rule).toBe('redirect_not_allowed');
      }
    }
    expect(canary.hits()).toBe(before);
    expect(net.dialed.every((a) => a === FAKE_PUBLIC)).toBe(true);
    await sf.close();
  });

  it('with redirects allowed, re-checks every hop: internal targets refused, zero canary hits', async () => {
    const sf = client({ AIOHTTP_CLIENT_ALLOW_REDIRECTS: 'true' });
    net.dialed.length = 0;
    const before = canary.hits();
    for (const to of redirectTargets()) {
      for (const code of [302, 307]) {
        const direct = `http://attacker.example/r?code=${code}&to=${encodeURIComponent(to)}`;
        // and a two-hop chain: allowed hop first, then the internal target
        const chained = `http://attacker.example/r?to=${encodeURIComponent(direct)}`;
        for (const url of [direct, chained]) {
          const err = await sf.fetch(url, { method: 'POST', body: 'x' }).catch((e: Error) => e);
          expect(err, `${url}`).toBeInstanceOf(UrlBlockedError);
        }
      }
    }
    expect(canary.hits()).toBe(before);
    expect(net.dialed.filter((a) => a !== FAKE_PUBLIC)).toEqual([]);
    await sf.close();
  });

  it('with redirects allowed, follows a public hop and stops at the hop limit', async () => {
    const sf = client({ AIOHTTP_CLIENT_ALLOW_REDIRECTS: 'true' });
    const r = await sf.fetch(`http://attacker.example/r?to=${encodeURIComponent('/ok')}`);
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('ok');
    expect(r.url).toBe('http://attacker.example/ok');
    expect(r.redirects).toEqual(['http://attacker.example/ok']);
    const loop = await sf.fetch('http://attacker.example/loop').catch((e: Error) => e);
    expect(loop).toBeInstanceOf(FetchError);
    expect((loop as FetchError).reason).toBe('too_many_redirects');
    await sf.close();
  });

  it('drops credentials when a redirect changes origin', async () => {
    const sf = client({ AIOHTTP_CLIENT_ALLOW_REDIRECTS: 'true' }, { resolver: net.resolver });
    attacker.requests.length = 0;
    const to = `http://attacker.example:${80}/ok`;
    await (
      await sf.fetch(`http://attacker.example:8080/r?to=${encodeURIComponent(to)}`, {
        headers: { authorization: 'Bearer secret', cookie: 'a=b' },
      })
    ).text();
    expect(attacker.requests[0]!.headers.authorization).toBe('Bearer secret');
    expect(attacker.requests[1]!.headers.authorization).toBeUndefined();
    expect(attacker.requests[1]!.headers.cookie).toBeUndefined();
    await sf.close();
  });

  it('DNS rebinding: one lookup per connection, and the socket goes to the checked address', async () => {
    const sf = client();
    rebindCalls = 0;
    net.dialed.length = 0;
    const before = canary.hits();
    const r = await sf.fetch('http://rebind.example/ok');
    expect(await r.text()).toBe('ok');
    expect(rebindCalls).toBe(1);
    expect(net.dialed).toEqual([FAKE_PUBLIC]);
    await sf.close();
    // a new connection looks up again, sees the loopback answer and refuses it
    const sf2 = client();
    await expect(sf2.fetch(`http://rebind.example:${P()}/ok`)).rejects.toBeInstanceOf(UrlBlockedError);
    expect(rebindCalls).toBe(2);
    expect(canary.hits()).toBe(before);
    expect(net.dialed).toEqual([FAKE_PUBLIC]);
    await sf2.close();
  });

  it('check() (used by the Playwright loader) applies the same rules without fetching', async () => {
    const sf = client();
    await expect(sf.check(`http://loop4.example:${P()}/`)).rejects.toBeInstanceOf(UrlBlockedError);
    await expect(sf.check('http://[::ffff:169.254.169.254]/')).rejects.toBeInstanceOf(UrlBlockedError);
    const ok = await sf.check('http://attacker.example/ok');
    expect(ok.addresses).toEqual([FAKE_PUBLIC]);
    await sf.close();
  });

  it('ignores HTTP_PROXY / HTTPS_PROXY / ALL_PROXY and the global dispatcher', async () => {
    const saved = { ...process.env };
    const savedDispatcher = getGlobalDispatcher();
    const proxyUrl = `http://127.0.0.1:${P()}`;
    process.env.HTTP_PROXY = proxyUrl;
    process.env.HTTPS_PROXY = proxyUrl;
    process.env.ALL_PROXY = proxyUrl;
    process.env.http_proxy = proxyUrl;
    process.env.NO_PROXY = '';
    setGlobalDispatcher(new ProxyAgent(proxyUrl));
    try {
      const before = canary.hits();
      const sf = client();
      const r = await sf.fetch('http://attacker.example/ok');
      expect(await r.text()).toBe('ok');
      await expect(sf.fetch(`http://127.0.0.1:${P()}/`)).rejects.toBeInstanceOf(UrlBlockedError);
      expect(canary.hits()).toBe(before);
      await sf.close();
    } finally {
      setGlobalDispatcher(savedDispatcher);
      for (const k of ['HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'http_proxy', 'NO_PROXY']) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
  });
});

describe('safe-fetch limits', () => {
  it('caps the body (declared and undeclared length) and the decompressed size', async () => {
    const sf = client();
    const declared = await sf.fetch('http://attacker.example/big?n=3000', { maxBytes: 2000 }).catch((e: Error) => e);
    expect((declared as FetchError).reason).toBe('too_large');
    const chunked = await sf.fetch('http://attacker.example/big?n=300000&nolength=1', { maxBytes: 2000 });
    const err = await chunked.buffer().catch((e: Error) => e);
    expect((err as FetchError).reason).toBe('too_large');
    const bomb = await sf.fetch('http://attacker.example/bomb', { maxBytes: 1024 * 1024 });
    const bombErr = await bomb.text().catch((e: Error) => e);
    expect(bombErr).toBeInstanceOf(FetchError);
    expect((bombErr as FetchError).reason).toBe('too_large');
    const fine = await sf.fetch('http://attacker.example/big?n=2000', { maxBytes: 2000 });
    expect((await fine.buffer()).length).toBe(2000);
    await sf.close();
  });

  it('gives up after the time limit', async () => {
    const sf = client();
    const t0 = Date.now();
    const err = await sf.fetch('http://attacker.example/slow', { timeoutMs: 300 }).catch((e: Error) => e);
    expect((err as FetchError).reason).toBe('timeout');
    expect(Date.now() - t0).toBeLessThan(3000);
    await sf.close();
  });
});

describe('WEB_FETCH_FILTER_LIST and OFFLINE_MODE', () => {
  it('! entries block by name suffix and by CIDR on the resolved address', async () => {
    const sf = client({ WEB_FETCH_FILTER_LIST: '!example, !93.184.216.0/24' });
    const e1 = await sf.fetch('http://attacker.example/ok').catch((e: Error) => e);
    expect((e1 as UrlBlockedError).rule).toBe('filter_list');
    expect((e1 as UrlBlockedError).message).toContain('WEB_FETCH_FILTER_LIST');
    await sf.close();
    const sf2 = client({ WEB_FETCH_FILTER_LIST: '!93.184.216.0/24' });
    const e2 = await sf2.fetch('http://attacker.example/ok').catch((e: Error) => e);
    expect((e2 as UrlBlockedError).rule).toBe('filter_list');
    await sf2.close();
  });

  it('plain entries make an allowlist; an allow entry never unblocks a private address', async () => {
    const sf = client({ WEB_FETCH_FILTER_LIST: 'attacker.example' });
    expect(await (await sf.fetch('http://attacker.example/ok')).text()).toBe('ok');
    const other = await sf.fetch('http://other.example/ok').catch((e: Error) => e);
    expect((other as UrlBlockedError).rule).toBe('filter_list');
    await sf.close();
    const sf2 = client({ WEB_FETCH_FILTER_LIST: `127.0.0.1,loop4.example` });
    await expect(sf2.fetch(`http://127.0.0.1:${P()}/`)).rejects.toBeInstanceOf(UrlBlockedError);
    await expect(sf2.fetch(`http://loop4.example:${P()}/`)).rejects.toBeInstanceOf(UrlBlockedError);
    await sf2.close();
    // with local fetch on, the allowlist narrows it to the listed host
    const sf3 = client({ WEB_FETCH_FILTER_LIST: 'loop4.example', ENABLE_RAG_LOCAL_WEB_FETCH: 'true' });
    expect(await (await sf3.fetch(`http://loop4.example:${P()}/`)).text()).toBe('canary');
    await expect(sf3.fetch(`http://127.0.0.1:${P()}/`)).rejects.toBeInstanceOf(UrlBlockedError);
    await sf3.close();
  });

  it('rejects a malformed list at start with the variable name', () => {
    expect(() => netConfig({ WEB_FETCH_FILTER_LIST: '!10.0.0.0/99' })).toThrow(/WEB_FETCH_FILTER_LIST/);
    expect(() => netConfig({ WEB_FETCH_FILTER_LIST: 'bad host!' })).toThrow(/WEB_FETCH_FILTER_LIST/);
  });

  it('OFFLINE_MODE refuses public addresses', async () => {
    const sf = client({ OFFLINE_MODE: 'true' });
    const e = await sf.fetch('http://attacker.example/ok').catch((x: Error) => x);
    expect((e as UrlBlockedError).rule).toBe('offline_mode');
    await sf.close();
  });
});
