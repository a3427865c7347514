import fc from 'fast-check';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshIp, registerAccount, STRONG_PASSWORD } from '../auth/support.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { DIALECTS } from '../helpers/db.ts';
import { createApiKey } from '../helpers/factories.ts';
import { type FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream.ts';

interface Route {
  method: string;
  path: string;
}

/** Every registered route under /v1 and /api/auth, read from Fastify's own route tree. */
function fuzzedRoutes(app: FastifyInstance): Route[] {
  const routes: Route[] = [];
  const stack: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const start = line.indexOf('/');
    if (start === -1) continue;
    const match = /^(\S+) \(([^)]+)\)/.exec(line.slice(start));
    if (!match) continue;
    const level = Math.floor(start / 4);
    stack.length = level;
    stack[level] = match[1] ?? '';
    const path = stack.join('');
    if (!path.startsWith('/v1/') && !path.startsWith('/api/auth/')) continue;
    for (const method of (match[2] ?? '').split(', ')) {
      if (method !== 'HEAD') routes.push({ method, path });
    }
  }
  return routes;
}

const SQL = [
  "' OR '1'='1",
  "'; DROP TABLE users; --",
  '" OR ""="',
  '1; SELECT pg_sleep(10)--',
  "x' UNION SELECT key_hash FROM api_keys --",
  '%',
  '_',
  '\\',
  '\u0000',
  '$1',
];
const HUGE_NUMBERS = ['1e999999', '-1e400', '99999999999999999999999999', '9007199254740993', '-0', '1e-400'];
const DURATIONS = ['300000y', '99999999999999999999d', '9999999999999999ms', '-5d', '1e9y', '0s', '10y'];
const FIELDS = [
  'model',
  'messages',
  'prompt',
  'input',
  'stream',
  'stream_options',
  'email',
  'password',
  'name',
  'avatar_url',
  'current_password',
  'new_password',
  'token',
  'inviteCode',
  'expiresIn',
  'expiresAt',
  'expiresInHours',
  'role',
  'status',
  'acknowledge_weak_password',
];
const QUERY_KEYS = ['period', 'from', 'to', 'granularity', 'user_id', 'api_key_id', 'format', 'limit', 'q'];

const hostileString = fc.oneof(
  fc.constantFrom(...SQL, ...DURATIONS, ...HUGE_NUMBERS),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('a\u0000b', '\ud800', '\udfff', '😀'.repeat(50), 'x'.repeat(70_000)),
);
const leaf: fc.Arbitrary<unknown> = fc.oneof(
  hostileString,
  fc.double(),
  fc.integer(),
  fc.constantFrom(1e308, -1e308, Number.MAX_SAFE_INTEGER, 2 ** 63, true, false, null),
);
const value = fc.oneof(
  leaf,
  fc.array(leaf, { maxLength: 3 }),
  fc.dictionary(fc.constantFrom(...FIELDS), leaf, { maxKeys: 3 }),
);
const objectBody = fc.dictionary(fc.constantFrom(...FIELDS), value, { maxKeys: 6 });

