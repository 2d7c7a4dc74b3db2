import { bool, custom, oneOf, requiredInt, type SettingDef } from '../types.js';

const AREA = 'Audit logging';

/** Parses `10MB`, `512KB`, `1GB`, `2048` (bytes) — units are powers of 1024, case-insensitive. */
export function parseByteSize(raw: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?$/i.exec(raw.trim());
  if (!m) throw `must be a size such as 10MB, 512KB or 1048576 (got "${raw}")`;
  const unit = (m[2] ?? 'b').toLowerCase()[0]!;
  const mult = unit === 'g' ? 1024 ** 3 : unit === 'm' ? 1024 ** 2 : unit === 'k' ? 1024 : 1;
  const n = Math.floor(Number(m[1]) * mult);
  if (n < 1024) throw `must be at least 1KB (got "${raw}")`;
  if (n > 1024 ** 4) throw `must be at most 1TB (got "${raw}")`;
  return n;
}

/** Parses a comma list of path prefixes (`/chats,/chat,/folders` or `auths,users`). */
export function parsePathList(raw: string | undefined, def: string): string[] {
  const v = raw === undefined || raw.trim() === '' ? def : raw;
  const out: string[] = [];
  for (const part of v.split(',')) {
    const p = part.trim().replace(/^\/+/, '').replace(/\/+$/, '');
    if (!p) continue;
    if (!/^[A-Za-z0-9._~\-/:]+$/.test(p)) throw `"${part.trim()}" is not a URL path segment list`;
    out.push(p.toLowerCase());
  }
  return out;
}

export const auditSettings = {
  AUDIT_LOG_LEVEL: oneOf(['NONE', 'METADATA', 'REQUEST', 'REQUEST_RESPONSE'] as const, 'NONE', {
    area: AREA,
    description:
      'Request audit log written to the sinks below. `NONE` writes nothing (default). `METADATA`: user, IP, user agent, method, URL, status, timestamp, request id, auth kind and API key id. `REQUEST`: also the request headers and body. `REQUEST_RESPONSE`: also the response body. Secrets are redacted by JSON structure (passwords, tokens, keys, secrets, Authorization and Cookie headers, secret query values, API keys and session tokens anywhere). Independent of this level, sign-in/out/up, every failed authentication and every change (user, role, session, key, settings…) are always recorded in the tamper-evident database trail (`GET /api/v1/audit`).',
  }),
  MAX_BODY_LOG_SIZE: requiredInt(
    2048,
    { min: 0, max: 1_048_576 },
    {
      area: AREA,
      description:
        'Maximum bytes of each request and response body written to the audit log (after redaction); longer bodies are cut and marked truncated.',
    },
  ),
  ENABLE_AUDIT_LOGS_FILE: bool(true, {
    area: AREA,
    description:
      'Write the request audit log as JSON Lines to AUDIT_LOGS_FILE_PATH (mode 0600). On by default so that setting AUDIT_LOG_LEVEL is enough to get a log; nothing is written while AUDIT_LOG_LEVEL=NONE.',
  }),
  AUDIT_LOGS_FILE_PATH: custom<string | null>(
    '<DATA_DIR>/audit.log',
    'a file path',
    {
      area: AREA,
      description:
        'Audit log file (a relative path is relative to DATA_DIR). Rotated files are `<path>.1` (newest) … `<path>.<AUDIT_LOG_FILE_ROTATION_KEEP>`. Give every instance its own file when several share a volume.',
    },
    (raw) => (raw === undefined || raw.trim() === '' ? null : raw.trim()),
  ),
  AUDIT_LOG_FILE_ROTATION_SIZE: custom<number>(
    '10MB',
    'a size: bytes or KB, MB, GB (powers of 1024), at least 1KB',
    {
      area: AREA,
      description: 'The audit log file is rotated before it would grow past this size.',
    },
    (raw) => parseByteSize(raw === undefined || raw.trim() === '' ? '10MB' : raw),
  ),
  AUDIT_LOG_FILE_ROTATION_KEEP: requiredInt(
    10,
    { min: 1, max: 1000 },
    {
      area: AREA,
      description: 'How many rotated audit log files are kept besides the current one; the oldest is deleted.',
    },
  ),
  ENABLE_AUDIT_STDOUT: bool(false, {
    area: AREA,
    description:
      'Also write each audit log entry to standard output as one JSON object per line (`"log_type":"audit"`), for log aggregators.',
  }),
  AUDIT_INCLUDED_PATHS: custom<string[]>(
    '',
    'a comma list of API path prefixes, e.g. `auths,users,configs`',
    {
      area: AREA,
      description:
        'Whitelist mode: when set, only requests under these prefixes are audited (AUDIT_EXCLUDED_PATHS is then ignored). A prefix `users` matches `/api/users…` and `/api/v1/users…` at a word boundary; a prefix starting with `api/` matches from the root. Matching uses the route the request reached (so encoded paths cannot dodge it), case-insensitively. Sign-in, sign-out, sign-up and every failed authentication are audited whatever the filters.',
    },
    (raw) => parsePathList(raw, ''),
  ),
  AUDIT_EXCLUDED_PATHS: custom<string[]>(
    '/chats,/chat,/folders',
    'a comma list of API path prefixes',
    {
      area: AREA,
      description:
        'Blacklist mode (default): requests under these prefixes are not audited, matched like AUDIT_INCLUDED_PATHS (`/chat` matches `/api/chat/…` and `/api/v1/chat/…` but not `/api/v1/chats`). Authentication requests and failures are audited anyway.',
    },
    (raw) => parsePathList(raw, '/chats,/chat,/folders'),
  ),
  AUDIT_RETENTION_DAYS: custom<number | null>(
    null,
    'unset or 0 (keep forever), or a number of days 1–36500',
    {
      area: AREA,
      description:
        'Age after which entries of the database audit trail are pruned. Entries are pruned only as whole sealed segments (one per UTC day) whose final hash is kept as a checkpoint, so `hrida-ai audit verify` still passes; each pruning is itself an audit event. Unset keeps everything.',
    },
    (raw) => {
      if (raw === undefined || raw.trim() === '') return null;
      const v = raw.trim();
      if (!/^\d+$/.test(v)) throw `must be a whole number of days (got "${raw}")`;
      const n = Number(v);
      if (n > 36_500) throw `must be at most 36500 (got ${n})`;
      return n === 0 ? null : n;
    },
  ),
} satisfies Record<string, SettingDef<unknown>>;
