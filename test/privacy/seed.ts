/**
 * Seeds one user with a row in every table that can reference a user, plus a second user whose
 * rows point at the first (created_by, granted_by, a document from the first user's file in the
 * second user's knowledge base…). Shared by the export and erasure tests.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { call, makeUser, type TestApp } from '../harness.js';

export interface SeededUser {
  id: string;
  email: string;
  token: string;
  password: string;
  /** Absolute paths of the user's files on disk. */
  files: string[];
  /** Values that must never appear in an export (hashes, sealed secrets). */
  secrets: string[];
  chatId: string;
  shareId: string;
  memoryId: string;
  folderId: string;
  fileId: string;
  apiKeyId: string;
}

function hex(n: number) {
  return randomBytes(n).toString('hex');
}

export function writeUpload(app: TestApp, content: string): string {
  const dir = path.join(app.dataDir, 'uploads');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const name = hex(16);
  writeFileSync(path.join(dir, name), content, { mode: 0o600 });
  return name;
}

/** A user with data everywhere; `other` gets rows that merely point at the user. */
export async function seedUser(
  app: TestApp,
  other: { id: string },
  opts: { role?: 'admin' | 'user' } = {},
): Promise<SeededUser> {
  const db = app.ctx.db;
  const password = 'seeded password 1';
  const { user, token } = await makeUser(app, { role: opts.role ?? 'user', password });
  const u = user.id;
  const now = Date.now();
  const secrets: string[] = [user.password_hash!];

  // ---- conversations and memories, through the API
  const folder = await call(app, 'POST', '/api/v1/folders', { token, body: { name: 'Work' } });
  const chat = await call(app, 'POST', '/api/v1/chats', {
    token,
    body: {
      folder_id: folder.body.id,
      messages: [
        { role: 'user', content: 'What is the capital of France?' },
        {
          role: 'assistant',
          content: 'Paris.',
          model: 'm1',
          usage: { prompt_tokens: 7, completion_tokens: 2, total_tokens: 9 },
        },
      ],
    },
  });
  const share = await call(app, 'POST', `/api/v1/chats/${chat.body.id}/share`, { token });
  const memory = await call(app, 'POST', '/api/v1/memories', { token, body: { content: 'Prefers metric units' } });
  await call(app, 'PUT', '/api/v1/memories/settings', { token, body: { inject_into_chats: true } });
  for (const r of [folder, chat, share, memory])
    if (r.status >= 300) throw new Error(`seeding failed: ${r.status} ${r.text}`);

  // ---- sign-in
  await db
    .insertInto('identities')
    .values({ id: randomUUID(), user_id: u, provider: 'oidc', subject: `sub-${hex(4)}`, created_at: now })
    .execute();
  const sess = await db.selectFrom('sessions').select('id').where('user_id', '=', u).executeTakeFirstOrThrow();
  await db
    .insertInto('sso_sessions')
    .values({
      session_id: sess.id,
      user_id: u,
      provider: 'oidc',
      subject: 'idp-sub',
      idp_sid: 'idp-sid',
      created_at: now,
    })
    .execute();
  await db
    .insertInto('scim_users')
    .values({
      user_id: u,
      user_name: user.email,
      user_name_key: user.email.toLowerCase(),
      external_id: `ext-${hex(4)}`,
      given_name: 'Seed',
      family_name: 'User',
      created_at: now,
      updated_at: now,
    })
    .execute();
  const totp = `sealed-totp-${hex(8)}`;
  const totpPending = `sealed-pending-${hex(8)}`;
  secrets.push(totp, totpPending);
  await db
    .insertInto('user_security')
    .values({
      user_id: u,
      totp_secret_enc: totp,
      totp_enabled_at: now,
      totp_pending_enc: totpPending,
      totp_pending_at: now,
      totp_last_step: 1,
      must_change_password: 0,
      password_reset_by: null,
      password_reset_at: null,
      updated_at: now,
    })
    .execute();
  const codeHash = hex(32);
  secrets.push(codeHash);
  await db
    .insertInto('recovery_codes')
    .values({ id: randomUUID(), user_id: u, code_hash: codeHash, kid: 'k1', created_at: now, used_at: null })
    .execute();
  await db
    .insertInto('two_factor_challenges')
    .values({
      id: randomUUID(),
      user_id: u,
      kind: 'password',
      created_at: now,
      expires_at: now + 60_000,
      attempts: 0,
      consumed_at: null,
      ip: '127.0.0.1',
    })
    .execute();
  await db
    .insertInto('login_attempts')
    .values({
      id: `a_${hex(20)}`,
      kind: 'account',
      label: user.email.toLowerCase(),
      user_id: u,
      failures: 1,
      lockouts: 0,
      refused: 0,
      last_failure_at: now,
      next_at: 0,
      locked_until: 0,
      expires_at: now + 3_600_000,
      version: 1,
      updated_at: now,
    })
    .execute();
  // An impersonation session in which this user acted as `other`, and its record.
  const actSid = randomUUID();
  await db
    .insertInto('sessions')
    .values({
      id: actSid,
      user_id: other.id,
      actor_id: u,
      kind: 'impersonation',
      created_at: now,
      expires_at: now + 3_600_000,
      last_used_at: now,
      revoked_at: null,
      revoked_reason: null,
      ip: null,
      user_agent: null,
    })
    .execute();
  await db
    .insertInto('impersonations')
    .values({
      id: randomUUID(),
      session_id: actSid,
      admin_id: u,
      user_id: other.id,
      admin_session_id: sess.id,
      reason: 'support ticket',
      started_at: now,
      expires_at: now + 3_600_000,
      ended_at: null,
      ended_reason: null,
    })
    .execute();
  await db
    .insertInto('impersonations')
    .values({
      id: randomUUID(),
      session_id: randomUUID(),
      admin_id: other.id,
      user_id: u,
      admin_session_id: null,
      reason: 'they asked',
      started_at: now,
      expires_at: now + 3_600_000,
      ended_at: now,
      ended_reason: 'ended',
    })
    .execute();

  // ---- API keys and limits
  const apiKeyId = `k${hex(8)}`;
  const keyHash = hex(32);
  secrets.push(keyHash);
  await db
    .insertInto('api_keys')
    .values({
      id: apiKeyId,
      user_id: u,
      name: 'ci',
      hash: keyHash,
      pepper_kid: 'k1',
      hint: 'abcd',
      allowed_endpoints: null,
      allowed_models: '["m1"]',
      created_at: now,
      updated_at: now,
      rotated_at: null,
      expires_at: null,
      last_used_at: null,
    })
    .execute();
  await db
    .insertInto('gateway_limits')
    .values([
      {
        id: randomUUID(),
        scope: 'user',
        subject_id: u,
        requests_per_minute: 10,
        tokens_per_minute: null,
        concurrent_requests: null,
        tokens_per_day: null,
        tokens_per_month: null,
        updated_by: other.id,
        created_at: now,
        updated_at: now,
      },
      {
        id: randomUUID(),
        scope: 'key',
        subject_id: apiKeyId,
        requests_per_minute: 5,
        tokens_per_minute: null,
        concurrent_requests: null,
        tokens_per_day: null,
        tokens_per_month: null,
        updated_by: u,
        created_at: now,
        updated_at: now,
      },
      {
        id: randomUUID(),
        scope: 'user',
        subject_id: other.id,
        requests_per_minute: 7,
        tokens_per_minute: null,
        concurrent_requests: null,
        tokens_per_day: null,
        tokens_per_month: null,
        updated_by: u,
        created_at: now,
        updated_at: now,
      },
    ])
    .execute();

  // ---- files, knowledge, profile image
  const storage = writeUpload(app, `private notes of ${u}`);
  const fileId = randomUUID();
  await db
    .insertInto('files')
    .values({
      id: fileId,
      user_id: u,
      filename: 'notes.txt',
      ext: 'txt',
      content_type: 'text/plain',
      size: 10,
      sha256: hex(32),
      storage_name: storage,
      created_at: now,
      updated_at: now,
    })
    .execute();
  const kb = randomUUID();
  await db
    .insertInto('knowledge_bases')
    .values({ id: kb, user_id: u, name: 'Mine', description: '', created_at: now, updated_at: now })
    .execute();
  const doc = randomUUID();
  await db
    .insertInto('knowledge_documents')
    .values({
      id: doc,
      knowledge_id: kb,
      file_id: fileId,
      source_type: 'file',
      source_url: null,
      title: 'notes',
      content_type: 'text/plain',
      size: 10,
      chunk_count: 1,
      added_by: u,
      created_at: now,
    })
    .execute();
  await db
    .insertInto('knowledge_chunks')
    .values({ document_id: doc, knowledge_id: kb, seq: 0, text: 'private notes', embedding: null, created_at: now })
    .execute();
  // ---- prompts (one shared with `other`: the grant goes with the prompt)
  const prompt = randomUUID();
  await db
    .insertInto('prompts')
    .values({
      id: prompt,
      user_id: u,
      command: 'mine',
      title: 'Mine',
      content: 'private prompt',
      created_at: now,
      updated_at: now,
    })
    .execute();
  await db
    .insertInto('resource_grants')
    .values({
      id: randomUUID(),
      resource_type: 'prompt',
      resource_id: prompt,
      principal_type: 'user',
      principal_id: other.id,
      permission: 'read',
      granted_by: u,
      created_at: now,
      updated_at: now,
    })
    .execute();
  // `other`'s knowledge base holds a document made from this user's file and one this user added from the web.
  const otherKb = randomUUID();
  await db
    .insertInto('knowledge_bases')
    .values({ id: otherKb, user_id: other.id, name: 'Team', description: '', created_at: now, updated_at: now })
    .execute();
  const fromFile = randomUUID();
  await db
    .insertInto('knowledge_documents')
    .values({
      id: fromFile,
      knowledge_id: otherKb,
      file_id: fileId,
      source_type: 'file',
      source_url: null,
      title: 'copy',
      content_type: 'text/plain',
      size: 10,
      chunk_count: 1,
      added_by: u,
      created_at: now,
    })
    .execute();
  await db
    .insertInto('knowledge_chunks')
    .values({
      document_id: fromFile,
      knowledge_id: otherKb,
      seq: 0,
      text: 'private notes copy',
      embedding: null,
      created_at: now,
    })
    .execute();
  await db
    .insertInto('knowledge_documents')
    .values({
      id: randomUUID(),
      knowledge_id: otherKb,
      file_id: null,
      source_type: 'web',
      source_url: 'http://127.0.0.1/page',
      title: 'page',
      content_type: 'text/html',
      size: 10,
      chunk_count: 0,
      added_by: u,
      created_at: now,
    })
    .execute();
  await db
    .insertInto('profile_images')
    .values({ user_id: u, content_type: 'image/png', data: 'data:image/png;base64,AAAA', updated_at: now })
    .execute();

  // ---- access control
  const group = randomUUID();
  await db
    .insertInto('groups')
    .values({
      id: group,
      name: `g-${hex(3)}`,
      name_key: `g-${hex(6)}`,
      description: '',
      permissions: '{}',
      source: 'local',
      created_by: u,
      created_at: now,
      updated_at: now,
    })
    .execute();
  await db
    .insertInto('group_members')
    .values([
      { group_id: group, user_id: u, source: 'local', created_at: now },
      { group_id: group, user_id: other.id, source: 'local', created_at: now },
    ])
    .execute();
  await db
    .insertInto('resource_grants')
    .values([
      {
        id: randomUUID(),
        resource_type: 'model',
        resource_id: 'm1',
        principal_type: 'user',
        principal_id: u,
        permission: 'read',
        granted_by: other.id,
        created_at: now,
        updated_at: now,
      },
      {
        id: randomUUID(),
        resource_type: 'model',
        resource_id: 'm2',
        principal_type: 'user',
        principal_id: other.id,
        permission: 'read',
        granted_by: u,
        created_at: now,
        updated_at: now,
      },
      {
        id: randomUUID(),
        resource_type: 'file',
        resource_id: fileId,
        principal_type: 'user',
        principal_id: other.id,
        permission: 'read',
        granted_by: u,
        created_at: now,
        updated_at: now,
      },
    ])
    .execute();

  // ---- models and gateway
  const apiKeyEnc = `sealed-key-${hex(8)}`;
  const headersEnc = `sealed-headers-${hex(8)}`;
  secrets.push(apiKeyEnc, headersEnc);
  await db
    .insertInto('model_connections')
    .values([
      {
        id: randomUUID(),
        owner_id: u,
        type: 'openai',
        name: 'mine',
        base_url: 'http://user:pw@127.0.0.1:9/v1',
        api_key_enc: apiKeyEnc,
        headers_enc: headersEnc,
        prefix_id: null,
        model_ids: '[]',
        enabled: 1,
        created_by: u,
        created_at: now,
        updated_at: now,
      },
      {
        id: randomUUID(),
        owner_id: null,
        type: 'openai',
        name: 'shared',
        base_url: 'http://127.0.0.1:9/v1',
        api_key_enc: null,
        headers_enc: null,
        prefix_id: null,
        model_ids: '[]',
        enabled: 1,
        created_by: u,
        created_at: now,
        updated_at: now,
      },
    ])
    .execute();
  await db
    .insertInto('model_presets')
    .values({
      id: `preset-${hex(4)}`,
      name: 'Helper',
      base_model_id: 'm1',
      description: '',
      system_prompt: 'Be brief',
      params: '{}',
      owner_id: u,
      is_active: 1,
      created_at: now,
      updated_at: now,
    })
    .execute();
  const usage = (userId: string, actorId: string | null, keyId: string | null) => ({
    id: randomUUID(),
    created_at: now,
    request_id: randomUUID(),
    route: 'chat' as const,
    user_id: userId,
    actor_id: actorId,
    key_id: keyId,
    model_id: 'm1',
    base_model_id: 'm1',
    connection_id: null,
    prompt_tokens: 3,
    completion_tokens: 4,
    total_tokens: 7,
    usage_source: 'upstream' as const,
    status: 'completed' as const,
    http_status: 200,
    stream: 0,
    duration_ms: 5,
    ttft_ms: 1,
  });
  await db
    .insertInto('gateway_usage')
    .values([usage(u, null, apiKeyId), usage(u, null, null), usage(other.id, u, null)])
    .execute();

  // This user once reset `other`'s password.
  await db
    .insertInto('user_security')
    .values({
      user_id: other.id,
      totp_secret_enc: null,
      totp_enabled_at: null,
      totp_pending_enc: null,
      totp_pending_at: null,
      totp_last_step: 0,
      must_change_password: 0,
      password_reset_by: u,
      password_reset_at: now,
      updated_at: now,
    })
    .onConflict((oc) => oc.column('user_id').doUpdateSet({ password_reset_by: u }))
    .execute();

  // An audit entry naming the user (the share above wrote one too, when the trail is on).
  await app.ctx.audit.record(db, {
    action: 'test.seeded',
    actorId: u,
    subjectId: u,
    resourceType: 'user',
    resourceId: u,
  });
  void sql;

  return {
    id: u,
    email: user.email,
    token,
    password,
    files: [path.join(app.dataDir, 'uploads', storage)],
    secrets,
    chatId: chat.body.id,
    shareId: share.body.share_id,
    memoryId: memory.body.id,
    folderId: folder.body.id,
    fileId,
    apiKeyId,
  };
}

/** A file of `owner` that must survive another user's erasure. */
export async function seedOtherFile(app: TestApp, ownerId: string): Promise<string> {
  const storage = writeUpload(app, 'someone else');
  const now = Date.now();
  await app.ctx.db
    .insertInto('files')
    .values({
      id: randomUUID(),
      user_id: ownerId,
      filename: 'keep.txt',
      ext: 'txt',
      content_type: 'text/plain',
      size: 12,
      sha256: hex(32),
      storage_name: storage,
      created_at: now,
      updated_at: now,
    })
    .execute();
  return path.join(app.dataDir, 'uploads', storage);
}
