import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { registerResourceType } from '../../server/modules/access/index.js';
import { call, describeMatrix, makeUser, matrix } from '../harness.js';
import { createGroup, expectError, user, world, type World } from './helpers.js';

// A test-only resource type with an owner column (like knowledge bases, prompts, tools).
registerResourceType({
  type: 'test_note',
  table: { name: 'access_test_notes', id: 'id', owner: 'user_id' },
  workspacePermission: 'workspace.prompts',
});

describeMatrix('grants and the permission matrix', matrix(), (b) => {
  let w: World;
  let owner: { id: string; token: string };
  let wsGroup: string;
  beforeAll(async () => {
    w = await world(b);
    await sql`create table access_test_notes (id varchar(64) primary key, user_id varchar(64) not null)`.execute(
      w.app.ctx.db,
    );
    owner = await user(w);
    wsGroup = await createGroup(w, 'prompt-writers', {
      members: [owner.id],
      permissions: { workspace: { prompts: true } },
    });
  });
  afterAll(async () => w?.app.close());

  async function note(ownerId = owner.id): Promise<string> {
    const id = `note-${randomUUID()}`;
    await sql`insert into access_test_notes (id, user_id) values (${id}, ${ownerId})`.execute(w.app.ctx.db);
    return id;
  }
  const grantTo = (token: string, id: string, body: Record<string, unknown>) =>
    call(w.app, 'POST', `/api/v1/access/test_note/${id}/grants`, { token, body });

  it('the owner shares, re-grants (replacing the permission), lists and revokes', async () => {
    const id = await note();
    const reader = await user(w);
    expectError(await call(w.app, 'GET', `/api/v1/access/test_note/${id}`, { token: reader.token }), 404, 'not_found');
    const g = await grantTo(owner.token, id, { principal_type: 'user', principal_id: reader.id, permission: 'read' });
    expect(g.status, g.text).toBe(201);
    expect(g.body).toMatchObject({
      resource_type: 'test_note',
      resource_id: id,
      principal_id: reader.id,
      permission: 'read',
      granted_by: owner.id,
    });
    const seen = await call(w.app, 'GET', `/api/v1/access/test_note/${id}`, { token: reader.token });
    expect(seen.body.permissions).toEqual({ read: true, write: false, share: false, delete: false });
    expect(seen.body.via).toEqual(['grant:user:read']);

    const up = await grantTo(owner.token, id, { principal_type: 'user', principal_id: reader.id, permission: 'write' });
    expect(up.body.id).toBe(g.body.id);
    expect(up.body.permission).toBe('write');
    const list = await call(w.app, 'GET', `/api/v1/access/test_note/${id}/grants`, { token: owner.token });
    expect(list.body.items).toHaveLength(1);

    // a write holder may not share or list grants (403: they can see the resource)
    expectError(
      await call(w.app, 'GET', `/api/v1/access/test_note/${id}/grants`, { token: reader.token }),
      403,
      'forbidden',
    );
    const third = await user(w);
    expectError(
      await grantTo(reader.token, id, { principal_type: 'user', principal_id: third.id, permission: 'read' }),
      403,
      'forbidden',
    );
    // a revoke with a grant id of another resource is not found (the id is matched with the resource)
    const other = await note();
    expectError(
      await call(w.app, 'DELETE', `/api/v1/access/test_note/${other}/grants/${g.body.id}`, { token: owner.token }),
      404,
      'not_found',
    );
    expect(
      (await call(w.app, 'DELETE', `/api/v1/access/test_note/${id}/grants/${g.body.id}`, { token: owner.token }))
        .status,
    ).toBe(200);
    expectError(await call(w.app, 'GET', `/api/v1/access/test_note/${id}`, { token: reader.token }), 404, 'not_found');

    const actions = (
      await w.app.ctx.db.selectFrom('audit_events').select('action').where('resource_id', '=', id).execute()
    ).map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['grant.created', 'grant.updated', 'grant.deleted']));
  });

  it('refuses grants the actor may not give', async () => {
    const id = await note();
    const target = await user(w);
    const stranger = await user(w);
    // not the owner, no access at all → 404
    expectError(
      await grantTo(stranger.token, id, { principal_type: 'user', principal_id: target.id, permission: 'read' }),
      404,
      'not_found',
    );
    // unknown, pending, deactivated principals; the owner themself
    expectError(
      await grantTo(owner.token, id, { principal_type: 'user', principal_id: randomUUID(), permission: 'read' }),
      404,
      'not_found',
    );
    const pending = await makeUser(w.app, { role: 'pending' });
    expectError(
      await grantTo(owner.token, id, { principal_type: 'user', principal_id: pending.user.id, permission: 'read' }),
      400,
      'invalid_grant',
    );
    const off = await makeUser(w.app, { active: false });
    expectError(
      await grantTo(owner.token, id, { principal_type: 'user', principal_id: off.user.id, permission: 'read' }),
      400,
      'invalid_grant',
    );
    expectError(
      await grantTo(owner.token, id, { principal_type: 'user', principal_id: owner.id, permission: 'write' }),
      400,
      'invalid_grant',
    );
    // groups: only those the (non-admin) owner belongs to; others look like they do not exist
    const foreign = await createGroup(w, `foreign-${randomUUID()}`, { members: [stranger.id] });
    expectError(
      await grantTo(owner.token, id, { principal_type: 'group', principal_id: foreign, permission: 'read' }),
      404,
      'not_found',
    );
    expectError(
      await grantTo(owner.token, id, { principal_type: 'group', principal_id: randomUUID(), permission: 'read' }),
      404,
      'not_found',
    );
    expect(
      (await grantTo(owner.token, id, { principal_type: 'group', principal_id: wsGroup, permission: 'read' })).status,
    ).toBe(201);
    // admins may grant to any group
    expect(
      (await grantTo(w.admin.token, id, { principal_type: 'group', principal_id: foreign, permission: 'read' })).status,
    ).toBe(201);
    // mass assignment and bad values
    for (const body of [
      { principal_type: 'user', principal_id: target.id, permission: 'read', granted_by: stranger.id },
      { principal_type: 'user', principal_id: target.id, permission: 'read', resource_id: 'other' },
      { principal_type: 'user', principal_id: target.id, permission: 'admin' },
      { principal_type: 'role', principal_id: 'admin', permission: 'read' },
    ])
      expectError(await grantTo(owner.token, id, body), 400, 'validation_failed');
    // an owner who loses the workspace permission can no longer share
    const loner = await user(w);
    const g = await createGroup(w, `ws-${loner.id}`, {
      members: [loner.id],
      permissions: { workspace: { prompts: true } },
    });
    const mine = await note(loner.id);
    expect(
      (await grantTo(loner.token, mine, { principal_type: 'user', principal_id: target.id, permission: 'read' }))
        .status,
    ).toBe(201);
    await call(w.app, 'DELETE', `/api/v1/groups/${g}/members/${loner.id}`, { token: w.admin.token });
    expectError(
      await grantTo(loner.token, mine, { principal_type: 'user', principal_id: target.id, permission: 'write' }),
      403,
      'forbidden',
    );
  });

  it('an admin with the bypass sees the reason in the answer', async () => {
    const id = await note();
    const r = await call(w.app, 'GET', `/api/v1/access/test_note/${id}`, { token: w.admin.token });
    expect(r.body.via).toEqual(['admin_bypass']);
  });

  it('the matrix: paginated, filtered by user, group and resource; same answers as enforcement', async () => {
    const id = await note();
    const reader = await user(w);
    await grantTo(owner.token, id, { principal_type: 'user', principal_id: reader.id, permission: 'read' });

    expectError(await call(w.app, 'GET', '/api/v1/permissions/matrix', { token: reader.token }), 403, 'admin_required');
    const all = await call(w.app, 'GET', '/api/v1/permissions/matrix', { token: w.admin.token, query: { limit: '2' } });
    expect(all.status, all.text).toBe(200);
    expect(all.body.items).toHaveLength(2);
    expect(all.body.total).toBeGreaterThanOrEqual(4);
    const page2 = await call(w.app, 'GET', '/api/v1/permissions/matrix', {
      token: w.admin.token,
      query: { limit: '2', page: '2' },
    });
    expect(page2.body.items[0].user.id).not.toBe(all.body.items[0].user.id);

    const byUser = await call(w.app, 'GET', '/api/v1/permissions/matrix', {
      token: w.admin.token,
      query: { user_id: reader.id, resource_type: 'test_note' },
    });
    expect(byUser.body.total).toBe(1);
    const item = byUser.body.items[0];
    expect(item.user).toMatchObject({ id: reader.id, role: 'user' });
    expect(item.resources).toEqual([
      {
        resource_type: 'test_note',
        resource_id: id,
        owner_id: owner.id,
        permissions: { read: true, write: false, share: false, delete: false },
        via: ['grant:user:read'],
      },
    ]);
    // feature permissions in the matrix equal what the user sees for themself
    const me = await call(w.app, 'GET', '/api/v1/users/me/permissions', { token: reader.token });
    expect(item.permissions).toEqual(me.body.permissions);
    expect(item.permission_via).toEqual(me.body.via);

    const byGroup = await call(w.app, 'GET', '/api/v1/permissions/matrix', {
      token: w.admin.token,
      query: { group_id: wsGroup },
    });
    expect(byGroup.body.items.map((i: { user: { id: string } }) => i.user.id)).toContain(owner.id);
    expect(byGroup.body.items.map((i: { user: { id: string } }) => i.user.id)).not.toContain(reader.id);

    const byResource = await call(w.app, 'GET', '/api/v1/permissions/matrix', {
      token: w.admin.token,
      query: { resource_type: 'test_note', resource_id: id, limit: '100' },
    });
    const readers = byResource.body.items
      .filter((i: { resources: { permissions: { read: boolean } }[] }) => i.resources[0]?.permissions.read)
      .map((i: { user: { id: string } }) => i.user.id)
      .sort();
    expect(readers).toEqual([w.admin.id, owner.id, reader.id].sort());

    expectError(
      await call(w.app, 'GET', '/api/v1/permissions/matrix', {
        token: w.admin.token,
        query: { resource_type: 'nope' },
      }),
      404,
      'not_found',
    );
    expectError(
      await call(w.app, 'GET', '/api/v1/permissions/matrix', { token: w.admin.token, query: { resource_id: id } }),
      400,
      'validation_failed',
    );
  });
});
