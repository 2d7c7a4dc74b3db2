import type { AppContext } from '../../context.js';
import { afterKey, type Db } from '../../platform/db/index.js';
import { presentUser } from '../users/presenter.js';
import { presentChatSummary, presentMessage } from '../chats/service.js';
import type { ChatMessage } from '../chats/tables.js';
import { presentMemory } from '../memories/service.js';

/**
 * GET /api/v1/users/me/export: everything HridaAI holds about the caller as one JSON document,
 * written as it is read (chats, usage and audit entries in keyset-paged batches), so memory stays
 * flat whatever the size of the account. Every section selects whitelisted columns: no password
 * hash, key hash, TOTP secret, recovery-code hash or sealed connection secret can appear.
 *
 * Sections: account, profile_image, identities, sessions, scim, impersonations, security, api_keys,
 * groups, grants, limits, connections, model_presets, files, knowledge_bases, prompts, folders, chats,
 * share_links, memories, memory_preferences, usage, audit.
 */

const BATCH = 200;

function parseJson(v: string | null): unknown {
  if (v === null) return null;
  try {
    return JSON.parse(v);
  } catch {
    return null;
  }
}

/** A URL without any user:password part. */
function withoutCredentials(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return url.replace(/\/\/[^/@]*@/, '//');
  }
}

const field = (name: string, value: unknown) => `,${JSON.stringify(name)}:${JSON.stringify(value)}`;

/** Writes `,"name":[…]` from pages of rows. */
async function* arrayField<T>(name: string, pages: AsyncIterable<T[]>): AsyncGenerator<string> {
  yield `,${JSON.stringify(name)}:[`;
  let first = true;
  for await (const page of pages) {
    if (page.length === 0) continue;
    yield (first ? '' : ',') + page.map((x) => JSON.stringify(x)).join(',');
    first = false;
  }
  yield ']';
}

async function* chatPages(db: Db, userId: string) {
  let after: { created_at: number; id: string } | null = null;
  for (;;) {
    let q = db
      .selectFrom('chats')
      .selectAll()
      .where('user_id', '=', userId)
      .orderBy('created_at')
      .orderBy('id')
      .limit(BATCH);
    if (after) q = q.where(afterKey('created_at', 'id', after));
    const chats = await q.execute();
    if (chats.length === 0) return;
    const messages = await db
      .selectFrom('chat_messages')
      .selectAll()
      .where('user_id', '=', userId)
      .where(
        'chat_id',
        'in',
        chats.map((c) => c.id),
      )
      .orderBy('chat_id')
      .orderBy('seq')
      .execute();
    const byChat = new Map<string, ChatMessage[]>();
    for (const m of messages) {
      const list = byChat.get(m.chat_id);
      if (list) list.push(m);
      else byChat.set(m.chat_id, [m]);
    }
    yield chats.map((c) => ({ ...presentChatSummary(c), messages: (byChat.get(c.id) ?? []).map(presentMessage) }));
    const last = chats[chats.length - 1]!;
    after = { created_at: last.created_at, id: last.id };
    if (chats.length < BATCH) return;
  }
}

async function* usagePages(db: Db, userId: string) {
  let after: { created_at: number; id: string } | null = null;
  for (;;) {
    let q = db
      .selectFrom('gateway_usage')
      .select([
        'id',
        'created_at',
        'route',
        'model_id',
        'base_model_id',
        'key_id',
        'prompt_tokens',
        'completion_tokens',
        'total_tokens',
        'usage_source',
        'status',
        'http_status',
        'stream',
        'duration_ms',
      ])
      .where('user_id', '=', userId)
      .orderBy('created_at')
      .orderBy('id')
      .limit(BATCH);
    if (after) q = q.where(afterKey('created_at', 'id', after));
    const rows = await q.execute();
    if (rows.length === 0) return;
    yield rows.map((r) => ({ ...r, stream: r.stream === 1 }));
    const last = rows[rows.length - 1]!;
    after = { created_at: last.created_at, id: last.id };
    if (rows.length < BATCH) return;
  }
}

async function* auditPages(db: Db, userId: string) {
  let after = -1;
  for (;;) {
    const rows = await db
      .selectFrom('audit_events')
      .select(['seq', 'created_at', 'action', 'actor_id', 'subject_id', 'resource_type', 'resource_id', 'result', 'ip'])
      .where((eb) => eb.or([eb('actor_id', '=', userId), eb('subject_id', '=', userId)]))
      .where('seq', '>', after)
      .orderBy('seq')
      .limit(BATCH)
      .execute();
    if (rows.length === 0) return;
    yield rows.map((r) => ({ ...r, seq: Number(r.seq) }));
    after = Number(rows[rows.length - 1]!.seq);
    if (rows.length < BATCH) return;
  }
}

