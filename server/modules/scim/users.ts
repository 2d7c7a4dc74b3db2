import { randomUUID } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { eraseUser } from '../privacy/erasure.js';
import type { AppContext } from '../../context.js';
import type { Db, Trx } from '../../platform/db/index.js';
import type { User } from '../../platform/db/types.js';
import { AppError } from '../../platform/http/errors.js';
import { otherActiveAdmins, provisionUser } from '../auth/accounts.js';
import { apiKeyService } from '../api-keys/service.js';
import { invalidValue, ScimError, scimNotFound, uniqueness } from './errors.js';
import { matches, parseFilter, requiredEquality } from './filter.js';
import { coerce } from './patch.js';
import { etagOf, iso, type Paging, type Resource } from './resources.js';
import { attrsOf, findAttr, USER_SCHEMA } from './schema.js';

/**
 * SCIM Users over HridaAI accounts. Every account is visible (an account made by sign-up or SSO
 * has its e-mail as userName), so an identity provider can match existing people before creating
 * them. The SCIM-only attributes (userName when it differs from the e-mail, externalId, given and
 * family name) live in `scim_users`. With SCIM_AUTH_PROVIDER set, externalId is also the account's
 * identity at that OAuth provider, so the provisioned person signs in to the same account.
 */
export const USER_DEFS = attrsOf('User');
const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;

export interface UserRow extends User {
  s_user_id: string | null;
  s_user_name: string | null;
  s_external_id: string | null;
  s_given_name: string | null;
  s_family_name: string | null;
}

export interface UserInput {
  userName: string;
  externalId: string | null;
  givenName: string | null;
  familyName: string | null;
  displayName: string;
  email: string;
  active: boolean;
}

function baseQuery(db: Db | Trx) {
  return db
    .selectFrom('users')
    .leftJoin('scim_users', 'scim_users.user_id', 'users.id')
    .selectAll('users')
    .select([
      'scim_users.user_id as s_user_id',
      'scim_users.user_name as s_user_name',
      'scim_users.external_id as s_external_id',
      'scim_users.given_name as s_given_name',
      'scim_users.family_name as s_family_name',
    ]);
}

export async function loadUser(db: Db | Trx, id: string): Promise<UserRow> {
  const r = await baseQuery(db).where('users.id', '=', id).executeTakeFirst();
  if (!r) throw scimNotFound('User');
  return r as UserRow;
}

async function groupsOf(db: Db | Trx, ids: string[]): Promise<Map<string, { id: string; name: string }[]>> {
  const out = new Map<string, { id: string; name: string }[]>();
  for (let i = 0; i < ids.length; i += 500) {
    const rows = await db
      .selectFrom('group_members')
      .innerJoin('groups', 'groups.id', 'group_members.group_id')
      .select(['group_members.user_id', 'groups.id', 'groups.name'])
      .where('group_members.user_id', 'in', ids.slice(i, i + 500))
      .orderBy('groups.name_key')
      .execute();
    for (const r of rows) {
      const l = out.get(r.user_id) ?? [];
      l.push({ id: r.id, name: r.name });
      out.set(r.user_id, l);
    }
  }
  return out;
}

export function presentScimUser(r: UserRow, groups: { id: string; name: string }[], base: string): Resource {
  const name: Record<string, string> = { formatted: r.name };
  if (r.s_given_name) name.givenName = r.s_given_name;
  if (r.s_family_name) name.familyName = r.s_family_name;
  return {
    schemas: [USER_SCHEMA],
    id: r.id,
    ...(r.s_external_id ? { externalId: r.s_external_id } : {}),
    userName: r.s_user_name ?? r.email,
    name,
    displayName: r.name,
    emails: [{ value: r.email, type: 'work', primary: true }],
    active: r.active === 1,
    groups: groups.map((g) => ({ value: g.id, display: g.name, $ref: `${base}/Groups/${g.id}`, type: 'direct' })),
    meta: {
      resourceType: 'User',
      created: iso(r.created_at),
      lastModified: iso(r.updated_at),
      location: `${base}/Users/${r.id}`,
      version: etagOf(r.updated_at),
    },
  };
}

