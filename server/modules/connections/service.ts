import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Db, Trx } from '../../platform/db/index.js';
import { AppError } from '../../platform/http/errors.js';
import { aadFor, SecretBoxError, type SecretBox } from '../../platform/security/secretbox.js';
import type { ModelConnectionsTable } from './tables.js';

/**
 * Model connections: OpenAI-compatible upstreams and Ollama servers. Credentials (the API key and
 * every extra header value) are sealed at rest and never leave the server: every response shows
 * MASK instead, and a request that sends MASK back keeps the stored value.
 */

export const MASK = '********';

export type ConnectionRow = ModelConnectionsTable;

/** A connection with its secrets opened, for the dispatcher only (never serialised). */
export interface OpenConnection {
  id: string;
  ownerId: string | null;
  type: 'openai' | 'ollama';
  name: string;
  baseUrl: string;
  apiKey: string | null;
  headers: Record<string, string>;
  prefixId: string | null;
  modelIds: string[];
  enabled: boolean;
  updatedAt: number;
}

const FORBIDDEN_HEADERS = new Set([
  'host',
  'content-length',
  'content-type',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'expect',
  'accept-encoding',
  'cookie',
]);

const headerName = z
  .string()
  .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$/, 'must be an HTTP header name')
  .refine((h) => !FORBIDDEN_HEADERS.has(h.toLowerCase()) && !h.toLowerCase().startsWith('proxy-'), {
    message: 'this header is set by HridaAI and cannot be configured',
  });
const headerValue = z
  .string()
  .max(8192)
  .regex(/^[^\r\n\0]*$/, 'must not contain line breaks');

export const baseUrlSchema = z
  .string()
  .trim()
  .max(2048)
  .superRefine((v, c) => {
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      c.addIssue({ code: 'custom', message: 'must be an absolute http(s) URL' });
      return;
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:')
      c.addIssue({ code: 'custom', message: 'must be an http:// or https:// URL' });
    if (u.username || u.password) c.addIssue({ code: 'custom', message: 'must not contain credentials' });
    if (u.search || u.hash) c.addIssue({ code: 'custom', message: 'must not contain a query or fragment' });
  })
  .transform((v) => v.replace(/\/+$/, ''));

const fields = {
  name: z.string().trim().min(1).max(200),
  base_url: baseUrlSchema,
  api_key: z
    .string()
    .max(4096)
    .regex(/^[^\r\n\0]*$/, 'must not contain line breaks')
    .nullable(),
  headers: z
    .record(headerName, headerValue)
    .refine((h) => Object.keys(h).length <= 32, 'at most 32 headers')
    .nullable(),
  prefix_id: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, - and _ only (at most 64)')
    .nullable(),
  model_ids: z
    .array(
      z
        .string()
        .min(1)
        .max(256)
        .regex(/^[^\s/]+(\/[^\s/]+)*$/, 'must be a model id'),
    )
    .max(1000),
  enabled: z.boolean(),
};

export const createConnectionBody = z
  .object({
    type: z.enum(['openai', 'ollama']),
    name: fields.name,
    base_url: fields.base_url,
    api_key: fields.api_key.optional(),
    headers: fields.headers.optional(),
    prefix_id: fields.prefix_id.optional(),
    model_ids: fields.model_ids.optional(),
    enabled: fields.enabled.optional(),
  })
  .strict();

export const updateConnectionBody = z
  .object({
    name: fields.name.optional(),
    base_url: fields.base_url.optional(),
    api_key: fields.api_key.optional(),
    headers: fields.headers.optional(),
    prefix_id: fields.prefix_id.optional(),
    model_ids: fields.model_ids.optional(),
    enabled: fields.enabled.optional(),
  })
  .strict()
  .refine((b) => Object.keys(b).length > 0, 'nothing to change');

export type CreateConnection = z.infer<typeof createConnectionBody>;
export type UpdateConnection = z.infer<typeof updateConnectionBody>;

const API_KEY = { table: 'model_connections', column: 'api_key_enc' };
const HEADERS = { table: 'model_connections', column: 'headers_enc' };

