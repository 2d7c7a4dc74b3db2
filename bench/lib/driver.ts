/**
 * Load drivers on undici: sequential latency (one client, one keep-alive connection), closed-loop
 * throughput (N clients), and an SSE driver that measures time to first token, the gaps between
 * chunks and whether every frame arrived.
 */
import { Client, Pool } from 'undici';

export interface Stats {
  n: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export function stats(samples: number[]): Stats {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? 0;
  const r = (x: number) => Math.round(x * 1000) / 1000;
  return {
    n: s.length,
    mean: r(s.reduce((a, b) => a + b, 0) / Math.max(1, s.length)),
    p50: r(q(50)),
    p90: r(q(90)),
    p99: r(q(99)),
    max: r(s[s.length - 1] ?? 0),
  };
}

export interface Target {
  name: string;
  origin: string;
  path: string;
  headers: Record<string, string>;
}

function body(model: string, stream: boolean): string {
  return JSON.stringify({
    model,
    stream,
    messages: [{ role: 'user', content: 'Say hello to the benchmark, please.' }],
  });
}

/** One client, one connection, requests back to back: the latency a single caller sees. */
export async function sequential(t: Target, model: string, n: number, warmup: number): Promise<number[]> {
  const c = new Client(t.origin, { keepAliveTimeout: 60_000, pipelining: 1 });
  const payload = body(model, false);
  const out: number[] = [];
  try {
    for (let i = 0; i < n + warmup; i++) {
      const t0 = performance.now();
      const res = await c.request({
        path: t.path,
        method: 'POST',
        headers: { ...t.headers, 'content-type': 'application/json' },
        body: payload,
      });
      await res.body.arrayBuffer();
      if (res.statusCode !== 200) throw new Error(`${t.name}: HTTP ${res.statusCode}`);
      if (i >= warmup) out.push(performance.now() - t0);
    }
  } finally {
    await c.close();
  }
  return out;
}

/** `clients` closed loops for `ms`: completed requests, errors, elapsed time and round trips. */
export async function throughput(
  t: Target,
  model: string,
  clients: number,
  ms: number,
): Promise<{ done: number; errors: number; elapsedMs: number; samples: number[] }> {
  const pool = new Pool(t.origin, { connections: clients, keepAliveTimeout: 60_000, pipelining: 1 });
  const payload = body(model, false);
  const samples: number[] = [];
  let done = 0;
  let errors = 0;
  const end = performance.now() + ms;
  const worker = async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        const res = await pool.request({
          path: t.path,
          method: 'POST',
          headers: { ...t.headers, 'content-type': 'application/json' },
          body: payload,
        });
        await res.body.arrayBuffer();
        if (res.statusCode === 200) {
          done++;
          samples.push(performance.now() - t0);
        } else errors++;
      } catch {
        errors++;
      }
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: clients }, worker));
  const elapsedMs = performance.now() - start;
  await pool.close();
  return { done, errors, elapsedMs, samples };
}

export interface StreamResult {
  ok: boolean;
  status: number;
  ttft: number;
  gaps: number[];
  frames: number;
  done: boolean;
  error?: string;
}

/** Runs `streams` SSE requests at once; each must deliver `expect` content frames and [DONE]. */
export async function sse(t: Target, model: string, streams: number, expect: number): Promise<StreamResult[]> {
  const pool = new Pool(t.origin, {
    connections: streams,
    keepAliveTimeout: 60_000,
    pipelining: 1,
    headersTimeout: 120_000,
    bodyTimeout: 120_000,
  });
  const payload = body(model, true);
  const one = async (): Promise<StreamResult> => {
    const t0 = performance.now();
    const r: StreamResult = { ok: false, status: 0, ttft: -1, gaps: [], frames: 0, done: false };
    try {
      const res = await pool.request({
        path: t.path,
        method: 'POST',
        headers: { ...t.headers, 'content-type': 'application/json', accept: 'text/event-stream' },
        body: payload,
      });
      r.status = res.statusCode;
      let tail = '';
      let last = 0;
      for await (const chunk of res.body) {
        const now = performance.now();
        tail += (chunk as Buffer).toString('utf8');
        let i: number;
        while ((i = tail.indexOf('\n\n')) >= 0) {
          const ev = tail.slice(0, i);
          tail = tail.slice(i + 2);
          if (ev === 'data: [DONE]') r.done = true;
          else if (ev.includes('"delta":{"content"')) {
            r.frames++;
            if (r.ttft < 0) r.ttft = now - t0;
            else r.gaps.push(now - last);
            last = now;
          }
        }
      }
      r.ok = r.status === 200 && r.done && r.frames === expect;
    } catch (e) {
      r.error = (e as Error).message;
    }
    return r;
  };
  const out = await Promise.all(Array.from({ length: streams }, one));
  await pool.close();
  return out;
}