async function* once<T>(rows: Promise<T[]>): AsyncGenerator<T[]> {
  yield await rows;
}

/** The export document, in pieces. The caller is the account holder (the route checks). */
export async function* exportUser(ctx: Pick<AppContext, 'db'>, userId: string): AsyncGenerator<string> {
  const { db } = ctx;
  const user = await db.selectFrom('users').selectAll().where('id', '=', userId).executeTakeFirstOrThrow();
  yield `{"format":"hridaai.user-export","version":1,"exported_at":${Date.now()}`;
  yield field('account', { ...presentUser(user), settings: parseJson(user.settings) });

  const img = await db
    .selectFrom('profile_images')
    .select(['content_type', 'data', 'updated_at'])
    .where('user_id', '=', userId)
    .executeTakeFirst();
  yield field('profile_image', img ?? null);

  yield field(
    'identities',
    await db
      .selectFrom('identities')
      .select(['id', 'provider', 'subject', 'created_at'])
      .where('user_id', '=', userId)
      .orderBy('created_at')
      .execute(),
  );

  const sessions = await db
    .selectFrom('sessions')
    .select([
      'id',
      'user_id',
      'actor_id',
      'kind',
      'created_at',
      'expires_at',
      'last_used_at',
      'revoked_at',
      'revoked_reason',
      'ip',
      'user_agent',
    ])
    .where((eb) => eb.or([eb('user_id', '=', userId), eb('actor_id', '=', userId)]))
    .orderBy('created_at')
    .execute();
  const sso = await db
    .selectFrom('sso_sessions')
    .select(['session_id', 'provider', 'subject', 'created_at'])
    .where('user_id', '=', userId)
    .execute();
  const ssoBySession = new Map(sso.map((s) => [s.session_id, s]));
  yield field(
    'sessions',
    sessions.map((s) => {
      const o = ssoBySession.get(s.id);
      return {
        ...s,
        ...(o ? { sso: { provider: o.provider, subject: o.subject, created_at: o.created_at } } : {}),
      };
    }),
  );

  yield field(
    'scim',
    (await db
      .selectFrom('scim_users')
      .select(['user_name', 'external_id', 'given_name', 'family_name', 'created_at', 'updated_at'])
      .where('user_id', '=', userId)
      .executeTakeFirst()) ?? null,
  );

  yield field(
    'impersonations',
    await db
      .selectFrom('impersonations')
      .select(['id', 'admin_id', 'user_id', 'reason', 'started_at', 'expires_at', 'ended_at', 'ended_reason'])
      .where((eb) => eb.or([eb('user_id', '=', userId), eb('admin_id', '=', userId)]))
      .orderBy('started_at')
      .execute(),
  );

  const sec = await db
    .selectFrom('user_security')
    .select(['totp_enabled_at', 'must_change_password', 'password_reset_at', 'updated_at'])
    .where('user_id', '=', userId)
    .executeTakeFirst();
  const codes = await db
    .selectFrom('recovery_codes')
    .select(['id', 'created_at', 'used_at'])
    .where('user_id', '=', userId)
    .orderBy('created_at')
    .execute();
  const challenges = await db
    .selectFrom('two_factor_challenges')
    .select(['id', 'kind', 'created_at', 'expires_at', 'consumed_at', 'ip'])
    .where('user_id', '=', userId)
    .orderBy('created_at')
    .execute();
  const attempts = await db
    .selectFrom('login_attempts')
    .select(['kind', 'failures', 'lockouts', 'last_failure_at', 'locked_until', 'updated_at'])
    .where('user_id', '=', userId)
    .execute();
  yield field('security', {
    totp_enabled: sec?.totp_enabled_at != null,
    totp_enabled_at: sec?.totp_enabled_at ?? null,
    must_change_password: sec?.must_change_password === 1,
    password_reset_at: sec?.password_reset_at ?? null,
    recovery_codes: codes,
    two_factor_challenges: challenges,
    login_attempts: attempts,
  });

  yield field(
    'api_keys',
    (
      await db
        .selectFrom('api_keys')
        .select([
          'id',
          'name',
          'hint',
          'allowed_endpoints',
          'allowed_models',
          'created_at',
          'updated_at',
          'rotated_at',
          'expires_at',
          'last_used_at',
        ])
        .where('user_id', '=', userId)
        .orderBy('created_at')
        .execute()
    ).map((k) => ({
      ...k,
      allowed_endpoints: parseJson(k.allowed_endpoints),
      allowed_models: parseJson(k.allowed_models),
    })),
  );

  yield field(
    'groups',
    await db
      .selectFrom('group_members')
      .innerJoin('groups', 'groups.id', 'group_members.group_id')
      .select([
        'groups.id as id',
        'groups.name as name',
        'group_members.source as source',
        'group_members.created_at as joined_at',
      ])
      .where('group_members.user_id', '=', userId)
      .orderBy('groups.name')
      .execute(),
  );

  yield field(
    'grants',
    await db
      .selectFrom('resource_grants')
      .select(['id', 'resource_type', 'resource_id', 'permission', 'created_at', 'updated_at'])
      .where('principal_type', '=', 'user')
      .where('principal_id', '=', userId)
      .orderBy('created_at')
      .execute(),
  );

  yield field(
    'limits',
    await db
      .selectFrom('gateway_limits')
      .select([
        'id',
        'requests_per_minute',
        'tokens_per_minute',
        'concurrent_requests',
        'tokens_per_day',
        'tokens_per_month',
        'updated_at',
      ])
      .where('scope', '=', 'user')
      .where('subject_id', '=', userId)
      .execute(),
  );

  yield field(
    'connections',
    (
      await db
        .selectFrom('model_connections')
        .select(['id', 'type', 'name', 'base_url', 'prefix_id', 'model_ids', 'enabled', 'created_at', 'updated_at'])
        .where('owner_id', '=', userId)
        .orderBy('created_at')
        .execute()
    ).map((c) => ({
      ...c,
      base_url: withoutCredentials(c.base_url),
      model_ids: parseJson(c.model_ids),
      enabled: c.enabled === 1,
    })),
  );

  yield field(
    'model_presets',
    (
      await db
        .selectFrom('model_presets')
        .select([
          'id',
          'name',
          'base_model_id',
          'description',
          'system_prompt',
          'params',
          'is_active',
          'created_at',
          'updated_at',
        ])
        .where('owner_id', '=', userId)
        .orderBy('created_at')
        .execute()
    ).map((p) => ({ ...p, params: parseJson(p.params), is_active: p.is_active === 1 })),
  );

  yield* arrayField(
    'files',
    once(
      db
        .selectFrom('files')
        .select(['id', 'filename', 'ext', 'content_type', 'size', 'sha256', 'created_at', 'updated_at'])
        .where('user_id', '=', userId)
        .orderBy('created_at')
        .execute(),
    ),
  );

  yield field(
    'knowledge_bases',
    await db
      .selectFrom('knowledge_bases')
      .select(['id', 'name', 'description', 'created_at', 'updated_at'])
      .where('user_id', '=', userId)
      .orderBy('created_at')
      .execute(),
  );

  yield field(
    'prompts',
    await db
      .selectFrom('prompts')
      .select(['id', 'command', 'title', 'content', 'created_at', 'updated_at'])
      .where('user_id', '=', userId)
      .orderBy('created_at')
      .execute(),
  );

  yield field(
    'folders',
    await db
      .selectFrom('chat_folders')
      .select(['id', 'name', 'created_at', 'updated_at'])
      .where('user_id', '=', userId)
      .orderBy('created_at')
      .execute(),
  );

  yield* arrayField('chats', chatPages(db, userId));

  yield field(
    'share_links',
    (
      await db
        .selectFrom('chat_shares')
        .select(['id', 'chat_id', 'created_at', 'updated_at'])
        .where('user_id', '=', userId)
        .orderBy('created_at')
        .execute()
    ).map((s) => ({ share_id: s.id, chat_id: s.chat_id, created_at: s.created_at, updated_at: s.updated_at })),
  );

  yield field(
    'memories',
    (
      await db
        .selectFrom('memories')
        .selectAll()
        .where('user_id', '=', userId)
        .orderBy('created_at')
        .orderBy('id')
        .execute()
    ).map(presentMemory),
  );

  const pref = await db
    .selectFrom('memory_preferences')
    .select(['inject_into_chats', 'updated_at'])
    .where('user_id', '=', userId)
    .executeTakeFirst();
  yield field(
    'memory_preferences',
    pref ? { inject_into_chats: pref.inject_into_chats === 1, updated_at: pref.updated_at } : null,
  );

  yield* arrayField('usage', usagePages(db, userId));
  yield* arrayField('audit', auditPages(db, userId));
  yield '}\n';
}
