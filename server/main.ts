#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ConfigErrors, loadConfig, type LoadOptions } from './config/index.js';
import { createLogger } from './platform/log/logger.js';
import { openDatabase } from './platform/db/index.js';

const HELP: Record<string, string> = {
  main: `hrida-ai — the HridaAI server

Usage: hrida-ai <command> [options]

Commands:
  serve      Start the HTTP server (migrates the database first)
  migrate    Apply database migrations and exit

Options:
  -h, --help  Show help for hrida-ai or a command

Settings come from the environment and an optional .env file in the working directory.
See docs/configuration.md for every setting.`,
  serve: `hrida-ai serve — start the HTTP server

Usage: hrida-ai serve [--no-migrate]

Listens on HOST:PORT (default 127.0.0.1:8080) with ENV=prod unless ENV is set.
Applies pending database migrations before listening unless --no-migrate is given.

Options:
  --no-migrate  Do not apply migrations (fail if the schema is behind)
  -h, --help    Show this help`,
  migrate: `hrida-ai migrate — apply database migrations and exit

Usage: hrida-ai migrate

Uses DATABASE_URL (default: SQLite in DATA_DIR/hridaai.db). Safe to run while other instances are
running: migrations take a lock and are applied once.

Options:
  -h, --help  Show this help`,
};

function fail(message: string, code = 1): never {
  process.stderr.write(message.endsWith('\n') ? message : message + '\n');
  process.exit(code);
}

function load(opts: LoadOptions) {
  try {
    return loadConfig(process.env, { dotenvDir: process.cwd(), ...opts });
  } catch (e) {
    if (e instanceof ConfigErrors) fail(e.message, 2);
    throw e;
  }
}

async function main(argv: string[]) {
  const [command, ...rest] = argv;
  if (!command || command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(HELP.main + '\n');
    if (!command) process.exitCode = 1;
    return;
  }
  if (!(command in HELP) || command === 'main') fail(`Unknown command "${command}".\n\n${HELP.main}`, 2);

  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: rest,
      options: { help: { type: 'boolean', short: 'h' }, 'no-migrate': { type: 'boolean' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    fail(`${(e as Error).message}\n\n${HELP[command]}`, 2);
  }
  if (values.help) {
    process.stdout.write(HELP[command] + '\n');
    return;
  }
  if (command === 'migrate') {
    if (values['no-migrate']) fail(`Unknown option --no-migrate\n\n${HELP.migrate}`, 2);
    const config = load({});
    const log = createLogger(config);
    const db = openDatabase(config);
    try {
      const applied = await db.migrate();
      log.info({ applied }, applied.length ? 'Migrations applied' : 'Database is up to date');
    } finally {
      await db.close();
    }
    return;
  }
  // serve
  const config = load({ entryDefaults: { ENV: 'prod' } });
  const log = createLogger(config);
  const { buildApp } = await import('./app.js');
  const built = await buildApp(config, { logger: log, migrate: !values['no-migrate'] });
  const shutdown = async (signal: string) => {
    log.info({ signal }, 'Shutting down');
    await built.close().catch(() => undefined);
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  await built.app.listen({ host: config.HOST ?? '127.0.0.1', port: config.PORT });
  log.info(
    `HridaAI listening on http://${config.HOST}:${config.PORT} (ENV=${config.ENV}, database: ${config.database.kind})`,
  );
}

main(process.argv.slice(2)).catch((e: unknown) => {
  fail(`hrida-ai: ${(e as Error).stack ?? String(e)}`);
});
