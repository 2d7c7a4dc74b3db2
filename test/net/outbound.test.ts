import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOutboundAgent, outboundTls, UrlBlockedError } from '../../server/platform/net/index.js';
import { FAKE_PUBLIC, netConfig, startAttacker, startCanary, testNet, type Attacker, type Canary } from './helpers.js';

describe('outbound agent for admin-configured connections', () => {
  let canary: Canary;
  let attacker: Attacker;
  beforeAll(async () => {
    canary = await startCanary();
    attacker = await startAttacker();
  });
  afterAll(async () => {
    await canary?.close();
    await attacker?.close();
  });

  it('reaches private addresses (a local model server) but never metadata endpoints', async () => {
    const net = testNet(attacker.port, { 'imds.example': ['169.254.169.254'] });
    const agent = createOutboundAgent(netConfig(), 'model', { resolver: net.resolver });
    const r = await request(`http://127.0.0.1:${canary.port}/v1/models`, { dispatcher: agent });
    expect(await r.body.text()).toBe('canary');
    for (const u of [
      'http://169.254.169.254/latest/',
      'http://[fd00:ec2::254]/',
      'http://imds.example/',
      'http://0.0.0.0:1/',
    ]) {
      const err = await request(u, { dispatcher: agent }).catch((e: Error) => e);
      expect(err, u).toBeInstanceOf(UrlBlockedError);
    }
    await agent.close();
  });

  it('OFFLINE_MODE refuses public addresses; proxy variables are ignored', async () => {
    const net = testNet(attacker.port, { 'api.example': [FAKE_PUBLIC] });
    const offline = createOutboundAgent(netConfig({ OFFLINE_MODE: 'true' }), 'model', net);
    const e = await request('http://api.example/v1/models', { dispatcher: offline }).catch((x: Error) => x);
    expect((e as UrlBlockedError).rule).toBe('offline_mode');
    await offline.close();
    process.env.HTTP_PROXY = `http://127.0.0.1:${canary.port}`;
    try {
      const before = canary.hits();
      const online = createOutboundAgent(netConfig(), 'model', net);
      const r = await request('http://api.example/ok', { dispatcher: online });
      expect(await r.body.text()).toBe('ok');
      expect(canary.hits()).toBe(before);
      await online.close();
    } finally {
      delete process.env.HTTP_PROXY;
    }
  });

  it('maps each purpose to its TLS setting', () => {
    const c = netConfig({
      AIOHTTP_CLIENT_SESSION_SSL: 'false',
      AIOHTTP_CLIENT_SESSION_TOOL_SERVER_SSL: 'true',
      ENABLE_WEB_LOADER_SSL_VERIFICATION: 'false',
      REQUESTS_VERIFY: 'true',
    });
    expect(outboundTls(c, 'model').rejectUnauthorized).toBe(false);
    expect(outboundTls(c, 'embeddings').rejectUnauthorized).toBe(false);
    expect(outboundTls(c, 'tool_server').rejectUnauthorized).toBe(true);
    expect(outboundTls(c, 'web_loader').rejectUnauthorized).toBe(false);
    expect(outboundTls(c, 'general').rejectUnauthorized).toBe(true);
    expect(outboundTls(netConfig(), 'web_loader').rejectUnauthorized).toBe(true);
  });
});
