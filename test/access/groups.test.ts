import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { call, describeMatrix, matrix, type TestApp } from '../harness.js';
import { createGroup, expectError, user, world, type World } from './helpers.js';

describeMatrix('groups and permissions', matrix(), (b) => {
  let w: World;
  const extra: TestApp[] = [];
  beforeAll(async () => {
    w = await world(b);
  });
  afterAll(async () => {
    for (const a of extra) await a.close();
    await w?.app.close();
  });

  const admin = (method: string, url: string, body?: unknown) =>
    call(w.app, method, url, { token: w.admin.token, body });

  it('CRUD: create, read, list with member counts, update, delete', async () => {
    const c = await admin('POST', '/api/v1/groups', {
      name: 'Research',
      description: 'R&D',
      permissions: { workspace: { models: true } },
    });
    expect(c.status, c.text).toBe(201);
    expect(c.body).toMatchObject({
      name: 'Research',
      description: 'R&D',
      source: 'local',
      member_count: 0,
      created_by: w.admin.id,
      permissions: { workspace: { models: true, knowledge: false }, features: { api_keys: false } },
    });
    const id = c.body.id as string;
    expectError(await admin('POST', '/api/v1/groups', { name: 'research' }), 409, 'group_name_taken');

    const u1 = await user(w);
    const u2 = await user(w);
    const add = await admin('POST', `/api/v1/groups/${id}/members`, { user_ids: [u1.id, u2.id, u1.id] });
    expect(add.body).toMatchObject({ status: 'added', count: 2 });
    const again = await admin('POST', `/api/v1/groups/${id}/members`, { user_ids: [u1.id] });
    expect(again.body).toMatchObject({ added: [], count: 2 });

    const got = await admin('GET', `/api/v1/groups/${id}`);
    expect(got.body.member_count).toBe(2);
    const list = await admin('GET', '/api/v1/groups?query=resea');
    expect(list.body.items.map((g: { id: string }) => g.id)).toContain(id);
    expect(list.body.items.find((g: { id: string }) => g.id === id).member_count).toBe(2);
    const members = await admin('GET', `/api/v1/groups/${id}/members`);
    expect(members.body.items.map((m: { id: string }) => m.id).sort()).toEqual([u1.id, u2.id].sort());
    expect(members.text).not.toContain('password_hash');

    const p = await admin('PATCH', `/api/v1/groups/${id}`, {
      description: 'Research and development',
      permissions: { features: { api_keys: true } },
    });
    expect(p.status, p.text).toBe(200);
    // permissions merge: models stays granted, api_keys added
    expect(p.body.permissions).toMatchObject({ workspace: { models: true }, features: { api_keys: true } });
    const p2 = await admin('PATCH', `/api/v1/groups/${id}`, { permissions: { workspace: { models: false } } });
    expect(p2.body.permissions).toMatchObject({ workspace: { models: false }, features: { api_keys: true } });

    expect((await admin('DELETE', `/api/v1/groups/${id}/members/${u2.id}`)).status).toBe(200);
    expectError(await admin('DELETE', `/api/v1/groups/${id}/members/${u2.id}`), 404, 'not_found');
    expect((await admin('DELETE', `/api/v1/groups/${id}`)).status).toBe(200);
    expectError(await admin('GET', `/api/v1/groups/${id}`), 404, 'not_found');
    const left = await w.app.ctx.db.selectFrom('group_members').select('user_id').where('group_id', '=', id).execute();
    expect(left).toEqual([]);

    const actions = (
      await w.app.ctx.db
        .selectFrom('audit_events')
        .select(['action', 'actor_id'])
        .where('resource_id', '=', id)
        .execute()
    ).map((e) => e.action);
    for (const a of ['group.created', 'group.members_added', 'group.updated', 'group.member_removed', 'group.deleted'])
      expect(actions).toContain(a);
  });

  it('search treats % and _ literally', async () => {
    const a = await createGroup(w, 'Sale 50% off');
    const b2 = await createGroup(w, 'Sale 500 off');
    const r = await admin('GET', `/api/v1/groups?query=${encodeURIComponent('50%')}`);
    const ids = r.body.items.map((g: { id: string }) => g.id);
    expect(ids).toContain(a);
    expect(ids).not.toContain(b2);
  });

  it('every id in a request is checked; unknown fields (mass assignment) are refused', async () => {
    const id = await createGroup(w, `ids-${randomUUID()}`);
    const u = await user(w);
    const missing = randomUUID();
    const r = await admin('POST', `/api/v1/groups/${id}/members`, { user_ids: [u.id, missing] });
    expectError(r, 404, 'not_found');
    expect(r.body.error.details.user_ids).toEqual([missing]);
    expect((await admin('GET', `/api/v1/groups/${id}`)).body.member_count).toBe(0); // nothing added
    for (const body of [
      { name: 'x', id: 'chosen' },
      { name: 'x', created_by: u.id },
      { name: 'x', source: 'oidc' },
      { name: 'x', owner: u.id },
      { name: 'x', permissions: { workspace: { everything: true } } },
      { name: 'x', permissions: { admin: true } },
    ])
      expectError(await admin('POST', '/api/v1/groups', body), 400, 'validation_failed');
    expectError(await admin('PATCH', `/api/v1/groups/${id}`, { source: 'scim' }), 400, 'validation_failed');
    expectError(await admin('PATCH', `/api/v1/groups/${id}`, {}), 400, 'validation_failed');
    expectError(
      await admin('POST', `/api/v1/groups/${id}/members`, { user_ids: [u.id], role: 'admin' }),
      400,
      'validation_failed',
    );
  });

  it('a group grants permissions to its members; /users/me/permissions shows the effective set', async () => {
    const u = await user(w);
    const mine = async (token = u.token) => (await call(w.app, 'GET', '/api/v1/users/me/permissions', { token })).body;
    const before = await mine();
    expect(before.permissions).toEqual({
      workspace: { models: false, knowledge: false, prompts: false, tools: false, skills: false, tools_import: false },
      features: { api_keys: false },
    });
    expect(before.groups).toEqual([]);
    const g = await createGroup(w, `perm-${u.id}`, {
      members: [u.id],
      permissions: { workspace: { knowledge: true, tools_import: true } },
    });
    const after = await mine();
    expect(after.permissions.workspace).toMatchObject({ knowledge: true, tools_import: true, models: false });
    expect(after.via['workspace.knowledge']).toEqual([`group:${g}`]);
    expect(after.groups).toEqual([{ id: g, name: `perm-${u.id}` }]);
    // removing the member removes the permission at once
    await admin('DELETE', `/api/v1/groups/${g}/members/${u.id}`);
    expect((await mine()).permissions.workspace.knowledge).toBe(false);

    // admins hold everything, pending accounts nothing
    const a = await mine(w.admin.token);
    expect(Object.values(a.permissions.workspace).every(Boolean)).toBe(true);
    expect(a.via['features.api_keys']).toEqual(['role:admin']);
    const p = await user(w, 'pending');
    await createGroup(w, `pend-${p.id}`, { members: [p.id], permissions: { workspace: { models: true } } });
    const pp = await mine(p.token);
    expect(pp.permissions.workspace.models).toBe(false);
  });

  it('the defaults come from the USER_PERMISSIONS_* settings; a group cannot take one away', async () => {
    const w2 = await world(b, {
      USER_PERMISSIONS_WORKSPACE_MODELS_ACCESS: 'true',
      USER_PERMISSIONS_WORKSPACE_SKILLS_ACCESS: 'true',
    });
    extra.push(w2.app);
    const u = await user(w2);
    await createGroup(w2, 'nothing', { members: [u.id], permissions: { workspace: { models: false } } });
    const r = await call(w2.app, 'GET', '/api/v1/users/me/permissions', { token: u.token });
    expect(r.body.permissions.workspace).toMatchObject({ models: true, skills: true, knowledge: false, tools: false });
    expect(r.body.via['workspace.models']).toEqual(['default']);
  });

  it('deleting a group removes the grants made to it', async () => {
    const g = await createGroup(w, `grants-${randomUUID()}`);
    const now = Date.now();
    await w.app.ctx.db
      .insertInto('resource_grants')
      .values({
        id: randomUUID(),
        resource_type: 'model',
        resource_id: 'm1',
        principal_type: 'group',
        principal_id: g,
        permission: 'read',
        granted_by: w.admin.id,
        created_at: now,
        updated_at: now,
      })
      .execute();
    await admin('DELETE', `/api/v1/groups/${g}`);
    const rows = await w.app.ctx.db.selectFrom('resource_grants').select('id').where('principal_id', '=', g).execute();
    expect(rows).toEqual([]);
  });
});
