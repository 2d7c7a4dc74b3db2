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
  audit      Audit trail tools (audit verify: check the hash chain)
  keys       Secret-key tools (keys rotate: re-encrypt stored secrets with the current key)
  db         Database tools (db encrypt: convert a plain SQLite database to encrypted SQLite)

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
  audit: `hrida-ai audit — audit trail tools

Usage: hrida-ai audit <subcommand> [options]

Subcommands:
  verify     Check the hash chain of the audit trail and report the first break

Options:
  -h, --help  Show help for audit or a subcommand`,
  keys: `hrida-ai keys — secret-key tools

Usage: hrida-ai keys <subcommand> [options]

Subcommands:
  rotate     Re-encrypt every stored secret with the current HRIDAAI_SECRET_KEY

Options:
  -h, --help  Show help for keys or a subcommand`,
  db: `hrida-ai db — database tools

Usage: hrida-ai db <subcommand> [options]

Subcommands:
  encrypt    Convert the plain SQLite database to an encrypted one (SQLCipher 4)

Options:
  -h, --help  Show help for db or a subcommand`,
  'db encrypt': `hrida-ai db encrypt — convert a plain SQLite database to encrypted SQLite

Usage: hrida-ai db encrypt [--json]

Stop HridaAI first (the command refuses while another process has the database open). Set
DATABASE_TYPE=sqlite+sqlcipher and DATABASE_PASSWORD as the server will run with, then run this
command: the database at DATABASE_URL (default DATA_DIR/hridaai.db) is copied, the copy is
encrypted with DATABASE_PASSWORD and checked (it opens with the password, passes integrity_check
and has the same rows), then it replaces the original. The unencrypted original is kept next to
it as <file>.unencrypted-<time>: delete it once the server runs on the encrypted database.
Nothing is changed when any step fails. A database that DATABASE_PASSWORD already opens is left
alone.

Exit status: 0 when the database is encrypted (now or already), 1 on any error, 2 on a
configuration error.

Options:
  --json      Print the report as JSON
  -h, --help  Show this help`,
  'keys rotate': `hrida-ai keys rotate — re-encrypt stored secrets with the current key

Usage: hrida-ai keys rotate [--json]

To rotate the secret key: set the new key in HRIDAAI_SECRET_KEY and the old one in
HRIDAAI_SECRET_KEY_PREVIOUS, restart, then run this command. Every sealed value (connection API
keys and headers, …) still encrypted with the previous key is opened and sealed again with the
current one; values already under the current key are left alone. Afterwards the previous key is
no longer needed for stored secrets (sessions signed with it stay valid until they expire).

Exit status: 0 when every value is under the current key, 3 when some value could not be opened
(it is left unchanged and reported), 1 on any other error.

Options:
  --json      Print the report as JSON
  -h, --help  Show this help`,
  'audit verify': `hrida-ai audit verify — check the audit trail's hash chain

Usage: hrida-ai audit verify [--json]

Walks every entry of the audit trail in DATABASE_URL in order and checks that each entry's
contents match its SHA-256 hash, that each entry links to the previous one, that no entry is
missing (also at the end, against the chain head) and that sealed segment checkpoints agree.
Pruned segments (AUDIT_RETENTION_DAYS) are skipped through their checkpoint hash.

Exit status: 0 when the chain is intact, 3 when it is broken (the first break is reported),
1 on any other error.

Options:
  --json      Print the report as JSON
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
  if (command === 'audit') return auditCommand(rest);
  if (command === 'keys') return keysCommand(rest);
  if (command === 'db') return dbCommand(rest);
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

/**
 * Parses `<group> <sub> [--json] [--help]`. Prints help and returns null when nothing is to be
 * done; exits with code 2 on an unknown subcommand or option.
 */
function subcommandOptions(args: string[], group: 'audit' | 'keys' | 'db', sub: string): { json?: boolean } | null {
  const [given, ...rest] = args;
  if (!given || given === '-h' || given === '--help' || given === 'help') {
    process.stdout.write(HELP[group] + '\n');
    if (!given) process.exitCode = 1;
    return null;
  }
  if (given !== sub) fail(`Unknown ${group} subcommand "${given}".\n\n${HELP[group]}`, 2);
  let values: { help?: boolean; json?: boolean };
  try {
    ({ values } = parseArgs({
      args: rest,
      options: { help: { type: 'boolean', short: 'h' }, json: { type: 'boolean' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    fail(`${(e as Error).message}\n\n${HELP[`${group} ${sub}`]}`, 2);
  }
  if (values.help) {
    process.stdout.write(HELP[`${group} ${sub}`] + '\n');
    return null;
  }
  return values;
}

async function auditCommand(args: string[]) {
  const values = subcommandOptions(args, 'audit', 'verify');
  if (!values) return;
  const config = load({});
  const db = openDatabase(config);
  const { verifyChain } = await import('./platform/audit/chain.js');
  let report: Awaited<ReturnType<typeof verifyChain>>;
  try {
    report = await verifyChain(db.db);
  } catch (e) {
    await db.close().catch(() => undefined);
    if (/audit_(chain|events|checkpoints)/.test((e as Error).message))
      fail('No audit trail in this database (run `hrida-ai migrate` first).', 1);
    throw e;
  }
  await db.close();
  if (values.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  else if (report.ok) {
    const range = report.entries ? ` (seq ${report.firstSeq}…${report.lastSeq})` : '';
    const pruned = report.prunedThrough
      ? `; pruned through seq ${report.prunedThrough.seq} (checkpoint ${report.prunedThrough.hash})`
      : '';
    process.stdout.write(
      `Audit trail OK: ${report.entries} entries${range}, ${report.checkpoints} sealed segment(s)${pruned}.\n` +
        `Head: seq ${report.head!.seq}, hash ${report.head!.hash}\n`,
    );
  } else
    process.stdout.write(
      `Audit trail BROKEN at seq ${report.break!.seq}: ${report.break!.reason}\n` +
        `${report.entries} entries verified before the break.\n`,
    );
  if (!report.ok) process.exitCode = 3;
}

async function keysCommand(args: string[]) {
  const values = subcommandOptions(args, 'keys', 'rotate');
  if (!values) return;
  const config = load({});
  const { createKeyring, resolveSecretKey } = await import('./platform/security/keyring.js');
  const { createSecretBox, rotateSecrets } = await import('./platform/security/secretbox.js');
  const { secret } = resolveSecretKey(config.HRIDAAI_SECRET_KEY, config.dataDir);
  const box = createSecretBox(createKeyring(secret, config.HRIDAAI_SECRET_KEY_PREVIOUS));
  const db = openDatabase(config);
  let report: Awaited<ReturnType<typeof rotateSecrets>>;
  try {
    report = await rotateSecrets(db.db, box);
  } finally {
    await db.close().catch(() => undefined);
  }
  const failed = report.reduce((n, r) => n + r.failed, 0);
  if (values.json) process.stdout.write(JSON.stringify({ kid: box.currentKid, columns: report }, null, 2) + '\n');
  else
    for (const r of report)
      process.stdout.write(
        `${r.table}.${r.column}: ${r.rotated} re-encrypted, ${r.current} already current, ${r.failed} unreadable\n`,
      );
  if (failed) {
    process.stderr.write(
      `${failed} value(s) could not be opened with HRIDAAI_SECRET_KEY or HRIDAAI_SECRET_KEY_PREVIOUS and were left unchanged.\n`,
    );
    process.exitCode = 3;
  }
}

async function dbCommand(args: string[]) {
  const values = subcommandOptions(args, 'db', 'encrypt');
  if (!values) return;
  const config = load({});
  if (!config.database.encrypted || config.DATABASE_PASSWORD === null || config.database.sqlitePath === null)
    fail(
      'hrida-ai db encrypt: set DATABASE_TYPE=sqlite+sqlcipher and DATABASE_PASSWORD (the passphrase to encrypt with) as the server will run with, then run it again.',
      2,
    );
  const { encryptSqliteFile, EncryptError } = await import('./platform/db/encrypt.js');
  let report: ReturnType<typeof encryptSqliteFile>;
  try {
    report = encryptSqliteFile(config.database.sqlitePath, config.DATABASE_PASSWORD);
  } catch (e) {
    if (e instanceof EncryptError) fail(`hrida-ai db encrypt: ${e.message}`, 1);
    throw e;
  }
  if (values.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  else if (report.status === 'already-encrypted')
    process.stdout.write(`${report.file} is already encrypted and DATABASE_PASSWORD opens it: nothing to do.\n`);
  else
    process.stdout.write(
      `Encrypted ${report.file} (${report.tables} tables, ${report.rows} rows checked).\n` +
        `The unencrypted original is kept at ${report.plaintextCopy}: delete it once HridaAI runs on the encrypted database.\n`,
    );
}

main(process.argv.slice(2)).catch((e: unknown) => {
  // Found while opening storage (a wrong DATABASE_PASSWORD, a plaintext file with sqlcipher …).
  if (e instanceof ConfigErrors) fail(e.message, 2);
  fail(`hrida-ai: ${(e as Error).stack ?? String(e)}`);
});