const deep = (levels: number, open: string, close: string) => `${open.repeat(levels)}${close.repeat(levels)}`;
/** Bodies every route gets, each with a session and with an API key. */
const HOSTILE_BODIES: (string | Buffer)[] = [
  '{"model":',
  '{"model":"demo","messages":[',
  '{"email":"a@b.c","password":"x"',
  '[]',
  'null',
  '"text"',
  '12',
  '{"a":1}{"b":2}',
  `{"model":"demo","x":${deep(20_000, '[', ']')}}`,
  `{"model":"demo","messages":[{"role":"user","content":"hi","x":${deep(5_000, '{"a":', '}').replace('{"a":}', '{"a":1}')}}]}`,
  `{"model":"demo","messages":[{"role":"user","content":"hi"}],"max_tokens":${HUGE_NUMBERS[0]}}`,
  '{"expiresInHours":1e999,"name":"n"}',
  '{"expiresInHours":99999999999,"name":"n"}',
  `{"name":"k","expiresIn":"${DURATIONS[0]}"}`,
  `{"name":"k","expiresIn":"${DURATIONS[1]}"}`,
  '{"name":"k","expiresAt":"275760-09-13T00:00:01Z"}',
  '{"name":"k","expiresAt":"9999-12-31T23:59:59Z"}',
  '{"name":"a\u0000b","email":"n\u0000ul@example.test","password":"correct horse battery staple","avatar_url":"\u0000"}',
  `{"name":"${SQL[1]}","email":"${(SQL[0] ?? '').replace(/"/g, '')}@example.test","role":"admin' --","status":"active' --"}`,
  '{"__proto__":{"admin":true},"constructor":{"prototype":{"x":1}}}',
  '{"model":"fake-model\\u0000x","messages":[{"role":"user","content":"hi"}]}',
  '{"model":"demo","messages":[{"role":"user","content":"\ud800"}],"stream":true}',
  Buffer.from([0xff, 0xfe, 0x7b, 0x7d]),
  Buffer.from('{"name":"\xed\xa0\x80","email":"\xc3","model":"\xff"}', 'latin1'),
];
/** Raw request bodies: text, or bytes that are not UTF-8. */
const rawBody: fc.Arbitrary<string | Buffer> = fc.oneof(
  objectBody.map((body) => JSON.stringify(body)),
  fc.string({ maxLength: 60 }),
  fc.constantFrom(...HOSTILE_BODIES),
  fc
    .uint8Array({ maxLength: 40 })
    .map((bytes) => Buffer.concat([Buffer.from('{"name":"'), Buffer.from(bytes), Buffer.from('"}')])),
);
const queryString = fc
  .dictionary(fc.constantFrom(...QUERY_KEYS), hostileString, { maxKeys: 4 })
  .map((query) => new URLSearchParams(query as Record<string, string>).toString());
const pathParam = fc.oneof(
  hostileString.map((text) => encodeURIComponent(Buffer.from(text.slice(0, 80)).toString('utf8')) || 'x'),
  // Percent-encoded bytes that are not UTF-8, and a malformed escape.
  fc.constantFrom('%ff%fe', '%ed%a0%80', '%E0%A4%A', '%00', '..%2f..%2fetc%2fpasswd'),
);

type Credential = 'none' | 'session' | 'apikey' | 'legacy';