/** The only shape in which a connection leaves the server: secrets masked. */
export function presentConnection(row: ConnectionRow, headerNames: string[], secretsReadable = true) {
  return {
    id: row.id,
    type: row.type,
    name: row.name,
    base_url: row.base_url,
    api_key: row.api_key_enc ? MASK : null,
    headers: Object.fromEntries(headerNames.map((h) => [h, MASK])),
    prefix_id: row.prefix_id,
    model_ids: parseIds(row.model_ids),
    enabled: row.enabled === 1,
    /** false: a stored secret does not decrypt (wrong secret key or tampering); set new values to repair. */
    secrets_readable: secretsReadable,
    scope: row.owner_id ? 'user' : 'global',
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

export function parseIds(raw: string): string[] {
  try {
    const v = JSON.parse(raw) as unknown;
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

export class ConnectionStore {
  constructor(private readonly box: SecretBox) {}

  /** Opens the sealed fields. A value that does not open is an error, never the ciphertext. */
  open(row: ConnectionRow): OpenConnection {
    const apiKey = row.api_key_enc ? this.box.open(row.api_key_enc, aadFor(API_KEY, row.id)) : null;
    const headers = row.headers_enc
      ? (JSON.parse(this.box.open(row.headers_enc, aadFor(HEADERS, row.id))) as Record<string, string>)
      : {};
    return {
      id: row.id,
      ownerId: row.owner_id,
      type: row.type,
      name: row.name,
      baseUrl: row.base_url,
      apiKey,
      headers,
      prefixId: row.prefix_id,
      modelIds: parseIds(row.model_ids),
      enabled: row.enabled === 1,
      updatedAt: row.updated_at,
    };
  }

  /** Header names only (for the presenter); opening is required to know them. */
  headerNames(row: ConnectionRow): string[] {
    if (!row.headers_enc) return [];
    return Object.keys(JSON.parse(this.box.open(row.headers_enc, aadFor(HEADERS, row.id))) as object);
  }

  /** Masked view. A connection whose secrets do not open is still shown (flagged), so it can be repaired. */
  present(row: ConnectionRow) {
    let names: string[] = [];
    let readable = true;
    try {
      names = this.headerNames(row);
      if (row.api_key_enc) this.box.open(row.api_key_enc, aadFor(API_KEY, row.id));
    } catch (e) {
      if (!(e instanceof SecretBoxError)) throw e;
      readable = false;
    }
    return presentConnection(row, names, readable);
  }

  /** Loads one connection; `ownerId` null = admin connections, a user id = that user's only. */
  async get(db: Db | Trx, id: string, ownerId: string | null): Promise<ConnectionRow | undefined> {
    let q = db.selectFrom('model_connections').selectAll().where('id', '=', id);
    q = ownerId === null ? q.where('owner_id', 'is', null) : q.where('owner_id', '=', ownerId);
    return q.executeTakeFirst();
  }

  async list(db: Db | Trx, ownerId: string | null): Promise<ConnectionRow[]> {
    let q = db.selectFrom('model_connections').selectAll();
    q = ownerId === null ? q.where('owner_id', 'is', null) : q.where('owner_id', '=', ownerId);
    return q.orderBy('created_at').orderBy('id').execute();
  }

  async create(trx: Trx, input: CreateConnection, ownerId: string | null, actorId: string): Promise<ConnectionRow> {
    const now = Date.now();
    const id = randomUUID();
    const headers = input.headers ?? null;
    if (headers && Object.values(headers).some((v) => v === MASK))
      throw new AppError('validation_failed', 'A header value cannot be the mask on a new connection');
    if (input.api_key === MASK)
      throw new AppError('validation_failed', 'The API key cannot be the mask on a new connection');
    const row: ConnectionRow = {
      id,
      owner_id: ownerId,
      type: input.type,
      name: input.name,
      base_url: input.base_url,
      api_key_enc: input.api_key ? this.box.seal(input.api_key, aadFor(API_KEY, id)) : null,
      headers_enc:
        headers && Object.keys(headers).length ? this.box.seal(JSON.stringify(headers), aadFor(HEADERS, id)) : null,
      prefix_id: input.prefix_id ?? null,
      model_ids: JSON.stringify([...new Set(input.model_ids ?? [])]),
      enabled: input.enabled === false ? 0 : 1,
      created_by: actorId,
      created_at: now,
      updated_at: now,
    };
    await trx.insertInto('model_connections').values(row).execute();
    return row;
  }

  /** Applies a change; MASK keeps a stored secret, null removes it, a new value replaces it. */
  async update(trx: Trx, before: ConnectionRow, input: UpdateConnection): Promise<ConnectionRow> {
    const patch: Partial<ConnectionRow> = { updated_at: Math.max(Date.now(), before.updated_at + 1) };
    if (input.name !== undefined) patch.name = input.name;
    if (input.base_url !== undefined) patch.base_url = input.base_url;
    if (input.prefix_id !== undefined) patch.prefix_id = input.prefix_id;
    if (input.model_ids !== undefined) patch.model_ids = JSON.stringify([...new Set(input.model_ids)]);
    if (input.enabled !== undefined) patch.enabled = input.enabled ? 1 : 0;
    if (input.api_key !== undefined && input.api_key !== MASK)
      patch.api_key_enc = input.api_key ? this.box.seal(input.api_key, aadFor(API_KEY, before.id)) : null;
    if (input.headers !== undefined) {
      // The stored values are opened only when a mask asks to keep one (so new values repair a broken row).
      const keeps = Object.values(input.headers ?? {}).some((v) => v === MASK);
      const stored =
        keeps && before.headers_enc
          ? (JSON.parse(this.box.open(before.headers_enc, aadFor(HEADERS, before.id))) as Record<string, string>)
          : {};
      const next: Record<string, string> = {};
      for (const [k, v] of Object.entries(input.headers ?? {})) {
        if (v === MASK) {
          const old = Object.entries(stored).find(([sk]) => sk.toLowerCase() === k.toLowerCase());
          if (!old) throw new AppError('validation_failed', `headers.${k}: the mask stands for no stored value`);
          next[k] = old[1];
        } else next[k] = v;
      }
      patch.headers_enc = Object.keys(next).length
        ? this.box.seal(JSON.stringify(next), aadFor(HEADERS, before.id))
        : null;
    }
    await trx
      .updateTable('model_connections')
      .set(patch)
      .where('id', '=', before.id)
      .where('owner_id', before.owner_id === null ? 'is' : '=', before.owner_id)
      .execute();
    return { ...before, ...patch };
  }
}
