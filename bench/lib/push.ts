/** Pushes routing tables straight to the plugin, for benchmarks of the data plane alone. */
import { hashString } from '../../agent/core/hash.js';
import type { RouteSettings } from '../../agent/core/route-settings.js';
import type { AppRoute } from '../../agent/core/routing-table.js';
import { NginxAdmin } from '../../agent/dataplane/nginx/admin.js';
import { waitForWorkersOn } from '../../agent/sandbox/nginx-workers.js';

export interface BenchApp {
  readonly id: string;
  readonly vhosts: readonly string[];
  /** version name → backend ports on 127.0.0.1 */
  readonly versions: Readonly<Record<string, readonly number[]>>;
  /** Host → path prefixes the app holds there (AppRoute.paths); absent: "/" on every host. */
  readonly paths?: Readonly<Record<string, readonly string[]>>;
  /** Per-route proxy settings (AppRoute.settings). */
  readonly settings?: RouteSettings;
}

export function appRoute(app: BenchApp): AppRoute {
  const versions: AppRoute['versions'] = Object.fromEntries(
    Object.entries(app.versions).map(([name, ports]) => [
      name,
      { marathonAppId: `${app.id}-${name}`, backends: ports.map((port, i) => ({ id: `${app.id}.${name}.${i}`, address: '127.0.0.1', port, weight: 100 })) },
    ]),
  );
  const route = {
    id: app.id,
    vhosts: app.vhosts,
    ...(app.paths ? { paths: app.paths } : {}),
    ...(app.settings ? { settings: app.settings } : {}),
    defaultVersion: 'stable',
    versions,
  };
  return { ...route, hash: hashString(JSON.stringify(route)) };
}

/**
 * Replaces the plugin's whole table and waits until every worker routes by
 * it (a request answered by the new table proves it for one worker only: a
 * benchmark's next connections may reach another); returns the body's size
 * in bytes and the time the push itself took.
 */
export async function pushTable(adminUrl: string, token: string, apps: readonly BenchApp[]): Promise<{ bytes: number; ms: number }> {
  const routes = Object.fromEntries(apps.map((a) => [a.id, appRoute(a)]));
  const version = hashString(Object.values(routes).map((r) => r.hash).join(','));
  const body = { version, base: null, apps: routes };
  const started = performance.now();
  const result = await new NginxAdmin(adminUrl, token, 120_000).push(body);
  const ms = performance.now() - started;
  if (!result.ok) throw new Error(`push refused: HTTP ${result.status} ${result.error}`);
  await waitForWorkersOn({ adminUrl, adminToken: token }, version, 30_000);
  return { bytes: result.bytes ?? 0, ms };
}
