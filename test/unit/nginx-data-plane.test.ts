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
});
