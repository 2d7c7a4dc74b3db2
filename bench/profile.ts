/**
 * `npm run bench:profile` — where the gateway spends its CPU. Starts the mock upstream, the bare
 * Fastify+undici proxy and HridaAI (full stack, as in `npm run bench`), drives each with the same
 * closed-loop load and reports the **server process's CPU time per request** (user + system, from
 * /proc): unlike requests/s this hardly moves when other work shares the machine, so it is the
 * figure to compare between two builds. With BENCH_CPU_PROFILE=1 HridaAI runs under `--cpu-prof`
 * and the profile is summarised (busy time by package and function).
 *
 * Knobs: BENCH_PROFILE_MS (load per arm and mode, default 8000), BENCH_CLIENTS (default 32),
 * BENCH_PROFILE_STREAM=1 to add a streaming mode (20-chunk streams), BENCH_CPU_PROFILE=1.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { summarise } from './lib/cpuprofile.js';
import { sse, throughput, type Target } from './lib/driver.js';
import { startHridaAI } from './lib/hridaai.js';
import { cpuMs, ROOT, startTs } from './lib/procs.js';

const MS = Number(process.env.BENCH_PROFILE_MS ?? 8000);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 32);
const PROFILE = process.env.BENCH_CPU_PROFILE === '1';
const STREAM = process.env.BENCH_PROFILE_STREAM === '1';
const log = (s: string) => process.stderr.write(s + '\n');

async function main() {
  const work = mkdtempSync(path.join(os.tmpdir(), 'hridaai-profile-'));
  const profDir = path.join(work, 'prof');
  const procs: { stop(): Promise<void> }[] = [];
  try {
    const upstream = await startTs(path.join(ROOT, 'bench/lib/upstream-main.ts'));
    procs.push(upstream);
    const proxy = await startTs(path.join(ROOT, 'bench/lib/proxy-main.ts'), [`http://127.0.0.1:${upstream.port}`]);
    procs.push(proxy);
    const h = await startHridaAI(work, upstream.port, PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []);
    procs.push(h);
    const arms: { t: Target; pid: number }[] = [
      {
        t: {
          name: 'fastify-undici',
          origin: `http://127.0.0.1:${proxy.port}`,
          path: '/v1/chat/completions',
          headers: {},
        },
        pid: proxy.child.pid!,
      },
      {
        t: {
          name: 'hridaai',
          origin: `http://127.0.0.1:${h.port}`,
          path: '/api/v1/chat/completions',
          headers: { authorization: `Bearer ${h.key}` },
        },
        pid: h.child.pid!,
      },
    ];
    for (const a of arms) await throughput(a.t, 'bench-model', CLIENTS, 1500); // warm-up
    const rows: string[] = [];
    for (let round = 0; round < 2; round++)
      for (const a of arms) {
        const c0 = cpuMs(a.pid);
        const r = await throughput(a.t, 'bench-model', CLIENTS, MS / 2);
        const used = cpuMs(a.pid) - c0;
        rows.push(
          `${a.t.name.padEnd(15)} json    ${String(r.done).padStart(7)} req  ${((used * 1000) / r.done).toFixed(1).padStart(7)} µs CPU/req  ${Math.round((r.done / r.elapsedMs) * 1000)} req/s`,
        );
      }
    if (STREAM)
      for (const a of arms) {
        const c0 = cpuMs(a.pid);
        let n = 0;
        const end = performance.now() + MS;
        while (performance.now() < end) n += (await sse(a.t, 'bench-stream', CLIENTS, 20)).length;
        const used = cpuMs(a.pid) - c0;
        rows.push(
          `${a.t.name.padEnd(15)} stream  ${String(n).padStart(7)} req  ${((used * 1000) / n).toFixed(1).padStart(7)} µs CPU/req (20 chunks each)`,
        );
      }
    await h.stop();
    process.stdout.write(rows.join('\n') + '\n');
    if (PROFILE) {
      const f = readdirSync(profDir).find((x) => x.endsWith('.cpuprofile'));
      if (f) process.stdout.write('\n' + summarise(path.join(profDir, f)) + '\n');
    }
  } finally {
    for (const p of procs.reverse()) await p.stop().catch(() => undefined);
    if (process.env.BENCH_KEEP_PROFILE) process.stderr.write(`kept ${work}\n`);
    else rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  log(`profile failed: ${(e as Error).stack ?? String(e)}`);
  process.exit(1);
});
