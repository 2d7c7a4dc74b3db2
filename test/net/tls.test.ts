import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSafeFetch } from '../../server/platform/net/index.js';
import { FetchError } from '../../server/platform/net/errors.js';
import { netConfig } from './helpers.js';

/** A self-signed HTTPS server on loopback (openssl makes the certificate). */
describe('outbound TLS verification', () => {
  let server: https.Server;
  let port: number;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'hridaai-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=selfsigned.example',
        '-keyout',
        path.join(dir, 'key.pem'),
        '-out',
        path.join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    server = https.createServer(
      { key: readFileSync(path.join(dir, 'key.pem')), cert: readFileSync(path.join(dir, 'cert.pem')) },
      (_q, s) => s.end('tls ok'),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((r) => server?.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a self-signed certificate by default and accepts it with ENABLE_WEB_LOADER_SSL_VERIFICATION=false', async () => {
    const strict = createSafeFetch(netConfig({ ENABLE_RAG_LOCAL_WEB_FETCH: 'true' }), { timeoutMs: 5000 });
    const err = await strict.fetch(`https://127.0.0.1:${port}/`).catch((e: Error) => e);
    expect(err).toBeInstanceOf(FetchError);
    await strict.close();
    const lax = createSafeFetch(
      netConfig({ ENABLE_RAG_LOCAL_WEB_FETCH: 'true', ENABLE_WEB_LOADER_SSL_VERIFICATION: 'false' }),
      { timeoutMs: 5000 },
    );
    expect(await (await lax.fetch(`https://127.0.0.1:${port}/`)).text()).toBe('tls ok');
    await lax.close();
  });
});