export async function getUser(db: Db | Trx, id: string, base: string): Promise<Resource> {
  const r = await loadUser(db, id);
  return presentScimUser(r, (await groupsOf(db, [r.id])).get(r.id) ?? [], base);
}

/** Lists with a filter: narrowed in SQL by an equality every match needs, then evaluated exactly. */
export async function listUsers(
  db: Db,
  filter: string | undefined,
  p: Paging,
  base: string,
): Promise<{ total: number; items: Resource[] }> {
  if (!filter) {
    const [{ n }] = (await db
      .selectFrom('users')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .execute()) as [{ n: number }];
    const rows = (await baseQuery(db)
      .orderBy('users.created_at')
      .orderBy('users.id')
      .limit(p.count)
      .offset(p.startIndex - 1)
      .execute()) as UserRow[];
    const groups = await groupsOf(
      db,
      rows.map((r) => r.id),
    );
    return { total: Number(n), items: rows.map((r) => presentScimUser(r, groups.get(r.id) ?? [], base)) };
  }
  const ast = parseFilter(filter, USER_DEFS);
  const eq = requiredEquality(ast);
  let q = baseQuery(db);
  if (eq) {
    const v = eq.value;
    switch (eq.path.toLowerCase()) {
      case 'id':
        q = q.where('users.id', '=', v);
        break;
      case 'username':
        q = q.where((w) =>
          w.or([
            w('scim_users.user_name_key', '=', v.toLowerCase()),
            w.and([w('scim_users.user_id', 'is', null), w('users.email', '=', v.toLowerCase())]),
          ]),
        );
        break;
      case 'externalid':
        q = q.where('scim_users.external_id', '=', v);
        break;
      case 'emails':
      case 'emails.value':
        q = q.where('users.email', '=', v.toLowerCase());
        break;
    }
  }
  const rows = (await q.orderBy('users.created_at').orderBy('users.id').execute()) as UserRow[];
  const groups = await groupsOf(
    db,
    rows.map((r) => r.id),
  );
  const all = rows.map((r) => presentScimUser(r, groups.get(r.id) ?? [], base)).filter((res) => matches(ast, res));
  return { total: all.length, items: all.slice(p.startIndex - 1, p.startIndex - 1 + p.count) };
}

function str(v: unknown, where: string, max: number): string | null {
  if (v === undefined || v === null) return null;
  const s = coerce({ name: where, type: 'string', description: '' }, v, where) as string;
  const t = s.trim();
  if (t.length > max) throw invalidValue(`${where} is longer than ${max} characters`);
  return t === '' ? null : t;
}

/** Validates a user resource (after PUT or PATCH) into the values HridaAI stores. */
export function userInput(res: Resource): UserInput {
  const userName = str(res.userName, 'userName', 320);
  if (!userName) throw invalidValue('userName is required');
  const name = (res.name && typeof res.name === 'object' ? res.name : {}) as Record<string, unknown>;
  const givenName = str(name.givenName, 'name.givenName', 200);
  const familyName = str(name.familyName, 'name.familyName', 200);
  const formatted = str(name.formatted, 'name.formatted', 200);
  const emailsRaw = res.emails === undefined || res.emails === null ? [] : res.emails;
  const emails = coerce(findAttr(USER_DEFS, 'emails')!, emailsRaw, 'emails') as Record<string, unknown>[];
  const pick =
    emails.find((e) => e.primary === true && typeof e.value === 'string') ??
    emails.find((e) => e.type === 'work' && typeof e.value === 'string') ??
    emails.find((e) => typeof e.value === 'string');
  let email = pick ? String(pick.value).trim().toLowerCase() : '';
  if (!email && EMAIL.test(userName)) email = userName.toLowerCase();
  if (!email) throw invalidValue('An e-mail address is required (emails, or a userName that is an e-mail address)');
  if (!EMAIL.test(email) || email.length > 320) throw invalidValue(`"${email.slice(0, 80)}" is not an e-mail address`);
  const displayName =
    str(res.displayName, 'displayName', 200) ??
    formatted ??
    ([givenName, familyName].filter(Boolean).join(' ') || null) ??
    userName.slice(0, 200);
  const active =
    res.active === undefined || res.active === null
      ? true
      : coerce(findAttr(USER_DEFS, 'active')!, res.active, 'active');
  return {
    userName,
    externalId: str(res.externalId, 'externalId', 512),
    givenName,
    familyName,
    displayName,
    email,
    active: active as boolean,
  };
}

