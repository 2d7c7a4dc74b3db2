import { afterAll, beforeAll, expect, it } from 'vitest';
import { gatewayServices } from '../../server/modules/gateway/services.js';
import type { UsageRow } from '../../server/modules/gateway/usage.js';
import { createTestApp, describeMatrix, matrix, type TestApp } from '../harness.js';

describeMatrix('usage ledger writes', matrix(), (b) => {
  let app: TestApp;
  beforeAll(async () => {
    app = await createTestApp(b);
  });
  afterAll(async () => app?.close());

  const row = (i: number): UsageRow => ({
    created_at: 1_700_000_000_000 + i,
    request_id: `req-${i}`,
    route: i % 2 ? 'embeddings' : 'chat',
    user_id: `user-${i}`,
    actor_id: i % 3 ? null : `actor-${i}`,
    key_id: `key-${i}`,
    model_id: `model-${i}`,
    base_model_id: `base-${i}`,
    connection_id: `conn-${i}`,
    prompt_tokens: 1000 + i,
    completion_tokens: 2000 + i,
    total_tokens: 3000 + i,
    usage_source: i % 2 ? 'estimated' : 'upstream',
    status: i % 3 ? 'completed' : 'aborted',
    http_status: 200 + (i % 5),
    stream: (i % 2) as 0 | 1,
    duration_ms: 10 + i,
    ttft_ms: i % 4 ? 5 + i : null,
  });

  it('stores every column of every row, across batch sizes (200, then powers of two)', async () => {
    const usage = gatewayServices(app.ctx).usage;
    const n = 200 + 128 + 8 + 2 + 1; // 339: every batch size path at least once
    for (let i = 0; i < n; i++) usage.record(row(i));
    await usage.flush();
    const stored = await app.ctx.db
      .selectFrom('gateway_usage')
      .selectAll()
      .where('request_id', 'like', 'req-%')
      .orderBy('created_at')
      .execute();
    expect(stored).toHaveLength(n);
    stored.forEach((s, i) => {
      const { id, ...rest } = s;
      expect(rest).toEqual(row(i));
      // Time-ordered ids: UUID version 7 layout whose first 48 bits are created_at.
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBe(row(i).created_at);
    });
    expect(new Set(stored.map((s) => s.id)).size).toBe(n);
  });
});
