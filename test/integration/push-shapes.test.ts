// Both shapes of a version's backends in a push (objects, and the flat array
// the agent writes for a plugin that lists "backendsFlat" in its status),
// through the agent's nginx adapter into a real nginx: same routing.
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppRoute } from '../../agent/core/routing-table.js';
import { NginxDataPlane } from '../../agent/dataplane/nginx/nginx-data-plane.js';
import { pushBodyText, type BackendShape } from '../../agent/dataplane/nginx/push-format.js';
import { httpGet } from '../../agent/sandbox/http-get.js';
import { startNginxNode, type NginxNode } from '../../agent/sandbox/sandbox.js';
import { waitForWorkersOn } from '../../agent/sandbox/nginx-workers.js';
import { pushRoutes, route } from '../helpers/direct-push.js';
import { startStatusBackend, type StatusBackend } from '../helpers/status-backend.js';
import { answers } from '../helpers/traffic.js';

let nginx: NginxNode;
let heavy: StatusBackend;
let light: StatusBackend;

/** Two tasks weighted 3:1, each answering its own name. */
function weighted(id: string, host: string, sticky: boolean): AppRoute {
  return route(id, [host], [{ id: 'heavy', port: heavy.port, weight: 3 }, { id: 'light', port: light.port, weight: 1 }], sticky ? { settings: { sticky: 'sid' } } : {});
}

beforeAll(async () => {
  nginx = await startNginxNode({ workerProcesses: 2 });
  heavy = await startStatusBackend('heavy');
  light = await startStatusBackend('light');
});

afterAll(async () => {
  await nginx?.process.stop();
  await heavy?.close();
  await light?.close();
});

describe('push shapes', () => {
  it('the plugin says it takes flat backends, and the agent sends them so', async () => {
    const status = (await (await fetch(`${nginx.adminUrl}/edgeroute/status`, { headers: { authorization: `Bearer ${nginx.adminToken}` } })).json()) as { push_features?: unknown };
    expect(status.push_features).toEqual(['backendsFlat']);
    const plane = new NginxDataPlane({ adminUrl: nginx.adminUrl, adminToken: nginx.adminToken, snapshotFile: null }, pino({ level: 'silent' }), new Registry());
    const apps = Object.fromEntries([weighted('/flat', 'flat.test', false), weighted('/flat-sticky', 'flat-sticky.test', true)].map((r) => [r.id, r]));
    const result = await plane.apply({ version: 'flat-1', base: null, apps });
    expect(result.ok).toBe(true);
    // The push's size says its shape: objects would be larger.
    expect(result.bytes).toBeLessThan(Buffer.byteLength(pushBodyText({ version: 'flat-1', base: null, apps }, 'objects')));
    await waitForWorkersOn(nginx, 'flat-1');
    // 3:1 over two workers, each with its own round: 5-7 of 8 (4 if the weights were lost).
    expect((await answers(nginx.publicUrl, 'flat.test', 8)).get('heavy')).toBeGreaterThanOrEqual(5);
  });

  it.each<[BackendShape]>([['objects'], ['flat']])('routes by weight, and sticks by cookie, with backends as %s', async (shape) => {
    await pushRoutes(nginx, [weighted('/w', 'w.test', false), weighted('/s', 's.test', true)], shape);
    const seen = await answers(nginx.publicUrl, 'w.test', 80);
    // 3:1 over two workers, each with its own round: 60 give or take a few (40 if the weights were lost).
    expect(seen.get('heavy')).toBeGreaterThanOrEqual(56);
    expect(seen.get('heavy')).toBeLessThanOrEqual(64);
    expect((seen.get('heavy') ?? 0) + (seen.get('light') ?? 0)).toBe(80);
    const first = await httpGet(`${nginx.publicUrl}/`, { host: 's.test' });
    const cookie = String(first.headers['set-cookie'] ?? '').split(';')[0] as string;
    expect(cookie).toMatch(/^sid=/);
    for (let i = 0; i < 20; i++) expect((await httpGet(`${nginx.publicUrl}/`, { host: 's.test', headers: { cookie } })).body).toBe(first.body);
  });
});