/** The editable view of a user, on which PATCH operations are applied. */
export function editableUser(r: UserRow): Resource {
  const res = presentScimUser(r, [], '');
  delete res.id;
  delete res.meta;
  delete res.groups;
  delete res.schemas;
  return res;
}

async function checkUnique(trx: Trx, u: UserInput, selfId: string | null, authProvider: string | null) {
  const byName = await trx
    .selectFrom('users')
    .leftJoin('scim_users', 'scim_users.user_id', 'users.id')
    .select('users.id')
    .where((w) =>
      w.or([
        w('scim_users.user_name_key', '=', u.userName.toLowerCase()),
        w.and([w('scim_users.user_id', 'is', null), w('users.email', '=', u.userName.toLowerCase())]),
      ]),
    )
    .execute();
  if (byName.some((r) => r.id !== selfId)) throw uniqueness(`userName ${u.userName} is already taken`);
  const byEmail = await trx.selectFrom('users').select('id').where('email', '=', u.email).executeTakeFirst();
  if (byEmail && byEmail.id !== selfId) throw uniqueness(`The e-mail ${u.email} belongs to another account`);
  if (authProvider && u.externalId) {
    const ident = await trx
      .selectFrom('identities')
      .select('user_id')
      .where('provider', '=', authProvider)
      .where('subject', '=', u.externalId)
      .executeTakeFirst();
    if (ident && ident.user_id !== selfId)
      throw uniqueness(`externalId ${u.externalId} is already linked to another account`);
  }
}

function auditBase(req: FastifyRequest) {
  return { actorId: null, ip: req.ip ?? null, requestId: req.id };
}

function snapshot(u: Pick<UserInput, 'userName' | 'email' | 'displayName' | 'active' | 'externalId'>) {
  return { userName: u.userName, email: u.email, name: u.displayName, active: u.active, externalId: u.externalId };
}

export async function createUser(ctx: AppContext, req: FastifyRequest, u: UserInput): Promise<string> {
  const authProvider = ctx.config.SCIM_AUTH_PROVIDER;
  const id = await ctx.db
    .transaction()
    .execute(async (trx) => {
      await checkUnique(trx, u, null, authProvider);
      const user = await provisionUser(trx, {
        email: u.email,
        name: u.displayName,
        passwordHash: null,
        provider: 'scim',
        subject: null,
        // The identity provider assigned this person to HridaAI: that is the approval.
        roleIfNotFirst: 'user',
      });
      const now = Date.now();
      await trx
        .insertInto('scim_users')
        .values({
          user_id: user.id,
          user_name: u.userName,
          user_name_key: u.userName.toLowerCase(),
          external_id: u.externalId,
          given_name: u.givenName,
          family_name: u.familyName,
          created_at: now,
          updated_at: now,
        })
        .execute();
      if (authProvider && u.externalId)
        await trx
          .insertInto('identities')
          .values({
            id: randomUUID(),
            user_id: user.id,
            provider: authProvider,
            subject: u.externalId,
            created_at: now,
          })
          .execute();
      if (!u.active) await trx.updateTable('users').set({ active: 0 }).where('id', '=', user.id).execute();
      await ctx.audit.record(trx, {
        ...auditBase(req),
        action: 'user.created',
        subjectId: user.id,
        resourceType: 'user',
        resourceId: user.id,
        after: { ...snapshot(u), role: user.role },
        details: { via: 'scim' },
      });
      return user.id;
    })
    .catch((e: unknown) => {
      if (e instanceof AppError && e.code === 'email_taken') throw uniqueness('userName or e-mail already taken');
      throw e;
    });
  return id;
}

