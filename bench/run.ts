/**
 * `npm run bench` — the gateway benchmark. One run, one machine, loopback only:
 *
 *   arms: direct (driver → mock upstream), nginx (→ nginx → mock), bare Fastify+undici proxy
 *   (→ proxy → mock), HridaAI full stack (→ HridaAI → mock: API-key auth, model grant check,
 *   limits, usage ledger, request log).
 *
 * Measures requests/s and latency, streaming time-to-first-token and inter-chunk gaps, the most
 * concurrent streams held with no lost frame, HridaAI's RSS idle and under load, and the cost of
 * an API-key verification. Writes bench/results/gateway-<time>.json (and gateway-latest.json) and the table in
 * bench/README.md ("Gateway" section).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sequential, sse, stats, throughput, type Stats, type Target } from './lib/driver.js';
import { startHridaAI } from './lib/hridaai.js';
import { ROOT, rssMiB, startNginx, startTs, type Proc } from './lib/procs.js';

const SEQ_N = Number(process.env.BENCH_SEQ_N ?? 2000);
const WARMUP = 300;
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 32);
const THROUGHPUT_MS = Number(process.env.BENCH_THROUGHPUT_MS ?? 5000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
const STREAM_LEVELS = (process.env.BENCH_STREAM_LEVELS ?? '128,256,512,1024').split(',').map(Number);

const log = (s: string) => process.stderr.write(s + '\n');

/** API-key verification in-process: cached hit and full miss (HMAC + one primary-key query). */
async function keyVerificationCost(work: string) {
  const { loadConfig } = await import('../server/config/index.js');
  const { buildApp } = await import('../server/app.js');
  const { apiKeyService } = await import('../server/modules/api-keys/service.js');
  const pino = (await import('pino')).default;
  const dataDir = path.join(work, 'keybench');
  const built = await buildApp(
    loadConfig({
      ENV: 'test',
      DATA_DIR: dataDir,
      HRIDAAI_SECRET_KEY: randomBytes(32).toString('base64'),
      PASSWORD_HASH_ROUNDS: '4',
      ENABLE_API_KEYS: 'true',
    }),
    { logger: pino({ level: 'silent' }) },
  );
  try {
    const s = await built.app.inject({
      method: 'POST',
      url: '/api/v1/auths/signup',
      payload: { name: 'k', email: 'k@bench.local', password: 'bench password 3' },
    });
    const k = await built.app.inject({
      method: 'POST',
      url: '/api/v1/api-keys',
      headers: { authorization: `Bearer ${s.json().token as string}` },
      payload: { name: 'k' },
    });
    const key = k.json().key as string;
    const svc = apiKeyService(built.ctx);
    for (let i = 0; i < 2000; i++) await svc.verify(key);
    const hits: number[] = [];
    for (let i = 0; i < 20_000; i++) {
      const t0 = performance.now();
      await svc.verify(key);
      hits.push((performance.now() - t0) * 1000);
    }
    const misses: number[] = [];
    for (let i = 0; i < 2000; i++) {
      await svc.invalidate({ all: true });
      const t0 = performance.now();
      await svc.verify(key);
      misses.push((performance.now() - t0) * 1000);
    }
    const bad: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const t0 = performance.now();
      await svc.verify(`sk-${randomBytes(24).toString('base64url')}`).catch(() => undefined);
      bad.push((performance.now() - t0) * 1000);
    }
    return { unit: 'µs', cache_hit: stats(hits), cache_miss: stats(misses), unknown_key: stats(bad) };
  } finally {
    await built.close();
  }
}

const sub = (a: Stats, b: Stats) => ({
  p50: Math.round((a.p50 - b.p50) * 1000) / 1000,
  p99: Math.round((a.p99 - b.p99) * 1000) / 1000,
});

