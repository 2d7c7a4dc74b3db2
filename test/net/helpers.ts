/**
 * Loopback fixtures for the outbound-request tests: a canary that counts every connection (it must
 * stay at zero for blocked URLs), an "attacker" server reached through a fake public address, and
 * a resolver that never touches DNS.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import { buildConnector } from 'undici';
import type { Config } from '../../server/config/index.js';
import { loadConfig } from '../../server/config/index.js';

/** A public address (example.com's old one) that the test connector maps to the loopback attacker server. */
export const FAKE_PUBLIC = '93.184.216.34';
export const FAKE_PUBLIC_2 = '93.184.216.35';

export interface Canary {
  port: number;
  hits: () => number;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 and [::1] (same port when possible); counts TCP connections, not requests. */
export async function startCanary(): Promise<Canary> {
  let hits = 0;
  const handler: http.RequestListener = (_req, res) => res.end('canary');
  const v4 = http.createServer(handler);
  v4.on('connection', () => hits++);
  await new Promise<void>((r) => v4.listen(0, '127.0.0.1', r));
  const port = (v4.address() as AddressInfo).port;
  const v6 = http.createServer(handler);
  v6.on('connection', () => hits++);
  await new Promise<void>((resolve) => {
    v6.once('error', () => resolve()); // no IPv6 loopback: the v4 canary still counts
    v6.listen(port, '::1', () => resolve());
  });
  return {
    port,
    hits: () => hits,
    async close() {
      v4.closeAllConnections();
      v6.closeAllConnections();
      await new Promise((r) => v4.close(r));
      await new Promise((r) => (v6.listening ? v6.close(r) : r(undefined)));
    },
  };
}

export interface Attacker {
  port: number;
  requests: { method: string; url: string; headers: http.IncomingHttpHeaders }[];
  close(): Promise<void>;
}

/**
 * The "internet" server: `/r?to=URL&code=302` redirects, `/ok` answers, `/big?n=` sends n bytes,
 * `/bomb` sends a gzip bomb, `/slow` never answers, `/loop` redirects to itself, `/page` is HTML.
 */
export async function startAttacker(): Promise<Attacker> {
  const requests: Attacker['requests'] = [];
  const bomb = zlib.gzipSync(Buffer.alloc(20 * 1024 * 1024));
  const srv = http.createServer((req, res) => {
    requests.push({ method: req.method!, url: req.url!, headers: req.headers });
    const u = new URL(req.url!, 'http://x');
    switch (u.pathname) {
      case '/r':
        res.writeHead(Number(u.searchParams.get('code') ?? 302), { location: u.searchParams.get('to') ?? '/' });
        return res.end();
      case '/loop':
        res.writeHead(302, { location: '/loop' });
        return res.end();
      case '/big': {
        const n = Number(u.searchParams.get('n'));
        res.writeHead(200, u.searchParams.get('nolength') ? {} : { 'content-length': String(n) });
        return res.end(Buffer.alloc(n, 'a'));
      }
      case '/bomb':
        res.writeHead(200, { 'content-encoding': 'gzip', 'content-type': 'text/plain' });
        return res.end(bomb);
      case '/slow':
        return; // never answers
      case '/page':
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        return res.end(
          u.searchParams.get('html') ?? '<html><head><title>T</title></head><body><p>Hello page</p></body></html>',
        );
      default:
        res.writeHead(200, { 'content-type': 'text/plain' });
        return res.end('ok');
    }
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as AddressInfo).port,
    requests,
    async close() {
      srv.closeAllConnections();
      await new Promise((r) => srv.close(r));
    },
  };
}

export interface TestNet {
  resolver: (host: string) => Promise<string[]>;
  connector: buildConnector.connector;
  /** Every address a socket was opened to (after the policy allowed it). */
  dialed: string[];
  resolverCalls: Map<string, number>;
}

/**
 * Resolver: a fixed table (no DNS). Connector: the fake public addresses go to the attacker server
 * on loopback; loopback addresses are dialled for real (so a bypass would hit the canary); anything
 * else is refused without a packet leaving the machine.
 */
export function testNet(attackerPort: number, names: Record<string, string[] | (() => string[])>): TestNet {
  const real = buildConnector({ timeout: 2000 });
  const dialed: string[] = [];
  const resolverCalls = new Map<string, number>();
  return {
    dialed,
    resolverCalls,
    async resolver(host) {
      resolverCalls.set(host, (resolverCalls.get(host) ?? 0) + 1);
      const v = names[host];
      if (!v) throw Object.assign(new Error(`ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
      return typeof v === 'function' ? v() : v;
    },
    connector(opts, cb) {
      dialed.push(opts.hostname);
      if (opts.hostname === FAKE_PUBLIC || opts.hostname === FAKE_PUBLIC_2)
        return real({ ...opts, hostname: '127.0.0.1', port: String(attackerPort), protocol: 'http:' }, cb);
      if (/^127\./.test(opts.hostname) || opts.hostname === '::1') return real(opts, cb);
      cb(Object.assign(new Error('test network: non-loopback address refused'), { code: 'ECONNREFUSED' }), null);
    },
  };
}

export function netConfig(env: Record<string, string> = {}): Config {
  return loadConfig({ ENV: 'test', DATA_DIR: '/tmp/hridaai-net-test', ...env });
}