/** Applies a new state to an existing account (PUT, or PATCH after the operations). */
export async function updateUser(
  ctx: AppContext,
  req: FastifyRequest,
  id: string,
  u: UserInput,
  ifMatch: (etag: string) => void,
): Promise<void> {
  const authProvider = ctx.config.SCIM_AUTH_PROVIDER;
  let deactivated = false;
  await ctx.db.transaction().execute(async (trx) => {
    const before = await loadUser(trx, id);
    ifMatch(etagOf(before.updated_at));
    await checkUnique(trx, u, id, authProvider);
    const wasActive = before.active === 1;
    if (wasActive && !u.active && before.role === 'admin' && (await otherActiveAdmins(trx, ctx.dbKind, id)) === 0)
      throw new ScimError(409, 'The last active administrator cannot be deactivated');
    const now = Math.max(Date.now(), before.updated_at + 1);
    await trx
      .updateTable('users')
      .set({ email: u.email, name: u.displayName, active: u.active ? 1 : 0, updated_at: now })
      .where('id', '=', id)
      .execute();
    const scimRow = {
      user_name: u.userName,
      user_name_key: u.userName.toLowerCase(),
      external_id: u.externalId,
      given_name: u.givenName,
      family_name: u.familyName,
      updated_at: now,
    };
    if (before.s_user_id) await trx.updateTable('scim_users').set(scimRow).where('user_id', '=', id).execute();
    else
      await trx
        .insertInto('scim_users')
        .values({ user_id: id, created_at: now, ...scimRow })
        .execute();
    if (authProvider && before.s_external_id !== u.externalId) {
      if (before.s_external_id)
        await trx
          .deleteFrom('identities')
          .where('user_id', '=', id)
          .where('provider', '=', authProvider)
          .where('subject', '=', before.s_external_id)
          .execute();
      if (u.externalId)
        await trx
          .insertInto('identities')
          .values({ id: randomUUID(), user_id: id, provider: authProvider, subject: u.externalId, created_at: now })
          .onConflict((oc) => oc.columns(['provider', 'subject']).doNothing())
          .execute();
    }
    const beforeSnap = snapshot({
      userName: before.s_user_name ?? before.email,
      email: before.email,
      displayName: before.name,
      active: wasActive,
      externalId: before.s_external_id,
    });
    if (wasActive && !u.active) {
      deactivated = true;
      const sessions = await ctx.sessions.revokeAllForUser(id, 'deactivated', { trx });
      const keys = await trx.deleteFrom('api_keys').where('user_id', '=', id).executeTakeFirst();
      await ctx.audit.record(trx, {
        ...auditBase(req),
        action: 'user.deactivated',
        subjectId: id,
        resourceType: 'user',
        resourceId: id,
        before: beforeSnap,
        after: snapshot(u),
        details: { via: 'scim', sessions_revoked: sessions, api_keys_revoked: Number(keys.numDeletedRows) },
      });
    } else
      await ctx.audit.record(trx, {
        ...auditBase(req),
        action: !wasActive && u.active ? 'user.activated' : 'user.updated',
        subjectId: id,
        resourceType: 'user',
        resourceId: id,
        before: beforeSnap,
        after: snapshot(u),
        details: { via: 'scim' },
      });
  });
  await ctx.sessions.afterUserChange(id);
  if (deactivated) await apiKeyService(ctx).invalidate({ user: id });
}

export async function deleteUser(ctx: AppContext, req: FastifyRequest, id: string, ifMatch: (etag: string) => void) {
  // The one erasure path (also used by self-deletion and admin deletion): every row and file of the user.
  try {
    await eraseUser(
      ctx,
      id,
      { ...auditBase(req), via: 'scim' },
      {
        guard: async (trx) => {
          const before = await loadUser(trx, id);
          ifMatch(etagOf(before.updated_at));
        },
      },
    );
  } catch (e) {
    if (e instanceof AppError && e.code === 'last_admin')
      throw new ScimError(409, 'The last active administrator cannot be deleted');
    if (e instanceof AppError && e.code === 'not_found') throw scimNotFound('User');
    throw e;
  }
  await apiKeyService(ctx).invalidate({ user: id });
}
