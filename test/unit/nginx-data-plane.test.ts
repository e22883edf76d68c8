import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { NginxDataPlane } from '../../agent/dataplane/nginx/nginx-data-plane.js';

const silent = pino({ level: 'silent' });

/** A stand-in for the plugin's admin endpoint: answers each path with a fixed status and body, and keeps what was pushed. */
async function fakeAdmin(answers: Record<string, { status: number; body: unknown }>) {
  const pushed: string[] = [];
  const server: Server = createServer((req, res) => {
    let text = '';
    req.on('data', (chunk: Buffer) => (text += chunk.toString()));
    req.on('end', () => {
      if (req.method === 'POST') pushed.push(text);
      const answer = answers[(req.url ?? '').split('?')[0] as string] ?? { status: 404, body: { error: 'no such endpoint' } };
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, pushed };
}

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
});

const change = { version: 'v2', base: 'v1', apps: { '/web': null } };

describe('NginxDataPlane', () => {
  it('applies a change as a push, and reports the generation that took it', async () => {
    const admin = await fakeAdmin({ '/edgeroute/apps': { status: 200, body: { generation: 'g7' } } });
    const plane = new NginxDataPlane({ adminUrl: admin.url, adminToken: 't', snapshotFile: null }, silent, new Registry());
    const result = await plane.apply(change);
    expect(result).toEqual({ ok: true, bytes: Buffer.byteLength(admin.pushed[0] as string), generation: 'g7' });
    expect(admin.pushed).toEqual(['{"version":"v2","base":"v1"}\n{"remove":"/web"}\n']);
  });

  it('tells a 409 (nginx holds another base) from a refusal', async () => {
    const stale = await fakeAdmin({ '/edgeroute/apps': { status: 409, body: { error: 'base version does not match' } } });
    const refused = await fakeAdmin({ '/edgeroute/apps': { status: 400, body: { error: 'bad route' } } });
    const options = { adminToken: 't', snapshotFile: null };
    const a = await new NginxDataPlane({ ...options, adminUrl: stale.url }, silent, new Registry()).apply(change);
    const b = await new NginxDataPlane({ ...options, adminUrl: refused.url }, silent, new Registry()).apply(change);
    expect(a).toMatchObject({ ok: false, otherBase: true, error: 'base version does not match' });
    expect(b).toMatchObject({ ok: false, otherBase: false, error: 'bad route', message: 'nginx refused the push (HTTP 400): bad route' });
  });

  it('says what nginx holds, and remembers the plugin release it reported', async () => {
    const admin = await fakeAdmin({ '/edgeroute/status': { status: 200, body: { version: 'v1', generation: 'g1', plugin_version: '9.9.9' } } });
    const plane = new NginxDataPlane({ adminUrl: admin.url, adminToken: 't', snapshotFile: null }, silent, new Registry());
    expect(plane.release).toBeNull();
    expect(await plane.status()).toEqual({ version: 'v1', generation: 'g1' });
    expect(plane.release).toBe('9.9.9');
  });

  it('writes backends flat for a plugin whose status lists backendsFlat, as objects for one that does not', async () => {
    const route = { id: '/web', vhosts: ['web.test'], defaultVersion: 'stable', hash: 'h', versions: { stable: { marathonAppId: '/web', backends: [{ id: 't1', address: '10.0.0.1', port: 31000, weight: 2 }, { id: 't2', address: '10.0.0.2', port: 31001, weight: 1 }] } } };
    const upsert = { version: 'v2', base: null, apps: { '/web': route } };
    const status = (features?: string[]) => ({ status: 200, body: { version: 'v1', generation: 'g1', plugin_version: '0.3.0', ...(features ? { push_features: features } : {}) } });
    const current = await fakeAdmin({ '/edgeroute/status': status(['backendsFlat']), '/edgeroute/apps': { status: 200, body: {} } });
    const older = await fakeAdmin({ '/edgeroute/status': status(), '/edgeroute/apps': { status: 200, body: {} } });
    await new NginxDataPlane({ adminUrl: current.url, adminToken: 't', snapshotFile: null }, silent, new Registry()).apply(upsert);
    await new NginxDataPlane({ adminUrl: older.url, adminToken: 't', snapshotFile: null }, silent, new Registry()).apply(upsert);
    const line = (pushed: string[]) => JSON.parse((pushed[0] as string).split('\n')[1] as string) as unknown;
    expect(line(current.pushed)).toEqual({ ...route, versions: { stable: { marathonAppId: '/web', backendsFlat: ['t1', '10.0.0.1', 31000, 2, 't2', '10.0.0.2', 31001, 1] } } });
    expect(line(older.pushed)).toEqual(route);
  });

  it('asks the plugin again after it refused flat backends (an older plugin put in its place)', async () => {
    const answers: Record<string, { status: number; body: unknown }> = {
      '/edgeroute/status': { status: 200, body: { version: 'v1', generation: 'g1', push_features: ['backendsFlat'] } },
      '/edgeroute/apps': { status: 200, body: {} },
    };
    const admin = await fakeAdmin(answers);
    const plane = new NginxDataPlane({ adminUrl: admin.url, adminToken: 't', snapshotFile: null }, silent, new Registry());
    const route = { id: '/web', vhosts: ['web.test'], defaultVersion: 'stable', hash: 'h', versions: { stable: { marathonAppId: '/web', backends: [{ id: 't1', address: '10.0.0.1', port: 31000, weight: 1 }] } } };
    const upsert = (version: string) => ({ version, base: null, apps: { '/web': route } });
    expect((await plane.apply(upsert('v2'))).ok).toBe(true);
    answers['/edgeroute/status'] = { status: 200, body: { version: 'v2', generation: 'g2' } };
    answers['/edgeroute/apps'] = { status: 400, body: { error: 'apps[/web].versions[stable].backends must be an array' } };
    expect((await plane.apply(upsert('v3'))).ok).toBe(false);
    answers['/edgeroute/apps'] = { status: 200, body: {} };
    expect((await plane.apply(upsert('v4'))).ok).toBe(true);
    expect(admin.pushed.map((text) => text.includes('backendsFlat'))).toEqual([true, true, false]);
  });
});
