/**
 * The declarative decision table: role × ownership × grant kind × action × resource type, checked
 * against the real API (the per-resource endpoint, the grant endpoint for `share`, and the
 * permission matrix, which must agree with enforcement). Zero mismatches allowed.
 *
 * Two test-only resource types are registered here: `test_doc` (rows in a table with an owner;
 * changing one needs the `workspace.knowledge` permission) and `test_item` (no owner row: grants
 * only, like a model from a connection).
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { actorForUser, can, decide, registerResourceType } from '../../server/modules/access/index.js';
import { call, describeMatrix, makeUser, matrix, type TestApp } from '../harness.js';
import { createGroup, world, type World } from './helpers.js';

registerResourceType({
  type: 'test_doc',
  table: { name: 'access_test_docs', id: 'id', owner: 'owner_id' },
  workspacePermission: 'workspace.knowledge',
});
registerResourceType({ type: 'test_item' });

type Role = 'admin' | 'admin-nobypass' | 'user' | 'user-nows' | 'pending';
type Ownership = 'own' | 'other' | 'n/a';
type GrantKind = 'none' | 'user:read' | 'user:write' | 'group:read' | 'group:write' | 'foreign-group:write';
type Row = [type: 'test_doc' | 'test_item', role: Role, own: Ownership, grant: GrantKind, expected: string];

// expected: r = read, w = write, s = share (grant to others), d = delete; '-' = denied.
const TABLE: Row[] = [
  // ---- test_doc (owned; write/share/delete need workspace.knowledge for non-admins)
  ['test_doc', 'admin', 'own', 'none', 'rwsd'],
  ['test_doc', 'admin', 'own', 'group:read', 'rwsd'],
  ['test_doc', 'admin', 'own', 'group:write', 'rwsd'],
  ['test_doc', 'admin', 'other', 'none', 'rwsd'],
  ['test_doc', 'admin', 'other', 'user:read', 'rwsd'],
  ['test_doc', 'admin', 'other', 'user:write', 'rwsd'],
  ['test_doc', 'admin', 'other', 'group:read', 'rwsd'],
  ['test_doc', 'admin', 'other', 'group:write', 'rwsd'],
  ['test_doc', 'admin', 'other', 'foreign-group:write', 'rwsd'],

  ['test_doc', 'admin-nobypass', 'own', 'none', 'rwsd'],
  ['test_doc', 'admin-nobypass', 'own', 'group:read', 'rwsd'],
  ['test_doc', 'admin-nobypass', 'own', 'group:write', 'rwsd'],
  ['test_doc', 'admin-nobypass', 'other', 'none', '----'],
  ['test_doc', 'admin-nobypass', 'other', 'user:read', 'r---'],
  ['test_doc', 'admin-nobypass', 'other', 'user:write', 'rw--'],
  ['test_doc', 'admin-nobypass', 'other', 'group:read', 'r---'],
  ['test_doc', 'admin-nobypass', 'other', 'group:write', 'rw--'],
  ['test_doc', 'admin-nobypass', 'other', 'foreign-group:write', '----'],

  ['test_doc', 'user', 'own', 'none', 'rwsd'],
  ['test_doc', 'user', 'own', 'group:read', 'rwsd'],
  ['test_doc', 'user', 'own', 'group:write', 'rwsd'],
  ['test_doc', 'user', 'other', 'none', '----'],
  ['test_doc', 'user', 'other', 'user:read', 'r---'],
  ['test_doc', 'user', 'other', 'user:write', 'rw--'],
  ['test_doc', 'user', 'other', 'group:read', 'r---'],
  ['test_doc', 'user', 'other', 'group:write', 'rw--'],
  ['test_doc', 'user', 'other', 'foreign-group:write', '----'],

  ['test_doc', 'user-nows', 'own', 'none', 'r---'],
  ['test_doc', 'user-nows', 'own', 'group:read', 'r---'],
  ['test_doc', 'user-nows', 'own', 'group:write', 'r---'],
  ['test_doc', 'user-nows', 'other', 'none', '----'],
  ['test_doc', 'user-nows', 'other', 'user:read', 'r---'],
  ['test_doc', 'user-nows', 'other', 'user:write', 'r---'],
  ['test_doc', 'user-nows', 'other', 'group:read', 'r---'],
  ['test_doc', 'user-nows', 'other', 'group:write', 'r---'],
  ['test_doc', 'user-nows', 'other', 'foreign-group:write', '----'],

  ['test_doc', 'pending', 'own', 'none', '----'],
  ['test_doc', 'pending', 'own', 'group:write', '----'],
  ['test_doc', 'pending', 'other', 'none', '----'],
  ['test_doc', 'pending', 'other', 'user:read', '----'],
  ['test_doc', 'pending', 'other', 'user:write', '----'],
  ['test_doc', 'pending', 'other', 'group:write', '----'],

  // ---- test_item (no owner: grants only; admins manage its access even without the bypass)
  ['test_item', 'admin', 'n/a', 'none', 'rwsd'],
  ['test_item', 'admin', 'n/a', 'user:read', 'rwsd'],
  ['test_item', 'admin', 'n/a', 'group:write', 'rwsd'],
  ['test_item', 'admin', 'n/a', 'foreign-group:write', 'rwsd'],

  ['test_item', 'admin-nobypass', 'n/a', 'none', '--s-'],
  ['test_item', 'admin-nobypass', 'n/a', 'user:read', 'r-s-'],
  ['test_item', 'admin-nobypass', 'n/a', 'user:write', 'rws-'],
  ['test_item', 'admin-nobypass', 'n/a', 'group:read', 'r-s-'],
  ['test_item', 'admin-nobypass', 'n/a', 'group:write', 'rws-'],
  ['test_item', 'admin-nobypass', 'n/a', 'foreign-group:write', '--s-'],

  ['test_item', 'user', 'n/a', 'none', '----'],
  ['test_item', 'user', 'n/a', 'user:read', 'r---'],
  ['test_item', 'user', 'n/a', 'user:write', 'rw--'],
  ['test_item', 'user', 'n/a', 'group:read', 'r---'],
  ['test_item', 'user', 'n/a', 'group:write', 'rw--'],
  ['test_item', 'user', 'n/a', 'foreign-group:write', '----'],

  ['test_item', 'user-nows', 'n/a', 'none', '----'],
  ['test_item', 'user-nows', 'n/a', 'user:read', 'r---'],
  ['test_item', 'user-nows', 'n/a', 'user:write', 'rw--'],
  ['test_item', 'user-nows', 'n/a', 'group:write', 'rw--'],

  ['test_item', 'pending', 'n/a', 'none', '----'],
  ['test_item', 'pending', 'n/a', 'user:write', '----'],
  ['test_item', 'pending', 'n/a', 'group:write', '----'],
];

const ACTIONS = ['read', 'write', 'share', 'delete'] as const;
const letters = (p: Record<(typeof ACTIONS)[number], boolean>) =>
  ACTIONS.map((a, i) => (p[a] ? 'rwsd'[i] : '-')).join('');

interface Subject {
  id: string;
  token: string;
  groupId: string;
}

async function createDocsTable(app: TestApp) {
  await sql`create table access_test_docs (id varchar(64) primary key, owner_id varchar(64) not null)`.execute(
    app.ctx.db,
  );
}

async function insertGrant(
  app: TestApp,
  type: string,
  id: string,
  principalType: string,
  principalId: string,
  permission: string,
) {
  const now = Date.now();
  await app.ctx.db
    .insertInto('resource_grants')
    .values({
      id: randomUUID(),
      resource_type: type,
      resource_id: id,
      principal_type: principalType as 'user',
      principal_id: principalId,
      permission: permission as 'read',
      granted_by: null,
      created_at: now,
      updated_at: now,
    })
    .execute();
}

describeMatrix('decision table', matrix(), (b) => {
  let on: World;
  let off: World;
  beforeAll(async () => {
    on = await world(b);
    off = await world(b, { BYPASS_ADMIN_ACCESS_CONTROL: 'false' });
    await createDocsTable(on.app);
    await createDocsTable(off.app);
  });
  afterAll(async () => {
    await on?.app.close();
    await off?.app.close();
  });

  it('every row of the table holds against the API, the matrix and can()', async () => {
    const mismatches: string[] = [];
    for (const w of [on, off]) {
      const app = w.app;
      const roles: Role[] = w === on ? ['admin', 'user', 'user-nows', 'pending'] : ['admin-nobypass'];
      // Other people: the owner of "other" docs, a stranger (member of the foreign group), a grant target.
      const owner = await makeUser(app, {});
      const stranger = await makeUser(app, {});
      const target = await makeUser(app, {});
      const ws = await createGroup(w, 'workspace-knowledge', {
        members: [owner.user.id],
        permissions: { workspace: { knowledge: true } },
      });
      const foreign = await createGroup(w, 'foreign', { members: [stranger.user.id] });

      const subjects = new Map<Role, Subject>();
      for (const role of roles) {
        let id: string;
        let token: string;
        if (role === 'admin' || role === 'admin-nobypass') {
          id = w.admin.id;
          token = w.admin.token;
        } else {
          const u = await makeUser(app, { role: role === 'pending' ? 'pending' : 'user' });
          id = u.user.id;
          token = u.token;
          if (role === 'user')
            await call(app, 'POST', `/api/v1/groups/${ws}/members`, { token: w.admin.token, body: { user_ids: [id] } });
        }
        const groupId = await createGroup(w, `own-${role}`, { members: [id] });
        subjects.set(role, { id, token, groupId });
      }

      for (const [type, role, ownership, grantKind, expected] of TABLE) {
        if (!roles.includes(role)) continue;
        const s = subjects.get(role)!;
        const id = `${type}-${randomUUID()}`;
        if (type === 'test_doc')
          await sql`insert into access_test_docs (id, owner_id) values (${id}, ${ownership === 'own' ? s.id : owner.user.id})`.execute(
            app.ctx.db,
          );
        if (grantKind !== 'none') {
          const [kind, perm] = grantKind.split(':') as [string, string];
          if (kind === 'user') await insertGrant(app, type, id, 'user', s.id, perm);
          else if (kind === 'group') await insertGrant(app, type, id, 'group', s.groupId, perm);
          else await insertGrant(app, type, id, 'group', foreign, perm);
        }
        const label = `${type} ${role} ${ownership} ${grantKind}`;

        // 1. the per-resource endpoint (what the caller may do; 404 when they may not see it)
        const r = await call(app, 'GET', `/api/v1/access/${type}/${id}`, { token: s.token });
        let viaApi = '----';
        if (r.status === 200) viaApi = letters(r.body.permissions);
        else if (!(r.status === 404 || (role === 'pending' && r.status === 403)))
          mismatches.push(`${label}: unexpected status ${r.status} ${r.text}`);
        if (viaApi !== expected) mismatches.push(`${label}: api ${viaApi} ≠ ${expected}`);

        // 2. share, for real: grant read to a third user, then take it back
        const g = await call(app, 'POST', `/api/v1/access/${type}/${id}/grants`, {
          token: s.token,
          body: { principal_type: 'user', principal_id: target.user.id, permission: 'read' },
        });
        const shared = g.status === 201;
        if (shared !== expected.includes('s')) mismatches.push(`${label}: share via API ${g.status} ${g.text}`);
        if (!shared && ![403, 404].includes(g.status)) mismatches.push(`${label}: share refused with ${g.status}`);
        if (shared) {
          const d = await call(app, 'DELETE', `/api/v1/access/${type}/${id}/grants/${g.body.id}`, { token: s.token });
          if (d.status !== 200) mismatches.push(`${label}: revoke ${d.status}`);
        }

        // 3. the permission matrix: same answer, same code path
        const m = await call(app, 'GET', '/api/v1/permissions/matrix', {
          token: w.admin.token,
          query: { user_id: s.id, resource_type: type, resource_id: id },
        });
        const res = m.body?.items?.[0]?.resources?.[0];
        const viaMatrix = res ? letters(res.permissions) : 'missing';
        if (viaMatrix !== expected) mismatches.push(`${label}: matrix ${viaMatrix} ≠ ${expected}`);

        // 4. can() with the subject's current row, and the SQL listing (accessibleWhere) for read
        const row = await app.ctx.db.selectFrom('users').selectAll().where('id', '=', s.id).executeTakeFirstOrThrow();
        const actor = actorForUser(app.ctx, row);
        let viaCan = '';
        for (const [i, a] of ACTIONS.entries())
          viaCan += (await can(app.ctx.db, actor, a, { type, id })) ? 'rwsd'[i] : '-';
        if (viaCan !== expected) mismatches.push(`${label}: can() ${viaCan} ≠ ${expected}`);
        const listed = await call(app, 'GET', '/api/v1/permissions/matrix', {
          token: w.admin.token,
          query: { user_id: s.id, resource_type: type, resources_limit: '1000' },
        });
        const inList =
          (listed.body.items[0].resources as { resource_id: string }[]).some((x) => x.resource_id === id) ||
          (listed.body.items[0].unrestricted_types as string[]).includes(type);
        if (inList !== expected.startsWith('r')) mismatches.push(`${label}: listed=${inList} ≠ read ${expected}`);
      }
    }
    expect(mismatches).toEqual([]);
  });

  it('a missing resource is denied to everyone, admins included (404)', async () => {
    const r = await call(on.app, 'GET', `/api/v1/access/test_doc/nope-${randomUUID()}`, { token: on.admin.token });
    expect(r.status).toBe(404);
    const row = await on.app.ctx.db
      .selectFrom('users')
      .selectAll()
      .where('id', '=', on.admin.id)
      .executeTakeFirstOrThrow();
    const d = await decide(on.app.ctx.db, actorForUser(on.app.ctx, row), 'test_doc', ['nope']);
    expect(d.get('nope')).toMatchObject({ exists: false, read: false, write: false, share: false, delete: false });
    expect((await call(on.app, 'GET', '/api/v1/access/unknown_type/x', { token: on.admin.token })).status).toBe(404);
  });
});
