/**
 * Child process: the mock OpenAI-compatible upstream of the benchmark (the test fixture, without
 * request recording). Prints `READY <port>` when listening.
 */
import { startOpenAIUpstream } from '../../test/fixtures/upstream.js';

const port = Number(process.argv[2] ?? 0);
const up = await startOpenAIUpstream({
  port,
  record: false,
  models: ['bench-model', 'bench-stream', 'bench-hold'],
});
// bench-model: a short answer; bench-stream: 20 chunks 10 ms apart; bench-hold: 50 chunks 20 ms apart.
up.set({ chunks: 3 }, 'bench-model');
up.set({ chunks: 20, chunkDelayMs: 10 }, 'bench-stream');
up.set({ chunks: 50, chunkDelayMs: 20 }, 'bench-hold');
process.stdout.write(`READY ${up.port}\n`);
process.on('SIGTERM', () => void up.close().then(() => process.exit(0)));
