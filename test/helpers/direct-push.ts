/** Pushes routes straight to a plugin's admin endpoint (no agent), and waits until every worker routes with them. */
import { expect } from 'vitest';
import { pushBodyText, type BackendShape } from '../../agent/dataplane/nginx/push-format.js';
import type { AppRoute } from '../../agent/core/routing-table.js';
import type { NginxNode } from '../../agent/sandbox/sandbox.js';
import { waitForWorkersOn } from '../../agent/sandbox/nginx-workers.js';

export interface TestBackend {
  readonly id: string;
  readonly port: number;
  readonly weight?: number;
}

export type RouteExtras = Pick<AppRoute, 'paths' | 'settings'>;

let pushes = 0;

/** A one-version route on loopback backends. */
export function route(id: string, vhosts: string[], backends: readonly TestBackend[], extras: RouteExtras = {}): AppRoute {
  pushes++;
  return {
    id,
    hash: `h${pushes}`,
    vhosts,
    defaultVersion: 'stable',
    versions: { stable: { marathonAppId: id, backends: backends.map((b) => ({ id: b.id, port: b.port, weight: b.weight ?? 100, address: '127.0.0.1' })) } },
    ...extras,
  };
}

/** Replaces the node's table with `routes` (backends written as `shape`); resolves once both workers compiled it. */
export async function pushRoutes(nginx: NginxNode, routes: readonly AppRoute[], shape: BackendShape = 'objects'): Promise<void> {
  pushes++;
  const version = `v${pushes}`;
  const res = await fetch(`${nginx.adminUrl}/edgeroute/apps`, {
    method: 'POST',
    headers: { authorization: `Bearer ${nginx.adminToken}`, 'content-type': 'application/x-ndjson' },
    body: pushBodyText({ version, base: null, apps: Object.fromEntries(routes.map((r) => [r.id, r])) }, shape),
  });
  expect(res.status, await res.text()).toBe(200);
  await waitForWorkersOn(nginx, version);
}