function renderTable(r: Report): string {
  const arms = Object.keys(r.latency_one_client_ms);
  const f = (x: number | undefined) => (x === undefined ? '–' : String(x));
  const lines = [
    `Run of ${r.date} — ${r.machine.cpus} CPU (${r.machine.model}), Node ${r.machine.node}, load average at start ${r.machine.loadavg_at_start.join(' / ')}. HridaAI: ${r.hridaai_runtime}.`,
    '',
    '| arm | one client p50 / p99 (ms) | req/s, 32 clients | TTFT p50 / p99 (ms) | inter-chunk p99 (ms) | stream errors |',
    '|---|---|---|---|---|---|',
    ...arms.map(
      (a) =>
        `| ${a} | ${f(r.latency_one_client_ms[a]?.p50)} / ${f(r.latency_one_client_ms[a]?.p99)} | ${f(r.throughput_32_clients[a]?.rps)} | ${f(r.ttft_ms[a]?.p50)} / ${f(r.ttft_ms[a]?.p99)} | ${f(r.inter_chunk_ms[a]?.p99)} | ${f(r.stream_errors[a])} |`,
    ),
    '',
    '| measure | value | target | met |',
    '|---|---|---|---|',
    `| HridaAI added latency vs direct, p50 / p99 | ${r.added.vs_direct.p50} / ${r.added.vs_direct.p99} ms | ≤ 0.5 / ≤ 1.5 ms | ${r.targets['added p50 <= 0.5 ms (one client)'] ? 'yes' : 'no'} / ${r.targets['added p99 <= 1.5 ms (one client)'] ? 'yes' : 'no'} |`,
    `| HridaAI added latency vs nginx, p50 / p99 | ${r.added.vs_nginx ? `${r.added.vs_nginx.p50} / ${r.added.vs_nginx.p99} ms` : 'nginx not run'} | – | – |`,
    `| (nginx vs direct; bare proxy vs direct, p50 / p99) | ${r.added.nginx_vs_direct ? `${r.added.nginx_vs_direct.p50} / ${r.added.nginx_vs_direct.p99}` : '–'}; ${r.added.proxy_vs_direct.p50} / ${r.added.proxy_vs_direct.p99} ms | – | – |`,
    `| HridaAI throughput / bare Fastify+undici proxy | ${r.throughput_ratio_vs_proxy}× | ≥ 0.75× | ${r.targets['throughput >= 0.75x bare Fastify+undici proxy'] ? 'yes' : 'no'} |`,
    `| added time to first token vs direct, p50 / p99 | ${r.added.ttft_vs_direct.p50} / ${r.added.ttft_vs_direct.p99} ms | p99 ≤ 2 ms | ${r.targets['added TTFT p99 <= 2 ms'] ? 'yes' : 'no'} |`,
    `| added inter-chunk p99 vs direct | ${r.added.inter_chunk_p99_vs_direct} ms | – | – |`,
    `| concurrent streams held, zero lost frames | ${r.concurrent_streams.held_without_loss} (levels: ${r.concurrent_streams.levels.map((l) => `${l.streams}: ${l.ok} ok, ${l.lost_frames} lost`).join('; ')}) | ≥ 512 | ${r.targets['>= 512 concurrent streams, zero lost frames'] ? 'yes' : 'no'} |`,
    `| RSS idle / max under load | ${r.rss_mib.idle} / ${r.rss_mib.under_load_max} MiB | idle ≤ 100 MB | ${r.targets['idle RSS <= 100 MB'] ? 'yes' : 'no'} |`,
    `| API-key verification (cache hit / miss / unknown key), p50 | ${r.key_verification.cache_hit.p50} / ${r.key_verification.cache_miss.p50} / ${r.key_verification.unknown_key.p50} µs | – | – |`,
  ];
  return lines.join('\n');
}

type Report = Awaited<ReturnType<typeof measure>>;

