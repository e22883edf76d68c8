// Both shapes of a version's backends in a push (objects, and the flat array
// the agent writes for a plugin that lists "backendsFlat" in its status),
// through the agent's nginx adapter into a real nginx: same routing.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppRoute } from '../../agent/core/routing-table.js';
import { NginxDataPlane } from '../../agent/dataplane/nginx/nginx-data-plane.js';
import { pushBodyText, type BackendShape } from '../../agent/dataplane/nginx/push-format.js';
import { httpGet } from '../../agent/sandbox/http-get.js';
import { startNginxNode, type NginxNode } from '../../agent/sandbox/sandbox.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { answers } from '../helpers/traffic.js';

let nginx: NginxNode;
const servers: Server[] = [];
const ports: number[] = [];
let pushes = 0;

async function backend(name: string): Promise<number> {
  const server = createServer((_req, res) => res.end(name));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

function weighted(id: string, host: string, sticky: boolean): AppRoute {
  pushes++;
  return {
    id,
    hash: `h${pushes}`,
    vhosts: [host],
    defaultVersion: 'stable',
    versions: { stable: { marathonAppId: id, backends: [{ id: 'heavy', address: '127.0.0.1', port: ports[0] as number, weight: 3 }, { id: 'light', address: '127.0.0.1', port: ports[1] as number, weight: 1 }] } },
    ...(sticky ? { settings: { sticky: 'sid' } } : {}),
  };
}

async function settled(version: string): Promise<void> {
  await waitFor('every worker on the pushed table', async () => {
    const state = await fetch(`${nginx.adminUrl}/edgeroute/inflight`, { headers: { authorization: `Bearer ${nginx.adminToken}` } });
    const body = (await state.json()) as { version: string | null; settled: boolean };
    return body.settled && body.version === version ? true : undefined;
  });
}

beforeAll(async () => {
  nginx = await startNginxNode({ workerProcesses: 2 });
  ports.push(await backend('heavy'), await backend('light'));
});

afterAll(async () => {
  await nginx?.process.stop();
  for (const server of servers) server.close();
});

describe('push shapes', () => {
  it('the plugin says it takes flat backends, and the agent sends them so', async () => {
    const status = (await (await fetch(`${nginx.adminUrl}/edgeroute/status`, { headers: { authorization: `Bearer ${nginx.adminToken}` } })).json()) as { push_features?: unknown };
    expect(status.push_features).toEqual(['backendsFlat']);
    const plane = new NginxDataPlane({ adminUrl: nginx.adminUrl, adminToken: nginx.adminToken, snapshotFile: null }, pino({ level: 'silent' }), new Registry());
    const routes = [weighted('/flat', 'flat.test', false), weighted('/flat-sticky', 'flat-sticky.test', true)];
    const result = await plane.apply({ version: 'flat-1', base: null, apps: Object.fromEntries(routes.map((r) => [r.id, r])) });
    expect(result.ok).toBe(true);
    // The push's size says its shape: objects would be larger.
    const asObjects = Buffer.byteLength(pushBodyText({ version: 'flat-1', base: null, apps: Object.fromEntries(routes.map((r) => [r.id, r])) }, 'objects'));
    expect(result.bytes).toBeLessThan(asObjects);
    await settled('flat-1');
  });

  it.each<[BackendShape]>([['objects'], ['flat']])('routes by weight, and sticks by cookie, with backends as %s', async (shape) => {
    const version = `shape-${shape}`;
    const routes = [weighted('/w', 'w.test', false), weighted('/s', 's.test', true)];
    const res = await fetch(`${nginx.adminUrl}/edgeroute/apps`, {
      method: 'POST',
      headers: { authorization: `Bearer ${nginx.adminToken}`, 'content-type': 'application/x-ndjson' },
      body: pushBodyText({ version, base: null, apps: Object.fromEntries(routes.map((r) => [r.id, r])) }, shape),
    });
    expect(res.status, await res.text()).toBe(200);
    await settled(version);
    const seen = await answers(nginx.publicUrl, 'w.test', 80);
    expect(seen.get('heavy')).toBe(60);
    expect(seen.get('light')).toBe(20);
    const first = await httpGet(`${nginx.publicUrl}/`, { host: 's.test' });
    const cookie = String(first.headers['set-cookie'] ?? '').split(';')[0] as string;
    expect(cookie).toMatch(/^sid=/);
    for (let i = 0; i < 20; i++) expect((await httpGet(`${nginx.publicUrl}/`, { host: 's.test', headers: { cookie } })).body).toBe(first.body);
  });
});
