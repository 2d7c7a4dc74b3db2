/**
 * Child process for the crash test: builds HridaAI on the parent's database and data directory,
 * starts erasing a user and stops at the requested stage, announcing it on stdout, until the
 * parent kills it with SIGKILL.
 *
 *   HRIDAAI_CHILD_ENV   the parent app's settings (JSON)
 *   HRIDAAI_CHILD_USER  the user to erase
 *   HRIDAAI_CHILD_STAGE before-commit | after-commit
 */
import pino from 'pino';
import { buildApp } from '../../server/app.js';
import { loadConfig } from '../../server/config/index.js';
import { eraseUser } from '../../server/modules/privacy/erasure.js';

const env = JSON.parse(process.env.HRIDAAI_CHILD_ENV ?? '{}') as Record<string, string>;
const userId = process.env.HRIDAAI_CHILD_USER ?? '';
const stage = process.env.HRIDAAI_CHILD_STAGE ?? '';

const forever = () => new Promise<void>(() => setInterval(() => undefined, 60_000));
const announce = (s: string) => new Promise<void>((resolve) => process.stdout.write(`${s}\n`, () => resolve()));

const built = await buildApp(loadConfig(env), { logger: pino({ level: 'silent' }) });
await eraseUser(
  built.ctx,
  userId,
  { actorId: userId, via: 'self' },
  {
    beforeCommit:
      stage === 'before-commit'
        ? async () => {
            await announce('STAGE before-commit');
            await forever();
          }
        : undefined,
    afterCommit:
      stage === 'after-commit'
        ? async () => {
            await announce('STAGE after-commit');
            await forever();
          }
        : undefined,
  },
);
await announce('DONE');
await built.close();