/** Starts every arm, measures, stops everything (by pid) and returns the report. */
async function measure(work: string) {
  const procs: { stop(): Promise<void> }[] = [];
  try {
    log('starting the mock upstream, nginx, the bare proxy and HridaAI …');
    const upstream = await startTs(path.join(ROOT, 'bench/lib/upstream-main.ts'));
    procs.push(upstream);
    const nginx = await startNginx(path.join(work, 'nginx'), upstream.port);
    if ('child' in nginx) procs.push(nginx);
    const proxy = await startTs(path.join(ROOT, 'bench/lib/proxy-main.ts'), [`http://127.0.0.1:${upstream.port}`]);
    procs.push(proxy);
    const h = await startHridaAI(work, upstream.port);
    procs.push(h);

    const targets: Target[] = [
      { name: 'direct', origin: `http://127.0.0.1:${upstream.port}`, path: '/v1/chat/completions', headers: {} },
      ...('child' in nginx
        ? [
            {
              name: 'nginx',
              origin: `http://127.0.0.1:${(nginx as Proc).port}`,
              path: '/v1/chat/completions',
              headers: {},
            },
          ]
        : []),
      { name: 'fastify-undici', origin: `http://127.0.0.1:${proxy.port}`, path: '/v1/chat/completions', headers: {} },
      {
        name: 'hridaai',
        origin: `http://127.0.0.1:${h.port}`,
        path: '/api/v1/chat/completions',
        headers: { authorization: `Bearer ${h.key}` },
      },
    ];

    await new Promise((r) => setTimeout(r, 2000));
    const rssIdle = rssMiB(h.child.pid!);
    log(`HridaAI idle RSS: ${rssIdle} MiB (${h.compiled ? 'compiled' : 'tsx'})`);

    const latency: Record<string, Stats> = {};
    const load: Record<string, { rps: number; errors: number; latency: Stats }> = {};
    const ttft: Record<string, Stats> = {};
    const gaps: Record<string, Stats> = {};
    const streamErrors: Record<string, number> = {};
    let rssLoadMax = rssIdle;
    const sampler = setInterval(() => {
      try {
        rssLoadMax = Math.max(rssLoadMax, rssMiB(h.child.pid!));
      } catch {
        /* exited */
      }
    }, 100);

    // The machine may be shared: every measure runs in rounds, each round visiting every arm in
    // turn, so a change of background load hits all arms alike.
    const seq: Record<string, number[]> = {};
    const tp: Record<string, { done: number; errors: number; elapsedMs: number; samples: number[] }> = {};
    const first: Record<string, number[]> = {};
    const between: Record<string, number[]> = {};
    for (const t of targets) {
      seq[t.name] = [];
      tp[t.name] = { done: 0, errors: 0, elapsedMs: 0, samples: [] };
      first[t.name] = [];
      between[t.name] = [];
      streamErrors[t.name] = 0;
      await sequential(t, 'bench-model', 0, WARMUP);
    }
    for (let round = 0; round < ROUNDS; round++) {
      log(`round ${round + 1}/${ROUNDS} …`);
      for (const t of targets)
        for (const x of await sequential(t, 'bench-model', Math.ceil(SEQ_N / ROUNDS), 20)) seq[t.name]!.push(x);
      for (const t of targets) {
        const r = await throughput(t, 'bench-model', CLIENTS, Math.ceil(THROUGHPUT_MS / ROUNDS));
        const acc = tp[t.name]!;
        acc.done += r.done;
        acc.errors += r.errors;
        acc.elapsedMs += r.elapsedMs;
        for (const x of r.samples) acc.samples.push(x); // spread overflows the stack on long rounds
      }
      for (const t of targets)
        for (const r of await sse(t, 'bench-stream', 20, 20)) {
          if (!r.ok) streamErrors[t.name]! += 1;
          if (r.ttft >= 0) first[t.name]!.push(r.ttft);
          between[t.name]!.push(...r.gaps);
        }
    }
    for (const t of targets) {
      latency[t.name] = stats(seq[t.name]!);
      const acc = tp[t.name]!;
      load[t.name] = {
        rps: Math.round((acc.done / acc.elapsedMs) * 1000),
        errors: acc.errors,
        latency: stats(acc.samples),
      };
      ttft[t.name] = stats(first[t.name]!);
      gaps[t.name] = stats(between[t.name]!);
    }

    log('[hridaai] concurrent streams (50 chunks, 20 ms apart) …');
    const levels: { streams: number; ok: number; lost_frames: number; errors: number; seconds: number }[] = [];
    let held = 0;
    const hTarget = targets.find((t) => t.name === 'hridaai')!;
    for (const n of STREAM_LEVELS) {
      const t0 = performance.now();
      const res = await sse(hTarget, 'bench-hold', n, 50);
      const ok = res.filter((r) => r.ok).length;
      const lost = res.reduce((a, r) => a + (50 - r.frames), 0);
      levels.push({
        streams: n,
        ok,
        lost_frames: lost,
        errors: res.filter((r) => !r.ok).length,
        seconds: Math.round((performance.now() - t0) / 10) / 100,
      });
      log(`  ${n} streams: ${ok} complete, ${lost} frames lost`);
      if (ok === n && lost === 0) held = n;
      else break;
    }
    clearInterval(sampler);
    const rssAfter = rssMiB(h.child.pid!);

    log('API-key verification cost (in-process) …');
    const keyCost = await keyVerificationCost(work);

    const nginxOk = latency.nginx !== undefined;
    const result = {
      date: new Date().toISOString(),
      machine: {
        cpus: os.cpus().length,
        model: os.cpus()[0]?.model ?? '',
        node: process.version,
        loadavg_at_start: os.loadavg().map((x) => Math.round(x * 100) / 100),
      },
      settings: {
        sequential_requests: SEQ_N,
        warmup: WARMUP,
        clients: CLIENTS,
        throughput_ms: THROUGHPUT_MS,
        rounds: ROUNDS,
      },
      hridaai_runtime: h.compiled ? 'compiled (node dist/server/main.js serve)' : 'tsx (compilation failed)',
      nginx: 'child' in nginx ? 'nginx/1 worker, keepalive 1024, proxy_buffering off' : nginx.skipped,
      latency_one_client_ms: latency,
      throughput_32_clients: load,
      ttft_ms: ttft,
      inter_chunk_ms: gaps,
      stream_errors: streamErrors,
      added: {
        vs_direct: sub(latency.hridaai!, latency.direct!),
        vs_nginx: nginxOk ? sub(latency.hridaai!, latency.nginx!) : null,
        nginx_vs_direct: nginxOk ? sub(latency.nginx!, latency.direct!) : null,
        proxy_vs_direct: sub(latency['fastify-undici']!, latency.direct!),
        ttft_vs_direct: sub(ttft.hridaai!, ttft.direct!),
        inter_chunk_p99_vs_direct: Math.round((gaps.hridaai!.p99 - gaps.direct!.p99) * 1000) / 1000,
      },
      throughput_ratio_vs_proxy:
        Math.round((load.hridaai!.rps / Math.max(1, load['fastify-undici']!.rps)) * 1000) / 1000,
      concurrent_streams: { levels, held_without_loss: held },
      rss_mib: { idle: rssIdle, under_load_max: rssLoadMax, after: rssAfter },
      key_verification: keyCost,
    };
    const targetsMet = {
      'added p50 <= 0.5 ms (one client)': result.added.vs_direct.p50 <= 0.5,
      'added p99 <= 1.5 ms (one client)': result.added.vs_direct.p99 <= 1.5,
      'throughput >= 0.75x bare Fastify+undici proxy': result.throughput_ratio_vs_proxy >= 0.75,
      'added TTFT p99 <= 2 ms': result.added.ttft_vs_direct.p99 <= 2,
      '>= 512 concurrent streams, zero lost frames': held >= 512,
      'idle RSS <= 100 MB': rssIdle <= 100,
    };
    return { ...result, targets: targetsMet };
  } finally {
    for (const p of procs.reverse()) await p.stop().catch(() => undefined);
  }
}

async function main() {
  const work = mkdtempSync(path.join(os.tmpdir(), 'hridaai-bench-'));
  try {
    const out = await measure(work);
    mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
    const stamp = out.date.replace(/[:.]/g, '-');
    writeFileSync(path.join(ROOT, `bench/results/gateway-${stamp}.json`), JSON.stringify(out, null, 2) + '\n');
    writeFileSync(path.join(ROOT, 'bench/results/gateway-latest.json'), JSON.stringify(out, null, 2) + '\n');
    const table = renderTable(out);
    updateReadme(table);
    process.stdout.write(table + '\n');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

const START = '<!-- gateway:start (written by npm run bench) -->';
const END = '<!-- gateway:end -->';

function updateReadme(table: string) {
  const file = path.join(ROOT, 'bench/README.md');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    text = `# Benchmarks\n\n## Gateway\n\n${START}\n${END}\n`;
  }
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  if (a < 0 || b < 0) text += `\n## Gateway\n\n${START}\n${table}\n${END}\n`;
  else text = text.slice(0, a + START.length) + '\n' + table + '\n' + text.slice(b);
  writeFileSync(file, text);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