describe.each(DIALECTS)('fuzzing every /v1 and /api/auth route on %s (issue 11, acceptance)', (dialect) => {
  let upstream: FakeUpstream;
  let t: TestApp;
  let session = '';
  let key = '';
  let routes: Route[] = [];

  beforeAll(async () => {
    upstream = await startFakeUpstream();
    t = await startTestApp({
      dialect,
      settings: { upstreamUrl: upstream.baseUrl, apiKeys: 'legacy-fuzz-secret', usageFlushMs: '3600000' },
    });
    const admin = await registerAccount(t.app, 'fuzz-admin@example.test');
    session = admin.session;
    key = (await createApiKey(t.database.db, { userId: admin.id })).key;
    await t.app.ready();
    routes = fuzzedRoutes(t.app);
  });
  afterAll(async () => {
    await t?.close();
    await upstream?.close();
  });

  /** Logout, "sign out everywhere", a password change or an admin action on the admin itself. */
  const mayEndSession = (route: Route, response: LightMyRequestResponse) =>
    response.statusCode < 300 && /logout|sessions|password|admin\/users/.test(route.path);

  /** A fresh session when a fuzzed request ended the one in use (logout, sessions, password). */
  async function keepSession(): Promise<void> {
    const me = await t.app.inject({ method: 'GET', url: '/api/auth/me', cookies: { session } });
    if (me.statusCode === 200) return;
    const login = await t.app.inject({
      method: 'POST',
      url: '/api/auth/login',
      remoteAddress: freshIp(),
      payload: { email: 'fuzz-admin@example.test', password: STRONG_PASSWORD },
    });
    expect(login.statusCode, login.body).toBe(200);
    const cookie = login.cookies.find((c) => c.name === 'session');
    session = cookie?.value ?? session;
  }

  async function send(
    route: Route,
    body: string | Buffer | undefined,
    query: string,
    param: string,
    credential: Credential,
  ): Promise<LightMyRequestResponse> {
    const headers: Record<string, string> = {};
    let cookies: Record<string, string> | undefined;
    if (credential === 'session') {
      cookies = { session };
      headers.origin = 'http://localhost:80';
    } else if (credential === 'apikey') headers.authorization = `Bearer ${key}`;
    else if (credential === 'legacy') headers.authorization = 'Bearer legacy-fuzz-secret';
    if (body !== undefined) headers['content-type'] = 'application/json';
    const url = `${route.path.replace(/:id/g, param)}${query ? `?${query}` : ''}`;
    return t.app.inject({
      method: route.method as 'GET',
      url,
      headers,
      cookies,
      remoteAddress: freshIp(),
      ...(body === undefined ? {} : { payload: body }),
    });
  }

  function expectRouteShape(route: Route, response: LightMyRequestResponse, what: string): void {
    expect(response.statusCode, what).toBeLessThan(500);
    if (response.statusCode < 400) return;
    const body = response.json() as { error?: unknown };
    if (route.path.startsWith('/v1/')) {
      expect(body.error, what).toMatchObject({ message: expect.any(String), type: expect.any(String) });
    } else {
      // LocalAI's shapes: a flat message, or the auth middleware's {error:{code,message,type}}.
      const error = body.error as { message?: unknown } | string;
      expect(typeof error === 'string' || typeof error?.message === 'string', what).toBe(true);
    }
  }

  it('derives the routes from the app itself', () => {
    const paths = new Set(routes.map((route) => `${route.method} ${route.path}`));
    expect(paths).toContain('POST /v1/chat/completions');
    expect(paths).toContain('POST /api/auth/api-keys');
    expect(paths).toContain('DELETE /api/auth/admin/users/:id');
    expect(routes.length).toBeGreaterThan(25);
  });

  it('every hostile body on every route, with every credential: a 4xx in the route shape, never a 5xx', async () => {
    // Each hostile body with the credential that reaches the route's handler (an API key on /v1, a
    // session on /api/auth), plus random bodies as the legacy admin key and as nobody.
    const extra = fc.sample(rawBody, { numRuns: 6, seed: 11 });
    const casesFor = (route: Route): [string | Buffer, Credential][] => [
      ...HOSTILE_BODIES.map((body): [string | Buffer, Credential] => [
        body,
        route.path.startsWith('/v1/') ? 'apikey' : 'session',
      ]),
      ...extra.map((body, i): [string | Buffer, Credential] => [body, i % 2 === 0 ? 'legacy' : 'none']),
    ];
    for (const route of routes) {
      // A GET has no body: one request per credential is enough.
      const cases =
        route.method === 'GET'
          ? (['session', 'apikey', 'legacy', 'none'] as const).map((c): [string, Credential] => ['', c])
          : casesFor(route);
      for (const [body, credential] of cases) {
        const what = `${route.method} ${route.path} as ${credential} with ${String(body).slice(0, 120)}`;
        const sent = route.method === 'GET' ? undefined : body;
        const response = await send(
          route,
          sent,
          `user_id=${encodeURIComponent(SQL[1] ?? '')}`,
          "1'%20OR%20'1'='1",
          credential,
        );
        expectRouteShape(route, response, what);
        if (mayEndSession(route, response)) await keepSession();
      }
    }
  }, 240_000);

  it('property: random routes, bodies, query strings, path parameters and credentials', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...routes),
        fc.option(rawBody, { nil: undefined }),
        queryString,
        pathParam,
        fc.constantFrom<Credential>('none', 'session', 'apikey', 'legacy'),
        async (route, body, query, param, credential) => {
          const response = await send(route, body, query, param, credential);
          expectRouteShape(route, response, `${route.method} ${route.path}?${query} as ${credential}`);
          if (mayEndSession(route, response)) await keepSession();
        },
      ),
      { numRuns: 300, seed: 2026 },
    );
  }, 240_000);

  it('answers /healthz afterwards', async () => {
    const health = await t.app.inject({ method: 'GET', url: '/healthz' });
    expect(health.statusCode).toBe(200);
    await t.listen();
    const overHttp = await fetch(`${t.baseUrl}/healthz`);
    expect(overHttp.status).toBe(200);
  });
});
