import { afterAll, beforeAll, expect, it } from 'vitest';
import { call, describeMatrix, matrix } from '../harness.js';
import { createGroup, expectError, user, world, type World } from '../access/helpers.js';

type U = { id: string; token: string };

describeMatrix('workspace prompts', matrix(), (b) => {
  let w: World;
  let writer: U; // member of a group granting workspace.prompts
  let other: U; // also a prompt author
  let plain: U; // no workspace permission

  beforeAll(async () => {
    w = await world(b);
    writer = await user(w);
    other = await user(w);
    plain = await user(w);
    await createGroup(w, 'Prompt authors', {
      members: [writer.id, other.id],
      permissions: { workspace: { prompts: true } },
    });
  });
  afterAll(async () => {
    await w?.app.close();
  });

  const as = (u: { token: string }, method: string, url: string, body?: unknown) =>
    call(w.app, method, url, { token: u.token, body });
  async function newPrompt(u: U, command: string, content = `content of ${command}`): Promise<string> {
    const r = await as(u, 'POST', '/api/v1/prompts', { command, title: `Title ${command}`, content });
    expect(r.status, r.text).toBe(201);
    return r.body.id as string;
  }
  async function auditActions(resourceId: string): Promise<string[]> {
    const rows = await w.app.ctx.db
      .selectFrom('audit_events')
      .select(['action'])
      .where('resource_id', '=', resourceId)
      .orderBy('seq')
      .execute();
    return rows.map((r) => r.action);
  }

  it('creating needs the workspace permission (group grant or admin); anonymous callers get 401', async () => {
    expectError(
      await as(plain, 'POST', '/api/v1/prompts', { command: 'x', title: 'X', content: 'y' }),
      403,
      'permission_required',
    );
    expect(
      (await call(w.app, 'POST', '/api/v1/prompts', { body: { command: 'x', title: 'X', content: 'y' } })).status,
    ).toBe(401);
    expect((await call(w.app, 'GET', '/api/v1/prompts')).status).toBe(401);
    await newPrompt(writer, 'perm-check');
    await newPrompt({ id: w.admin.id, token: w.admin.token }, 'admin-one');
  });

  it('CRUD by the owner, every change audited', async () => {
    const c = await as(writer, 'POST', '/api/v1/prompts', {
      command: '/Summarise',
      title: 'Summarise',
      content: 'Summarise the text below.',
    });
    expect(c.status, c.text).toBe(201);
    expect(c.body).toMatchObject({ user_id: writer.id, command: 'summarise', title: 'Summarise' });
    const id = c.body.id as string;

    const got = await as(writer, 'GET', `/api/v1/prompts/${id}`);
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({
      content: 'Summarise the text below.',
      permissions: { read: true, write: true, share: true, delete: true },
    });
    const list = await as(writer, 'GET', '/api/v1/prompts');
    expect(list.body.items.map((p: { id: string }) => p.id)).toContain(id);

    const p = await as(writer, 'PATCH', `/api/v1/prompts/${id}`, { title: 'Summary', content: 'Shorter.' });
    expect(p.status, p.text).toBe(200);
    expect(p.body).toMatchObject({ title: 'Summary', content: 'Shorter.', command: 'summarise' });
    expect((await as(writer, 'GET', `/api/v1/prompts/${id}`)).body.title).toBe('Summary');

    expectError(
      await as(writer, 'POST', '/api/v1/prompts', { command: 'summarise', title: 'Again', content: 'x' }),
      409,
      'conflict',
    );
    // the same command is free for someone else
    await newPrompt(other, 'summarise');
    expectError(
      await as(writer, 'POST', '/api/v1/prompts', { command: 'bad command!', title: 'X', content: 'x' }),
      400,
      'validation_failed',
    );

    const d = await as(writer, 'DELETE', `/api/v1/prompts/${id}`);
    expect(d.status, d.text).toBe(200);
    expectError(await as(writer, 'GET', `/api/v1/prompts/${id}`), 404, 'not_found');
    expect(await auditActions(id)).toEqual(['prompt.created', 'prompt.updated', 'prompt.deleted']);
  });

  it('another user’s prompt is 404 for read, change and delete, and absent from their list', async () => {
    const id = await newPrompt(writer, 'private-one', 'secret recipe');
    for (const u of [other, plain]) {
      expectError(await as(u, 'GET', `/api/v1/prompts/${id}`), 404, 'not_found');
      expectError(await as(u, 'PATCH', `/api/v1/prompts/${id}`, { title: 'Mine now' }), 404, 'not_found');
      expectError(await as(u, 'DELETE', `/api/v1/prompts/${id}`), 404, 'not_found');
      const list = await as(u, 'GET', '/api/v1/prompts');
      expect(list.status).toBe(200);
      expect(list.text).not.toContain(id);
      expect(list.text).not.toContain('secret recipe');
      expectError(await as(u, 'GET', `/api/v1/access/prompt/${id}/grants`), 404, 'not_found');
    }
    const row = await w.app.ctx.db.selectFrom('prompts').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    expect(row.title).toBe('Title private-one');
    expectError(await as(writer, 'GET', '/api/v1/prompts/does-not-exist'), 404, 'not_found');
  });

  it('refuses mass assignment of the owner', async () => {
    for (const extra of [{ user_id: other.id }, { owner_id: other.id }, { id: 'chosen-id' }, { created_at: 1 }]) {
      expectError(
        await as(writer, 'POST', '/api/v1/prompts', { command: 'mass', title: 'M', content: 'm', ...extra }),
        400,
        'validation_failed',
      );
    }
    const id = await newPrompt(writer, 'mass');
    expectError(await as(writer, 'PATCH', `/api/v1/prompts/${id}`, { user_id: other.id }), 400, 'validation_failed');
    const row = await w.app.ctx.db.selectFrom('prompts').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    expect(row.user_id).toBe(writer.id);
    expect((await as(other, 'GET', `/api/v1/prompts/${id}`)).status).toBe(404);
  });

  it('shares through the access grants: read lets the grantee use it, write lets them change it, never delete', async () => {
    const id = await newPrompt(writer, 'shared');
    const grantRead = await as(writer, 'POST', `/api/v1/access/prompt/${id}/grants`, {
      principal_type: 'user',
      principal_id: plain.id,
      permission: 'read',
    });
    expect(grantRead.status, grantRead.text).toBe(201);
    const seen = await as(plain, 'GET', `/api/v1/prompts/${id}`);
    expect(seen.status).toBe(200);
    expect(seen.body.permissions).toMatchObject({ read: true, write: false, delete: false });
    expect((await as(plain, 'GET', '/api/v1/prompts')).body.items.map((p: { id: string }) => p.id)).toContain(id);
    expectError(await as(plain, 'PATCH', `/api/v1/prompts/${id}`, { title: 'Changed' }), 403, 'forbidden');
    expectError(await as(plain, 'DELETE', `/api/v1/prompts/${id}`), 403, 'forbidden');

    // a group write grant (the owner may only share with groups they belong to) to a permitted
    // author: they may change it, not delete it
    const group = await createGroup(w, 'Prompt editors', { members: [other.id, writer.id] });
    const gw = await as(writer, 'POST', `/api/v1/access/prompt/${id}/grants`, {
      principal_type: 'group',
      principal_id: group,
      permission: 'write',
    });
    expect(gw.status, gw.text).toBe(201);
    const ch = await as(other, 'PATCH', `/api/v1/prompts/${id}`, { content: 'Edited by a colleague' });
    expect(ch.status, ch.text).toBe(200);
    expect(ch.body.user_id).toBe(writer.id);
    expectError(await as(other, 'DELETE', `/api/v1/prompts/${id}`), 403, 'forbidden');

    // deleting the prompt removes its grants
    expect((await as(writer, 'DELETE', `/api/v1/prompts/${id}`)).status).toBe(200);
    const grants = await w.app.ctx.db
      .selectFrom('resource_grants')
      .select('id')
      .where('resource_type', '=', 'prompt')
      .where('resource_id', '=', id)
      .execute();
    expect(grants).toEqual([]);
    expectError(await as(plain, 'GET', `/api/v1/prompts/${id}`), 404, 'not_found');
  });

  it('a pending account sees nothing', async () => {
    const pending = await user(w, 'pending');
    const r = await as(pending, 'GET', '/api/v1/prompts');
    expect(r.status).toBe(403);
  });
});
