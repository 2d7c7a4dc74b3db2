/**
 * SCIM 2.0 provisioning in the shapes Okta and Entra ID send (request bodies copied from their
 * documented provisioning traffic): discovery, Users and Groups CRUD, PATCH with and without a
 * path, filters, paging, projections, ETags, errors, and deprovisioning that locks the person out
 * (cookie, bearer JWT, API key) at once.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { call, createTestApp, describeMatrix, matrix, signup, sleep, type Res, type TestApp } from '../harness.js';

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';
const LIST = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
const BASE = '/api/v1/scim/v2';

const TOKEN = randomBytes(32).toString('base64url');

function scim(
  app: TestApp,
  method: string,
  url: string,
  body?: unknown,
  o: { token?: string | null; headers?: Record<string, string>; contentType?: string } = {},
): Promise<Res> {
  const headers: Record<string, string> = { ...(o.headers ?? {}) };
  const token = o.token === undefined ? TOKEN : o.token;
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = o.contentType ?? 'application/scim+json; charset=utf-8';
  return call(app, method, `${BASE}${url}`, {
    headers,
    rawBody: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
}

const q = (filter: string) => `/Users?filter=${encodeURIComponent(filter)}`;

function expectScimError(r: Res, status: number, scimType?: string) {
  expect(r.status).toBe(status);
  expect(r.body.schemas).toEqual([ERROR]);
  expect(r.body.status).toBe(String(status));
  if (scimType) expect(r.body.scimType).toBe(scimType);
  expect(String(r.headers['content-type'])).toMatch(/^application\/scim\+json/);
}

function oktaUser(email: string, extra: Record<string, unknown> = {}) {
  return {
    schemas: [USER],
    userName: email,
    name: { givenName: 'Okta', familyName: 'Person' },
    emails: [{ primary: true, value: email, type: 'work' }],
    displayName: 'Okta Person',
    locale: 'en-US',
    externalId: `00u${randomBytes(4).toString('hex')}`,
    groups: [],
    password: 'never-stored-1!',
    active: true,
    ...extra,
  };
}

function entraUser(email: string, extra: Record<string, unknown> = {}) {
  return {
    schemas: [USER, ENTERPRISE],
    externalId: `entra-${randomBytes(4).toString('hex')}`,
    userName: email,
    active: true,
    displayName: 'Entra Person',
    emails: [{ primary: true, type: 'work', value: email }],
    meta: { resourceType: 'User' },
    name: { formatted: 'Entra Person', familyName: 'Person', givenName: 'Entra' },
    roles: [],
    [ENTERPRISE]: { employeeNumber: '42', department: 'Research' },
    ...extra,
  };
}

describeMatrix('SCIM 2.0', matrix(), (b) => {
  let app: TestApp;
  let admin: Awaited<ReturnType<typeof signup>>;
  beforeEach(async () => {
    app = await createTestApp(b, {
      env: {
        ENABLE_SCIM: 'true',
        SCIM_TOKEN: TOKEN,
        SCIM_AUTH_PROVIDER: 'oidc',
        USER_PERMISSIONS_FEATURES_API_KEYS: 'true',
      },
    });
    admin = await signup(app);
  });
  afterEach(async () => app.close());

  describe('authentication', () => {
    it('refuses a missing, wrong or session token with the SCIM error schema', async () => {
      const none = await scim(app, 'GET', '/Users', undefined, { token: null });
      expectScimError(none, 401);
      expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
      expectScimError(await scim(app, 'GET', '/Users', undefined, { token: TOKEN.slice(0, -1) + 'x' }), 401);
      expectScimError(await scim(app, 'GET', '/Users', undefined, { token: admin.token }), 401);
      // nothing was created by the refused requests
      const post = await scim(app, 'POST', '/Users', oktaUser('intruder@example.com'), { token: 'nope' });
      expectScimError(post, 401);
      expect((await scim(app, 'GET', q('userName eq "intruder@example.com"'))).body.totalResults).toBe(0);
      await app.ctx.audit.flush();
      const audited = await app.ctx.db
        .selectFrom('audit_events')
        .select('details')
        .where('action', '=', 'auth.failure')
        .execute();
      const scimFailures = audited
        .map((r) => JSON.parse(r.details ?? '{}') as { method?: string })
        .filter((d) => d.method === 'scim');
      expect(scimFailures.length).toBe(4);
    });

    it('is 404 while ENABLE_SCIM is off', async () => {
      const off = await createTestApp(b, { env: { SCIM_TOKEN: TOKEN } });
      try {
        expectScimError(await scim(off, 'GET', '/Users'), 404);
      } finally {
        await off.close();
      }
    });

    it('accepts a rotated token from SCIM_TOKEN_FILE without a restart', async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'scim-token-'));
      const file = path.join(dir, 'token');
      const a = randomBytes(32).toString('hex');
      const bTok = randomBytes(32).toString('hex');
      writeFileSync(file, `${a}\n`);
      const rot = await createTestApp(b, { env: { ENABLE_SCIM: 'true', SCIM_TOKEN_FILE: file } });
      try {
        expect((await scim(rot, 'GET', '/ServiceProviderConfig', undefined, { token: a })).status).toBe(200);
        expect((await scim(rot, 'GET', '/ServiceProviderConfig', undefined, { token: bTok })).status).toBe(401);
        await sleep(1100);
        writeFileSync(file, `${a}\n${bTok}\n`);
        expect((await scim(rot, 'GET', '/ServiceProviderConfig', undefined, { token: bTok })).status).toBe(200);
        expect((await scim(rot, 'GET', '/ServiceProviderConfig', undefined, { token: a })).status).toBe(200);
        await sleep(1100);
        writeFileSync(file, `${bTok}\n`);
        expect((await scim(rot, 'GET', '/ServiceProviderConfig', undefined, { token: a })).status).toBe(401);
        expect((await scim(rot, 'GET', '/ServiceProviderConfig', undefined, { token: bTok })).status).toBe(200);
      } finally {
        await rot.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  it('discovery: ServiceProviderConfig, ResourceTypes, Schemas', async () => {
    const spc = await scim(app, 'GET', '/ServiceProviderConfig');
    expect(spc.status).toBe(200);
    expect(spc.body.patch.supported).toBe(true);
    expect(spc.body.filter).toEqual({ supported: true, maxResults: 200 });
    expect(spc.body.etag.supported).toBe(true);
    expect(spc.body.bulk.supported).toBe(false);
    expect(spc.body.authenticationSchemes[0].type).toBe('oauthbearertoken');
    const rt = await scim(app, 'GET', '/ResourceTypes');
    expect(rt.body.schemas).toEqual([LIST]);
    expect(rt.body.Resources.map((r: { id: string }) => r.id)).toEqual(['User', 'Group']);
    expect((await scim(app, 'GET', '/ResourceTypes/User')).body.endpoint).toBe('/Users');
    const schemas = await scim(app, 'GET', '/Schemas');
    expect(schemas.body.Resources.map((s: { id: string }) => s.id)).toContain(USER);
    const user = await scim(app, 'GET', `/Schemas/${USER}`);
    expect(user.status).toBe(200);
    const userName = user.body.attributes.find((a: { name: string }) => a.name === 'userName');
    expect(userName).toMatchObject({ required: true, uniqueness: 'server', caseExact: false });
    expectScimError(await scim(app, 'GET', '/Schemas/urn:nope'), 404);
  });

  it('Okta: match, create, read, replace, deactivate, reactivate', async () => {
    const email = 'okta.person@example.com';
    const probe = await scim(app, 'GET', `${q(`userName eq "${email}"`)}&startIndex=1&count=100`);
    expect(probe.status).toBe(200);
    expect(probe.body).toMatchObject({
      schemas: [LIST],
      totalResults: 0,
      startIndex: 1,
      itemsPerPage: 0,
      Resources: [],
    });

    const body = oktaUser(email);
    const created = await scim(app, 'POST', '/Users', body);
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    expect(created.headers.location).toMatch(new RegExp(`/api/v1/scim/v2/Users/${id}$`));
    expect(created.headers.etag).toBe(created.body.meta.version);
    expect(created.body).toMatchObject({
      schemas: [USER],
      userName: email,
      externalId: body.externalId,
      active: true,
      displayName: 'Okta Person',
      name: { givenName: 'Okta', familyName: 'Person' },
      emails: [{ value: email, primary: true }],
      meta: { resourceType: 'User' },
    });
    expect(created.body).not.toHaveProperty('password');
    // the account exists, active, role user, no password stored
    const row = await app.ctx.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ email, role: 'user', active: 1, password_hash: null });
    // SCIM_AUTH_PROVIDER=oidc: externalId is the account's OIDC subject
    const ident = await app.ctx.db
      .selectFrom('identities')
      .selectAll()
      .where('provider', '=', 'oidc')
      .where('subject', '=', body.externalId)
      .executeTakeFirst();
    expect(ident?.user_id).toBe(id);

    expectScimError(await scim(app, 'POST', '/Users', oktaUser(email)), 409, 'uniqueness');
    expectScimError(await scim(app, 'POST', '/Users', oktaUser('OKTA.PERSON@example.com')), 409, 'uniqueness');
    expect((await scim(app, 'GET', q(`userName eq "${email.toUpperCase()}"`))).body.totalResults).toBe(1);

    const got = await scim(app, 'GET', `/Users/${id}`);
    expect(got.status).toBe(200);
    expect(got.headers.etag).toBe(got.body.meta.version);

    const put = await scim(app, 'PUT', `/Users/${id}`, {
      ...body,
      id,
      name: { givenName: 'Okay', familyName: 'Person' },
      displayName: 'Okay Person',
    });
    expect(put.status).toBe(200);
    expect(put.body.displayName).toBe('Okay Person');
    expect(put.body.name.givenName).toBe('Okay');
    expect(put.body.meta.version).not.toBe(got.body.meta.version);

    const off = await scim(app, 'PATCH', `/Users/${id}`, {
      schemas: [PATCH],
      Operations: [{ op: 'replace', value: { active: false } }],
    });
    expect(off.status).toBe(200);
    expect(off.body.active).toBe(false);
    expect(
      (await app.ctx.db.selectFrom('users').select('active').where('id', '=', id).executeTakeFirstOrThrow()).active,
    ).toBe(0);
    const on = await scim(app, 'PATCH', `/Users/${id}`, {
      schemas: [PATCH],
      Operations: [{ op: 'replace', value: { id, active: true } }],
    });
    expect(on.status).toBe(200);
    expect(on.body.active).toBe(true);
    const trail = await app.ctx.db
      .selectFrom('audit_events')
      .select(['action', 'details'])
      .where('resource_id', '=', id)
      .orderBy('seq')
      .execute();
    expect(trail.map((t) => t.action)).toEqual(['user.created', 'user.updated', 'user.deactivated', 'user.activated']);
    expect(trail.every((t) => JSON.parse(t.details ?? '{}').via === 'scim')).toBe(true);
  });

  it('Entra ID: create with the enterprise extension, multi-operation PATCH, string booleans, delete', async () => {
    const email = 'entra.person@example.com';
    const created = await scim(app, 'POST', '/Users', entraUser(email));
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    expect(created.body.userName).toBe(email);
    expect(created.body).not.toHaveProperty(ENTERPRISE);

    const patched = await scim(app, 'PATCH', `/Users/${id}`, {
      schemas: [PATCH],
      Operations: [
        { op: 'Replace', path: 'displayName', value: 'Entra Renamed' },
        { op: 'Replace', path: 'emails[type eq "work"].value', value: 'entra.renamed@example.com' },
        { op: 'Replace', path: 'name.givenName', value: 'Renamed' },
        { op: 'Add', path: `${ENTERPRISE}:department`, value: 'Ops' },
        { op: 'Replace', path: 'userName', value: 'entra.renamed@example.com' },
        { op: 'Add', path: 'externalId', value: 'entra-new-ext' },
      ],
    });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({
      displayName: 'Entra Renamed',
      userName: 'entra.renamed@example.com',
      externalId: 'entra-new-ext',
      name: { givenName: 'Renamed' },
      emails: [{ value: 'entra.renamed@example.com' }],
    });
    const row = await app.ctx.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    expect(row.email).toBe('entra.renamed@example.com');
    // the OIDC identity followed the externalId
    const idents = await app.ctx.db
      .selectFrom('identities')
      .select('subject')
      .where('user_id', '=', id)
      .where('provider', '=', 'oidc')
      .execute();
    expect(idents.map((i) => i.subject)).toEqual(['entra-new-ext']);

    const disabled = await scim(app, 'PATCH', `/Users/${id}`, {
      schemas: [PATCH],
      Operations: [{ op: 'Replace', path: 'active', value: 'False' }],
    });
    expect(disabled.status).toBe(200);
    expect(disabled.body.active).toBe(false);
    // Entra's PATCH without a path, with dotted keys
    const noPath = await scim(app, 'PATCH', `/Users/${id}`, {
      schemas: [PATCH],
      Operations: [{ op: 'Replace', value: { 'name.familyName': 'Surname', active: 'True' } }],
    });
    expect(noPath.status).toBe(200);
    expect(noPath.body.name.familyName).toBe('Surname');
    expect(noPath.body.active).toBe(true);

    expect((await scim(app, 'DELETE', `/Users/${id}`)).status).toBe(204);
    expectScimError(await scim(app, 'GET', `/Users/${id}`), 404);
    expect(await app.ctx.db.selectFrom('users').select('id').where('id', '=', id).executeTakeFirst()).toBeUndefined();
  });

  it('filters: every operator, and/or/not, parentheses, value paths; an unsupported filter is 400 invalidFilter', async () => {
    const a = (await scim(app, 'POST', '/Users', oktaUser('alpha@corp.example', { displayName: 'Alpha One' }))).body;
    const b2 = (await scim(app, 'POST', '/Users', entraUser('beta@other.example', { displayName: 'Beta Two' }))).body;
    await scim(app, 'PATCH', `/Users/${b2.id}`, {
      schemas: [PATCH],
      Operations: [{ op: 'replace', path: 'active', value: false }],
    });
    const ids = async (f: string) => {
      const r = await scim(app, 'GET', `${q(f)}&count=200`);
      expect(r.status, f).toBe(200);
      return (r.body.Resources as { id: string }[])
        .map((x) => x.id)
        .filter((x) => x === a.id || x === b2.id)
        .sort();
    };
    const both = [a.id, b2.id].sort();
    expect(await ids('userName eq "alpha@corp.example"')).toEqual([a.id]);
    expect(await ids('userName EQ "ALPHA@corp.example"')).toEqual([a.id]);
    expect(await ids('userName ne "alpha@corp.example"')).toEqual([b2.id]);
    expect(await ids('displayName co "one"')).toEqual([a.id]);
    expect(await ids('userName sw "beta"')).toEqual([b2.id]);
    expect(await ids('userName ew "@corp.example"')).toEqual([a.id]);
    expect(await ids('externalId pr')).toEqual(both);
    expect(await ids(`externalId eq "${a.externalId}"`)).toEqual([a.id]);
    expect(await ids('active eq false')).toEqual([b2.id]);
    expect(await ids('emails co "other.example"')).toEqual([b2.id]);
    expect(await ids('emails[type eq "work" and value co "corp"]')).toEqual([a.id]);
    expect(await ids('userName eq "alpha@corp.example" or userName eq "beta@other.example"')).toEqual(both);
    expect(await ids('active eq true and (userName sw "alpha" or userName sw "beta")')).toEqual([a.id]);
    expect(await ids('not (userName sw "alpha")')).toEqual([b2.id]);
    expect(await ids(`meta.created ge "${a.meta.created}"`)).toEqual(both);
    expect(await ids(`meta.created gt "${b2.meta.created}"`)).toEqual([]);
    expect(await ids(`meta.lastModified lt "2000-01-01T00:00:00Z"`)).toEqual([]);
    expect(await ids(`meta.created le "${new Date(Date.now() + 60_000).toISOString()}"`)).toEqual(both);
    expect(await ids(`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "alpha@corp.example"`)).toEqual([a.id]);

    for (const bad of [
      'userName eq',
      'userName zz "x"',
      'userName eq "unterminated',
      '(userName eq "x"',
      'nickName eq "x"',
      'active gt true',
      'meta.created co "2020"',
      'name eq "x"',
      'userName eq "a" and',
      'not userName eq "a"',
      `${ENTERPRISE}:department eq "x"`,
    ]) {
      const r = await scim(app, 'GET', q(bad));
      expectScimError(r, 400, 'invalidFilter');
      expect(r.body.Resources).toBeUndefined();
    }
  });

  it('paging and projections', async () => {
    for (let i = 0; i < 5; i++) await scim(app, 'POST', '/Users', oktaUser(`page${i}@example.com`));
    const total = (await scim(app, 'GET', '/Users?count=0')).body;
    expect(total.totalResults).toBe(6); // the admin + 5
    expect(total.Resources).toEqual([]);
    const p2 = await scim(app, 'GET', '/Users?startIndex=3&count=2');
    expect(p2.body).toMatchObject({ totalResults: 6, startIndex: 3, itemsPerPage: 2 });
    const all = (await scim(app, 'GET', '/Users?count=200')).body.Resources as { id: string }[];
    expect(p2.body.Resources.map((r: { id: string }) => r.id)).toEqual(all.slice(2, 4).map((r) => r.id));
    const fp = await scim(app, 'GET', `${q('userName sw "page"')}&startIndex=4&count=10`);
    expect(fp.body).toMatchObject({ totalResults: 5, startIndex: 4, itemsPerPage: 2 });
    expectScimError(await scim(app, 'GET', '/Users?count=abc'), 400, 'invalidValue');

    const only = await scim(app, 'GET', `${q('userName eq "page0@example.com"')}&attributes=userName,name.givenName`);
    expect(Object.keys(only.body.Resources[0]).sort()).toEqual(['id', 'name', 'schemas', 'userName']);
    expect(only.body.Resources[0].name).toEqual({ givenName: 'Okta' });
    const ex = await scim(app, 'GET', `/Users/${all[1]!.id}?excludedAttributes=emails,groups,meta,id`);
    expect(ex.body.id).toBe(all[1]!.id);
    expect(ex.body).not.toHaveProperty('emails');
    expect(ex.body).not.toHaveProperty('meta');
  });

  it('ETags: If-Match with a stale version is 412, with the current one it applies', async () => {
    const u = (await scim(app, 'POST', '/Users', oktaUser('etag@example.com'))).body;
    const ok = await scim(
      app,
      'PATCH',
      `/Users/${u.id}`,
      { schemas: [PATCH], Operations: [{ op: 'replace', path: 'displayName', value: 'E1' }] },
      { headers: { 'if-match': u.meta.version } },
    );
    expect(ok.status).toBe(200);
    const stale = await scim(
      app,
      'PATCH',
      `/Users/${u.id}`,
      { schemas: [PATCH], Operations: [{ op: 'replace', path: 'displayName', value: 'E2' }] },
      { headers: { 'if-match': u.meta.version } },
    );
    expectScimError(stale, 412);
    expect((await scim(app, 'GET', `/Users/${u.id}`)).body.displayName).toBe('E1');
  });

  it('malformed requests: syntax, mutability, unknown ids', async () => {
    const u = (await scim(app, 'POST', '/Users', oktaUser('bad@example.com'))).body;
    expectScimError(await scim(app, 'POST', '/Users', '{"userName": '), 400, 'invalidSyntax');
    expectScimError(await scim(app, 'POST', '/Users', { schemas: [USER], emails: [] }), 400, 'invalidValue');
    expectScimError(await scim(app, 'POST', '/Users', { schemas: [USER], userName: 'no-email' }), 400, 'invalidValue');
    expectScimError(
      await scim(app, 'PATCH', `/Users/${u.id}`, { schemas: [PATCH], Operations: [{ op: 'move', path: 'x' }] }),
      400,
      'invalidSyntax',
    );
    expectScimError(
      await scim(app, 'PATCH', `/Users/${u.id}`, {
        schemas: [PATCH],
        Operations: [{ op: 'replace', path: 'id', value: 'x' }],
      }),
      400,
      'mutability',
    );
    expectScimError(
      await scim(app, 'PATCH', `/Users/${u.id}`, {
        schemas: [PATCH],
        Operations: [{ op: 'replace', path: 'active', value: 'maybe' }],
      }),
      400,
      'invalidValue',
    );
    expectScimError(
      await scim(app, 'PATCH', `/Users/${u.id}`, {
        schemas: [PATCH],
        Operations: [{ op: 'replace', path: 'nickName', value: 'x' }],
      }),
      400,
      'invalidPath',
    );
    expectScimError(
      await scim(app, 'PATCH', '/Users/does-not-exist', {
        schemas: [PATCH],
        Operations: [{ op: 'replace', path: 'active', value: true }],
      }),
      404,
    );
    expectScimError(
      await scim(app, 'PUT', `/Users/${u.id}`, {
        schemas: [USER],
        userName: 'admin-clash',
        emails: [{ value: admin.user.email }],
      }),
      409,
      'uniqueness',
    );
    // application/json is accepted as well as application/scim+json
    const asJson = await scim(
      app,
      'PATCH',
      `/Users/${u.id}`,
      { schemas: [PATCH], Operations: [{ op: 'replace', path: 'displayName', value: 'J' }] },
      { contentType: 'application/json' },
    );
    expect(asJson.status).toBe(200);
  });

  it('the last active admin cannot be deactivated or deleted', async () => {
    const r = await scim(app, 'PATCH', `/Users/${admin.user.id}`, {
      schemas: [PATCH],
      Operations: [{ op: 'replace', value: { active: false } }],
    });
    expectScimError(r, 409);
    expectScimError(await scim(app, 'DELETE', `/Users/${admin.user.id}`), 409);
    expect((await call(app, 'GET', '/api/v1/auths/', { token: admin.token })).status).toBe(200);
  });

  it('Groups in Okta and Entra shapes; only SCIM memberships are removed', async () => {
    const u1 = (await scim(app, 'POST', '/Users', oktaUser('g1@example.com'))).body.id as string;
    const u2 = (await scim(app, 'POST', '/Users', entraUser('g2@example.com'))).body.id as string;
    const u3 = (await scim(app, 'POST', '/Users', oktaUser('g3@example.com'))).body.id as string;

    // Okta: probe by name, create, add members, rename with a no-path replace, remove a member
    expect(
      (await scim(app, 'GET', `/Groups?filter=${encodeURIComponent('displayName eq "Engineering"')}`)).body
        .totalResults,
    ).toBe(0);
    const g = await scim(app, 'POST', '/Groups', { schemas: [GROUP], displayName: 'Engineering', members: [] });
    expect(g.status).toBe(201);
    const gid = g.body.id as string;
    expect(g.headers.location).toMatch(new RegExp(`/Groups/${gid}$`));
    const added = await scim(app, 'PATCH', `/Groups/${gid}`, {
      schemas: [PATCH],
      Operations: [{ op: 'add', path: 'members', value: [{ value: u1, display: 'g1@example.com' }, { value: u2 }] }],
    });
    expect(added.status).toBe(200);
    expect(added.body.members.map((m: { value: string }) => m.value).sort()).toEqual([u1, u2].sort());
    const renamed = await scim(app, 'PATCH', `/Groups/${gid}`, {
      schemas: [PATCH],
      Operations: [{ op: 'replace', value: { id: gid, displayName: 'Engineering Team' } }],
    });
    expect(renamed.body.displayName).toBe('Engineering Team');
    const removed = await scim(app, 'PATCH', `/Groups/${gid}`, {
      schemas: [PATCH],
      Operations: [{ op: 'remove', path: `members[value eq "${u1}"]` }],
    });
    expect(removed.body.members.map((m: { value: string }) => m.value)).toEqual([u2]);
    // the user resource shows its groups
    expect((await scim(app, 'GET', `/Users/${u2}`)).body.groups).toEqual([
      expect.objectContaining({ value: gid, display: 'Engineering Team' }),
    ]);

    // Entra: add and remove with value lists, rename with a path, list without members
    const e1 = await scim(app, 'PATCH', `/Groups/${gid}`, {
      schemas: [PATCH],
      Operations: [
        { op: 'Add', path: 'members', value: [{ value: u3 }] },
        { op: 'Remove', path: 'members', value: [{ value: u2 }] },
        { op: 'Replace', path: 'displayName', value: 'Eng' },
      ],
    });
    expect(e1.status).toBe(200);
    expect(e1.body.members.map((m: { value: string }) => m.value)).toEqual([u3]);
    const listed = await scim(
      app,
      'GET',
      `/Groups?filter=${encodeURIComponent('displayName eq "eng"')}&excludedAttributes=members`,
    );
    expect(listed.body.totalResults).toBe(1);
    expect(listed.body.Resources[0]).not.toHaveProperty('members');
    const rows = await app.ctx.db.selectFrom('group_members').selectAll().where('group_id', '=', gid).execute();
    expect(rows.map((r) => r.source)).toEqual(['scim']);

    // an admin adds someone by hand: SCIM's replace of the member list leaves that membership alone
    const byHand = await call(app, 'POST', `/api/v1/groups/${gid}/members`, {
      token: admin.token,
      body: { user_ids: [u1] },
    });
    expect(byHand.status).toBe(200);
    const put = await scim(app, 'PUT', `/Groups/${gid}`, { schemas: [GROUP], displayName: 'Eng', members: [] });
    expect(put.status).toBe(200);
    expect(put.body.members.map((m: { value: string }) => m.value)).toEqual([u1]);

    // uniqueness, unknown members, nested groups
    expectScimError(await scim(app, 'POST', '/Groups', { schemas: [GROUP], displayName: 'ENG' }), 409, 'uniqueness');
    const local = await call(app, 'POST', '/api/v1/groups', { token: admin.token, body: { name: 'Local Only' } });
    expect(local.status).toBe(201);
    expectScimError(
      await scim(app, 'POST', '/Groups', { schemas: [GROUP], displayName: 'local only' }),
      409,
      'uniqueness',
    );
    expectScimError(await scim(app, 'GET', `/Groups/${local.body.id}`), 404);
    expectScimError(
      await scim(app, 'PATCH', `/Groups/${gid}`, {
        schemas: [PATCH],
        Operations: [{ op: 'add', path: 'members', value: [{ value: 'nobody' }] }],
      }),
      400,
      'invalidValue',
    );
    expectScimError(
      await scim(app, 'POST', '/Groups', {
        schemas: [GROUP],
        displayName: 'Nested',
        members: [{ value: gid, type: 'Group' }],
      }),
      400,
      'invalidValue',
    );

    expect((await scim(app, 'DELETE', `/Groups/${gid}`)).status).toBe(204);
    expectScimError(await scim(app, 'GET', `/Groups/${gid}`), 404);
    expect(
      await app.ctx.db.selectFrom('group_members').select('user_id').where('group_id', '=', gid).execute(),
    ).toEqual([]);
  });

  it('deprovisioning locks the person out at once: cookie, bearer JWT and API key answer 401', async () => {
    for (const how of ['deactivate', 'delete'] as const) {
      const u = (await scim(app, 'POST', '/Users', oktaUser(`leaver-${how}@example.com`))).body;
      const { token } = await app.ctx.sessions.create(app.ctx.db, {
        userId: u.id,
        kind: 'oidc:oidc',
        ip: null,
        userAgent: null,
      });
      const key = await call(app, 'POST', '/api/v1/api-keys', { token, body: { name: 'laptop' } });
      expect(key.status, how).toBe(201);
      const apiKey = key.body.key as string;
      const me = (o: { token?: string; cookie?: string }) => call(app, 'GET', '/api/v1/auths/', o);
      expect((await me({ token })).status).toBe(200);
      expect((await me({ cookie: token })).status).toBe(200);
      expect((await me({ token: apiKey })).status).toBe(200);

      const started = Date.now();
      const r =
        how === 'deactivate'
          ? await scim(app, 'PATCH', `/Users/${u.id}`, {
              schemas: [PATCH],
              Operations: [{ op: 'Replace', path: 'active', value: 'False' }],
            })
          : await scim(app, 'DELETE', `/Users/${u.id}`);
      expect(r.status).toBe(how === 'deactivate' ? 200 : 204);
      const [bearer, cookie, keyed] = await Promise.all([me({ token }), me({ cookie: token }), me({ token: apiKey })]);
      expect(Date.now() - started).toBeLessThan(1000);
      expect(bearer.status, how).toBe(401);
      expect(cookie.status, how).toBe(401);
      expect(keyed.status, how).toBe(401);
    }
  });
});
